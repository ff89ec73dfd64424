"""Lesson progress reported by members' servers, and each member's progress in a course.

A member's server reports three kinds of event about a lesson notebook
(``<course-id>/<lesson>.ipynb`` in their home):

- ``opened``: the notebook was loaded;
- ``saved``: the notebook was saved, with how many of its code cells had run
  (``cells_run`` of ``cells_total``); a lesson is completed once a save shows
  every code cell run;
- ``executed``: ``count`` cells were run in a kernel of the notebook.

Each event carries an id chosen by the server, so a retried report counts once.
Completion of a course is the share of its lessons completed and of its
assignments submitted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..courses import Course
from .models import AssignmentResult, LessonProgress, ProgressEvent, utcnow
from .people import Person

EVENT_KINDS = ("opened", "saved", "executed")
MAX_EVENTS = 500  # per report


class EventError(ValueError):
    pass


@dataclass
class Ingested:
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0  # not a lesson of a course the member learns
    courses: set = field(default_factory=set)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "ignored": self.ignored}


def _time(value, now: dt.datetime) -> dt.datetime:
    """An event's time, naive UTC; a missing, odd or future time becomes the time of receipt."""
    try:
        at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return now
    if at.tzinfo:
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return min(at, now)


def _count(event: dict, key: str, default: int = 0) -> int:
    value = event.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
        raise EventError(f"{key} must be a whole number between 0 and 100000")
    return value


def lesson_of(path: str, catalogue: dict[str, Course], person: Person) -> tuple[str, str] | None:
    parts = str(path).strip("/").split("/")
    if len(parts) != 2:
        return None
    course_id, lesson = parts
    course = catalogue.get(course_id)
    if course is None or lesson not in course.lessons or course_id not in person.learns:
        return None
    return course_id, lesson


def record_events(db: Session, person: Person, events, catalogue: dict[str, Course]) -> Ingested:
    """Apply a report of lesson events by ``person``'s server; the caller commits."""
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise EventError(f"'events' must be a list of at most {MAX_EVENTS} events")
    now = utcnow()
    result = Ingested()
    seen = set()
    for event in events:
        if not isinstance(event, dict):
            raise EventError("each event must be an object")
        event_id, kind = event.get("id"), event.get("kind")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
            raise EventError("each event needs an 'id' of at most 64 characters")
        if kind not in EVENT_KINDS:
            raise EventError(f"'kind' must be one of {', '.join(EVENT_KINDS)}")
        if event_id in seen or db.get(ProgressEvent, event_id) is not None:
            result.duplicates += 1
            continue
        seen.add(event_id)
        where = lesson_of(event.get("path", ""), catalogue, person)
        if where is None:
            result.ignored += 1
            continue
        course_id, lesson = where
        at = _time(event.get("at"), now)
        progress = db.get(LessonProgress, (person.name, course_id, lesson))
        if progress is None:
            progress = LessonProgress(
                username=person.name, course_id=course_id, lesson=lesson, cells_run=0, cells_total=0, executions=0
            )
            db.add(progress)
        progress.opened_at = min(progress.opened_at or at, at)
        progress.last_activity = max(progress.last_activity or at, at)
        if kind == "saved":
            progress.cells_total = _count(event, "cells_total")
            progress.cells_run = min(_count(event, "cells_run"), progress.cells_total)
            if progress.cells_total and progress.cells_run >= progress.cells_total and not progress.completed_at:
                progress.completed_at = at
        elif kind == "executed":
            progress.executions += _count(event, "count", 1)
        db.add(ProgressEvent(id=event_id, username=person.name, course_id=course_id, lesson=lesson, kind=kind, at=at))
        result.accepted += 1
        result.courses.add(course_id)
    return result


@dataclass
class CourseProgress:
    """One learner in one course: lessons, assignments, completion, last activity."""

    course: Course
    lessons: dict[str, LessonProgress]
    results: dict[str, AssignmentResult]

    @property
    def lessons_completed(self) -> list[str]:
        return [name for name in self.course.lessons if name in self.lessons and self.lessons[name].completed_at]

    @property
    def assignments_submitted(self) -> list[str]:
        return [a.name for a in self.course.assignments if a.name in self.results]

    @property
    def completion(self) -> float:
        total = len(self.course.lessons) + len(self.course.assignments)
        done = len(self.lessons_completed) + len(self.assignments_submitted)
        return round(done / total, 4) if total else 0.0

    @property
    def last_activity(self) -> dt.datetime | None:
        times = [p.last_activity for p in self.lessons.values() if p.last_activity]
        times += [r.submitted_at for r in self.results.values() if r.submitted_at]
        return max(times) if times else None

    @property
    def score(self) -> float:
        return sum(r.score or 0 for r in self.results.values() if r.status in ("autograded", "graded"))

    @property
    def points(self) -> float:
        return sum(a.points for a in self.course.assignments)

    def graded_fractions(self) -> list[float]:
        return [
            r.score / r.max_score
            for r in self.results.values()
            if r.status in ("autograded", "graded") and r.score is not None and r.max_score
        ]

    def assignment(self, name: str) -> dict:
        result = self.results.get(name)
        if result is None:
            points = self.course.assignment(name).points
            return {"status": "not_submitted", "score": None, "max_score": points, "submitted_at": None}
        return {
            "status": result.status,
            "score": result.score if result.status != "submitted" else None,
            "max_score": result.max_score if result.max_score is not None else self.course.assignment(name).points,
            "submitted_at": iso(result.submitted_at),
        }


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def course_progress(db: Session, course: Course, usernames=None) -> dict[str, CourseProgress]:
    """Progress in ``course`` of the given members (default: everyone with any), keyed by username."""
    lessons = select(LessonProgress).where(LessonProgress.course_id == course.id)
    results = select(AssignmentResult).where(AssignmentResult.course_id == course.id)
    if usernames is not None:
        usernames = list(usernames)
        lessons = lessons.where(LessonProgress.username.in_(usernames))
        results = results.where(AssignmentResult.username.in_(usernames))
    progress: dict[str, CourseProgress] = {}
    for name in usernames or ():
        progress[name] = CourseProgress(course, {}, {})
    for row in db.scalars(lessons):
        progress.setdefault(row.username, CourseProgress(course, {}, {})).lessons[row.lesson] = row
    for row in db.scalars(results):
        progress.setdefault(row.username, CourseProgress(course, {}, {})).results[row.assignment] = row
    return progress
