"""What the community service keeps: profiles, lesson progress, assignment results, badges.

Times are stored as naive UTC (SQLite has no time zones); :func:`utcnow` makes them.
Schema changes go through an Alembic revision in ``migrations/versions/``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VISIBILITIES = ("community", "peers", "private")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    # named constraints, so that migrations can alter them on every database
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Profile(Base):
    """A member's community profile; members without a row have the defaults."""

    __tablename__ = "profiles"

    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    headline: Mapped[str] = mapped_column(String(140), default="")
    bio: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised when rendered
    skills: Mapped[list] = mapped_column(JSON, default=list)
    interests: Mapped[list] = mapped_column(JSON, default=list)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    links: Mapped[list] = mapped_column(JSON, default=list)  # [{"label", "url"}]
    city: Mapped[str] = mapped_column(String(80), default="")
    visibility: Mapped[str] = mapped_column(String(16), default="peers")
    private_fields: Mapped[list] = mapped_column(JSON, default=list)  # shown to the member and admins only
    leaderboard: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # set while the member is deactivated: the profile is then shown to admins only (see access.py)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Tag(Base):
    """A skill, interest or language of a profile, normalised for the directory's search."""

    __tablename__ = "profile_tags"
    __table_args__ = (Index("ix_profile_tags_kind_key", "kind", "key"),)

    username: Mapped[str] = mapped_column(
        String(255), ForeignKey("profiles.username", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)


class LessonProgress(Base):
    """One member's progress in one lesson, from their server's progress reports."""

    __tablename__ = "lesson_progress"

    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    lesson: Mapped[str] = mapped_column(String(255), primary_key=True)
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cells_run: Mapped[int] = mapped_column(Integer, default=0)
    cells_total: Mapped[int] = mapped_column(Integer, default=0)
    executions: Mapped[int] = mapped_column(Integer, default=0)
    last_activity: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ProgressEvent(Base):
    """A report already counted: servers retry, and a retried report must count once."""

    __tablename__ = "progress_events"
    __table_args__ = (Index("ix_progress_events_username", "username"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    course_id: Mapped[str] = mapped_column(String(128))
    lesson: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AssignmentResult(Base):
    """A member's submission and grade of one assignment, as the course's gradebook has it."""

    __tablename__ = "assignment_results"

    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # submitted | autograded | graded
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    submission_id: Mapped[str | None] = mapped_column(String(64))  # nbgrader's, once autograded
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Badge(Base):
    """An Open Badges 3.0 credential, kept exactly as signed."""

    __tablename__ = "badges"
    __table_args__ = (UniqueConstraint("username", "course_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    course_id: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    credential: Mapped[str] = mapped_column(Text)  # the signed JSON document
