"""Members (name, e-mail, password, active or not) and failed sign-in attempts, in a small SQL database.

The hub knows members' usernames, groups and rights; this store keeps what the
hub has no place for.  Passwords are hashed with Argon2 (``argon2-cffi``).
Failed attempts are counted per username whether or not the member exists, so
a lockout gives away nothing about who is a member.  A deactivated member (a
leaver) cannot sign in, but everything about them is kept.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class MemberRecord(Base):
    __tablename__ = "members"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class LoginFailures(Base):
    __tablename__ = "login_failures"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)


def _record(db: Session, username: str) -> MemberRecord:
    """The member's record, added (active, without name or password) if there is none yet."""
    record = db.get(MemberRecord, username)
    if record is None:
        record = MemberRecord(username=username, full_name="", email="", active=True)
        db.add(record)
    return record


def generate_password() -> str:
    return secrets.token_urlsafe(12)


class MemberStore:
    """Credentials and lockouts; every method is one short transaction."""

    def __init__(self, db_url: str, max_failures: int = 5, window_seconds: int = 900, lockout_seconds: int = 300):
        self.engine = create_engine(db_url)
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.max_failures = max_failures
        self.window = dt.timedelta(seconds=window_seconds)
        self.lockout = dt.timedelta(seconds=lockout_seconds)

    # members

    def exists(self, username: str) -> bool:
        with self.session() as db:
            return db.get(MemberRecord, username) is not None

    def is_active(self, username: str) -> bool:
        with self.session() as db:
            record = db.get(MemberRecord, username)
            return bool(record and record.active)

    def get(self, username: str) -> MemberRecord | None:
        with self.session() as db:
            return db.get(MemberRecord, username)

    def all(self) -> dict[str, MemberRecord]:
        with self.session() as db:
            return {r.username: r for r in db.scalars(select(MemberRecord))}

    def add(self, username: str, password: str | None = None, full_name: str = "", email: str = "") -> bool:
        """Add a member (without a password: cannot sign in yet). False if already there."""
        with self.session.begin() as db:
            if db.get(MemberRecord, username) is not None:
                return False
            db.add(MemberRecord(username=username, full_name=full_name, email=email, active=True))
        if password is not None:
            self.set_password(username, password)
        return True

    def update(self, username: str, **fields) -> None:
        """Change a member's name, e-mail or active flag (adding the member if needed)."""
        self.update_many({username: fields})

    def update_many(self, changes: dict[str, dict]) -> None:
        """:meth:`update` for many members, in one transaction."""
        with self.session.begin() as db:
            for username, fields in changes.items():
                record = _record(db, username)
                for name, value in fields.items():
                    setattr(record, name, value)
                if "active" in fields:
                    record.deactivated_at = None if fields["active"] else utcnow()

    def remove(self, username: str) -> None:
        with self.session.begin() as db:
            for model in (MemberRecord, LoginFailures):
                row = db.get(model, username)
                if row is not None:
                    db.delete(row)

    def set_password(self, username: str, password: str) -> None:
        """Set (or reset) a member's password and lift any lockout."""
        self.set_passwords({username: password})

    def set_passwords(self, passwords: dict[str, str]) -> None:
        """Set many passwords in one transaction, hashing on every core (Argon2 is slow on purpose)."""
        if any(len(p) < 8 for p in passwords.values()):
            raise ValueError("a password needs at least 8 characters")
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            hashes = dict(zip(passwords, pool.map(_hasher.hash, passwords.values())))
        with self.session.begin() as db:
            for username, password_hash in hashes.items():
                credential = _record(db, username)
                credential.password_hash = password_hash
                credential.password_set_at = utcnow()
                failures = db.get(LoginFailures, username)
                if failures is not None:
                    db.delete(failures)

    # sign-in

    def locked(self, db: Session, username: str, now: dt.datetime) -> bool:
        failures = db.get(LoginFailures, username)
        return bool(failures and failures.locked_until and failures.locked_until > now)

    def check_password(self, username: str, password: str) -> bool:
        """True only for an active member's right password outside a lockout.

        Wrong passwords, unknown usernames, leavers and locked accounts all
        count as a failure and take the same time.
        """
        now = utcnow()
        with self.session.begin() as db:
            credential = db.get(MemberRecord, username)
            usable = credential is not None and credential.active and credential.password_hash
            stored = credential.password_hash if usable else None
            try:
                ok = _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if ok and not self.locked(db, username, now):
                failures = db.get(LoginFailures, username)
                if failures is not None:
                    db.delete(failures)
                if _hasher.check_needs_rehash(stored):
                    credential.password_hash = _hasher.hash(password)
                return True
            self._count_failure(db, username, now)
            return False

    def _count_failure(self, db: Session, username: str, now: dt.datetime) -> None:
        failures = db.get(LoginFailures, username)
        if failures is None or now - failures.first_at > self.window:
            if failures is not None:
                db.delete(failures)
                db.flush()
            failures = LoginFailures(username=username, count=0, first_at=now)
            db.add(failures)
        failures.count += 1
        if failures.count >= self.max_failures and not (failures.locked_until and failures.locked_until > now):
            failures.locked_until = now + self.lockout

    def is_locked(self, username: str) -> bool:
        with self.session() as db:
            return self.locked(db, username, utcnow())
