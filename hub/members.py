"""Members' credentials and failed sign-in attempts, in a small SQL database.

Passwords are hashed with Argon2 (``argon2-cffi``).  Failed attempts are
counted per username whether or not the member exists, so a lockout gives away
nothing about who is a member.
"""

from __future__ import annotations

import datetime as dt
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Credential(Base):
    __tablename__ = "credentials"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class LoginFailures(Base):
    __tablename__ = "login_failures"
    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)


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
            return db.get(Credential, username) is not None

    def usernames(self) -> list[str]:
        with self.session() as db:
            return list(db.scalars(select(Credential.username).order_by(Credential.username)))

    def add(self, username: str, password: str | None = None) -> bool:
        """Add a member (without a password: cannot sign in yet). False if already there."""
        with self.session.begin() as db:
            if db.get(Credential, username) is not None:
                return False
            db.add(Credential(username=username))
        if password is not None:
            self.set_password(username, password)
        return True

    def remove(self, username: str) -> None:
        with self.session.begin() as db:
            for model in (Credential, LoginFailures):
                row = db.get(model, username)
                if row is not None:
                    db.delete(row)

    def set_password(self, username: str, password: str) -> None:
        """Set (or reset) a member's password and lift any lockout."""
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        with self.session.begin() as db:
            credential = db.get(Credential, username)
            if credential is None:
                credential = Credential(username=username)
                db.add(credential)
            credential.password_hash = _hasher.hash(password)
            credential.password_set_at = utcnow()
            failures = db.get(LoginFailures, username)
            if failures is not None:
                db.delete(failures)

    # sign-in

    def locked(self, db: Session, username: str, now: dt.datetime) -> bool:
        failures = db.get(LoginFailures, username)
        return bool(failures and failures.locked_until and failures.locked_until > now)

    def check_password(self, username: str, password: str) -> bool:
        """True only for a member's right password outside a lockout.

        Wrong passwords, unknown usernames and locked accounts all count as a
        failure and take the same time.
        """
        now = utcnow()
        with self.session.begin() as db:
            credential = db.get(Credential, username)
            stored = credential.password_hash if credential and credential.password_hash else None
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
