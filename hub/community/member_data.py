"""The community's part in administering one member: export, erase, hide, and a first profile.

:class:`MemberData` is the hook that :mod:`hub.admin` and :mod:`hub.personal_data`
call; it works on the service's database itself (``LEVA_COMMUNITY_DB_URL``), so
the ``leva`` command needs no running service. The running service sees each
change at its next request: every request opens its own session and reads the
rows afresh, and nothing it keeps in memory holds profiles, progress or badges
(its copy of the hub's members drops an erased member at its next refresh,
within seconds).

- :meth:`MemberData.export`: everything held on the member: the whole profile
  (private fields and settings included), lesson progress and every progress
  event, assignment results with scores, badges with their signed credentials.
- :meth:`MemberData.erase`: deletes all of it. Nothing is kept under a
  pseudonym: the service's statistics (dashboards, score distributions,
  leaderboards) count current members only, and the grades themselves stay in
  the gradebooks under a pseudonym (:mod:`hub.personal_data`). An SQLite
  database is then vacuumed and its write-ahead log emptied, so no byte of the
  member is left in the file; PostgreSQL reuses the space of deleted rows at
  its next (auto)vacuum.
- :meth:`MemberData.set_hidden`: a deactivated member's profile is shown to
  admins only (the rule is in :mod:`.access`), and again to all on reactivation.
- :meth:`MemberData.ensure_profiles`: members created by a roster import start
  with a profile named as in the roster (visible to course peers, the default).
  Without it they would still be in the directory (the service shows the
  default profile of every hub member who has none), but only by username.
  What a member wrote is never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import time

from sqlalchemy import delete, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from .models import AssignmentResult, Badge, LessonProgress, Profile, ProgressEvent, Tag, utcnow
from .profiles import TEXT_LIMITS, default_profile
from .progress import iso

# what a member leaves, table by table (tags before profiles: they point at them)
MEMBER_TABLES = (
    ("tags", Tag),
    ("profile", Profile),
    ("lessons", LessonProgress),
    ("progress events", ProgressEvent),
    ("assignment results", AssignmentResult),
    ("badges", Badge),
)


def _row(row) -> dict:
    """A stored row as JSON-ready values (times in ISO 8601, UTC)."""
    out = {}
    for column in inspect(type(row)).columns:
        value = getattr(row, column.key)
        out[column.key] = iso(value) if hasattr(value, "isoformat") else value
    return out


class MemberData:
    """The service's data of one member at a time, opened from the settings or given a session factory."""

    def __init__(self, url: str | None = None, sessions: sessionmaker | None = None):
        if url is None and sessions is None:
            raise ValueError("give the database URL or a session factory")
        self.url = url
        self._sessions = sessions

    @classmethod
    def from_settings(cls, settings=None) -> "MemberData":
        if settings is None:
            from ..settings import load_settings

            settings = load_settings()
        return cls(url=settings.community_db_url)

    @property
    def sessions(self) -> sessionmaker:
        # opened at first use: most `leva` commands never touch the community
        if self._sessions is None:
            from .store import open_database

            self._sessions = open_database(self.url)
        return self._sessions

    # export

    def export(self, username: str) -> dict:
        with self.sessions() as db:
            profile = db.get(Profile, username)

            def rows(model, order):
                return [_row(r) for r in db.scalars(select(model).where(model.username == username).order_by(*order))]

            badges = []
            for badge in db.scalars(select(Badge).where(Badge.username == username).order_by(Badge.issued_at)):
                badges.append({**_row(badge), "credential": json.loads(badge.credential)})
            return {
                "username": username,
                "profile": _row(profile) if profile else None,  # None: never edited, the defaults apply
                "lessons": rows(LessonProgress, (LessonProgress.course_id, LessonProgress.lesson)),
                "progress_events": rows(ProgressEvent, (ProgressEvent.at, ProgressEvent.id)),
                "assignment_results": rows(AssignmentResult, (AssignmentResult.course_id, AssignmentResult.assignment)),
                "badges": badges,
            }

    # erase

    def erase(self, username: str) -> str:
        """Delete every row of the member; return one line saying what went."""
        counts = {}
        with self.sessions() as db:
            for label, model in MEMBER_TABLES:
                counts[label] = db.execute(delete(model).where(model.username == username)).rowcount
            db.commit()
        deleted = ", ".join(f"{label} ({n})" for label, n in counts.items() if n and label != "tags") or "nothing stored"
        return f"deleted {deleted}; {self._compact()}"

    def _compact(self) -> str:
        """Leave no deleted row in the database file (SQLite); PostgreSQL reuses the space by itself."""
        url = make_url(str(self.sessions.kw["bind"].url))
        if url.get_backend_name() != "sqlite" or not url.database:
            return "PostgreSQL reuses the deleted rows' space at its next vacuum"
        _vacuum_sqlite(url.database)
        return "database vacuumed and its write-ahead log emptied"

    # deactivation

    def set_hidden(self, username: str, hidden: bool) -> bool:
        """Hide (or show again) the member's profile; True if that changed anything."""
        with self.sessions() as db:
            profile = db.get(Profile, username)
            if profile is None:
                if not hidden:
                    return False  # no profile stored: it shows as the defaults
                profile = default_profile(username)
                db.add(profile)
            elif bool(profile.hidden) == hidden:
                return False
            profile.hidden = hidden
            db.commit()
        return True

    # roster imports

    def ensure_profiles(self, names: dict[str, str]) -> int:
        """Give members without a profile one with this display name; return how many were made."""
        limit = TEXT_LIMITS["display_name"]
        made = 0
        with self.sessions() as db:
            have = set(db.scalars(select(Profile.username).where(Profile.username.in_(list(names))))) if names else set()
            for username, display_name in names.items():
                if username in have:
                    continue
                profile = default_profile(username)
                profile.display_name = " ".join((display_name or "").split())[:limit]
                profile.updated_at = utcnow()
                db.add(profile)
                made += 1
            db.commit()
        return made

    def ensure_profile(self, username: str, display_name: str) -> bool:
        return self.ensure_profiles({username: display_name}) == 1


def _vacuum_sqlite(path: str, attempts: int = 40) -> None:
    """VACUUM, then empty the write-ahead log, retrying while the service is reading or writing."""
    for _ in range(attempts):
        db = sqlite3.connect(path, timeout=10)
        try:
            db.execute("VACUUM")
            busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
        except sqlite3.OperationalError:
            pass
        finally:
            db.close()
        time.sleep(0.25)
    raise RuntimeError(f"could not compact {path}: the community service keeps it busy")
