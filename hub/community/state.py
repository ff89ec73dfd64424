"""What every handler of the service works with, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..courses import Course
from .badges import Issuer
from .models import Profile
from .people import HubPeople
from .profiles import default_profile


@dataclass
class Community:
    sessions: sessionmaker
    catalogue: dict[str, Course]
    people: HubPeople
    issuer: Issuer
    exchange_dir: Path
    at_risk_days: int = 7
    low_score: float = 0.5
    pass_score: float = 0.7

    def session(self) -> Session:
        return self.sessions()

    def profile(self, db: Session, username: str) -> Profile:
        """The stored profile, or the defaults (not stored) for a member who never edited theirs."""
        return db.get(Profile, username) or default_profile(username)

    def profiles(self, db: Session, usernames) -> dict[str, Profile]:
        usernames = list(usernames)
        stored = {p.username: p for p in db.scalars(select(Profile).where(Profile.username.in_(usernames)))}
        return {name: stored.get(name) or default_profile(name) for name in usernames}

    def pass_fraction(self, course: Course) -> float:
        """The share of points that counts as passing: the badge's, else ``pass_score``."""
        return course.badge.min_score if course.badge else self.pass_score

    def released(self, course_id: str, assignment: str) -> bool:
        return (self.exchange_dir / course_id / "outbound" / assignment).is_dir()
