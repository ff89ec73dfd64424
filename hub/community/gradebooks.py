"""Submissions and grades from each course's nbgrader gradebook and exchange.

Every ``interval`` seconds the watcher asks each gradebook one cheap question
(how many submissions and grades, their sum, the newest submission) and looks at
the names in the course's exchange inbound folder. Only when the answer changed
does it read the course's results in full. So a grade appears within seconds
whichever path wrote it: the formgrader, ``nbgrader autograde`` or ``leva``.

A learner's result for an assignment is:

- ``submitted``: in the exchange, not yet autograded (or being autograded);
- ``autograded``: in the gradebook, with answers still to grade by hand;
- ``graded``: every cell graded; the score is final (late penalty included).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from .models import AssignmentResult, utcnow
from .store import normalise_url

log = logging.getLogger(__name__)

FINGERPRINT = text(
    """
    SELECT (SELECT count(*) FROM submitted_assignment),
           (SELECT max(timestamp) FROM submitted_assignment),
           (SELECT count(*) FROM grade),
           (SELECT sum(coalesce(manual_score, auto_score, 0) + coalesce(extra_credit, 0)) FROM grade),
           (SELECT count(*) FROM grade WHERE needs_manual_grade),
           (SELECT sum(coalesce(late_submission_penalty, 0)) FROM submitted_notebook)
    """
)

RESULTS = text(
    """
    SELECT sa.id, sa.student_id, a.name, sa.timestamp,
           sum(CASE WHEN g.manual_score IS NOT NULL THEN g.manual_score
                    WHEN g.auto_score IS NOT NULL THEN g.auto_score ELSE 0 END
               + coalesce(g.extra_credit, 0)),
           sum(gc.max_score),
           sum(CASE WHEN g.needs_manual_grade THEN 1 ELSE 0 END),
           count(g.auto_score) + count(g.manual_score)
    FROM submitted_assignment sa
    JOIN assignment a ON a.id = sa.assignment_id
    LEFT JOIN submitted_notebook sn ON sn.assignment_id = sa.id
    LEFT JOIN grade g ON g.notebook_id = sn.id
    LEFT JOIN grade_cells gc ON gc.id = g.cell_id
    GROUP BY sa.id, sa.student_id, a.name, sa.timestamp
    """
)

PENALTIES = text(
    """
    SELECT sn.assignment_id, sum(coalesce(sn.late_submission_penalty, 0))
    FROM submitted_notebook sn GROUP BY sn.assignment_id
    """
)


@dataclass(frozen=True)
class Result:
    username: str
    assignment: str
    status: str
    score: float | None
    max_score: float | None
    submitted_at: dt.datetime | None
    submission_id: str | None = None


def _naive(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def parse_inbound(name: str) -> tuple[str, str, dt.datetime | None] | None:
    """``<student>+<assignment>+<timestamp>[+<random>]``, nbgrader's name of a submission."""
    parts = name.split("+")
    if len(parts) < 3:
        return None
    student, assignment, stamp = parts[0], parts[1], parts[2]
    try:
        # nbgrader writes e.g. "2026-11-24 07:10:41.123456 UTC"
        at = dt.datetime.strptime(stamp.replace(" UTC", ""), "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        at = None
    return student, assignment, at


class CourseGradebook:
    """One course: its gradebook database and its exchange inbound folder."""

    def __init__(self, course_id: str, db_url: str, inbound: Path):
        self.course_id = course_id
        self.db_url = normalise_url(db_url)
        self.inbound = inbound
        self._engine: Engine | None = None

    def engine(self) -> Engine | None:
        if self._engine is None:
            url = make_url(self.db_url)
            if url.get_backend_name() == "sqlite":
                if not url.database or not Path(url.database).exists():
                    return None  # the hub has not prepared the course yet
                # read-only: the service never writes a gradebook, nor creates one by mistake
                self._engine = create_engine(
                    f"sqlite:///file:{url.database}?mode=ro&uri=true", connect_args={"timeout": 5}
                )
            else:
                self._engine = create_engine(self.db_url, pool_pre_ping=True, pool_size=1, max_overflow=0)
        return self._engine

    def inbound_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.inbound))
        except FileNotFoundError:
            return []

    def fingerprint(self):
        engine = self.engine()
        if engine is None:
            return None
        with engine.connect() as connection:
            row = tuple(connection.execute(FINGERPRINT).one())
        return row + (tuple(self.inbound_names()),)

    def results(self) -> list[Result]:
        results: dict[tuple[str, str], Result] = {}
        for name in self.inbound_names():
            parsed = parse_inbound(name)
            if parsed is None:
                continue
            student, assignment, at = parsed
            known = results.get((student, assignment))
            if known is None or (at and known.submitted_at and at > known.submitted_at):
                results[student, assignment] = Result(student, assignment, "submitted", None, None, at)
        engine = self.engine()
        if engine is not None:
            with engine.connect() as connection:
                penalties = dict(connection.execute(PENALTIES).all())
                for sid, student, assignment, timestamp, score, max_score, pending, scored in connection.execute(RESULTS):
                    if not scored:
                        # autograding has begun (nbgrader writes the rows first) but given no score yet
                        known = results.get((student, assignment))
                        results[student, assignment] = Result(
                            student, assignment, "submitted", None, float(max_score or 0),
                            _naive(timestamp) or (known.submitted_at if known else None), sid,
                        )
                        continue
                    score = max(0.0, float(score or 0) - float(penalties.get(sid) or 0))
                    status = "autograded" if pending else "graded"
                    results[student, assignment] = Result(
                        student, assignment, status, round(score, 4), float(max_score or 0), _naive(timestamp), sid
                    )
        return list(results.values())


class GradebookWatcher:
    """Keeps ``assignment_results`` in step with every course's gradebook."""

    def __init__(self, sessions, gradebooks: list[CourseGradebook], interval: float = 2.0, on_change=None):
        self.sessions = sessions
        self.gradebooks = gradebooks
        self.interval = interval
        self.on_change = on_change  # called with {(username, course_id)} after each change
        self._fingerprints: dict[str, object] = {}
        self._task: asyncio.Task | None = None

    async def poll_once(self) -> None:
        for gradebook in self.gradebooks:
            try:
                fingerprint = await asyncio.to_thread(gradebook.fingerprint)
                if fingerprint is None or fingerprint == self._fingerprints.get(gradebook.course_id):
                    continue
                results = await asyncio.to_thread(gradebook.results)
            except SQLAlchemyError as e:
                # nbgrader holding a write lock, or a gradebook being created: next round
                log.debug("Gradebook of %s not readable now: %s", gradebook.course_id, e)
                continue
            changed = self.apply(gradebook.course_id, results)
            self._fingerprints[gradebook.course_id] = fingerprint
            if changed:
                log.info("Gradebook of %s: %d results changed", gradebook.course_id, len(changed))
                if self.on_change:
                    self.on_change(changed)

    def apply(self, course_id: str, results: list[Result]) -> set[tuple[str, str]]:
        changed = set()
        with self.sessions() as db:
            stored = {
                (r.username, r.assignment): r
                for r in db.scalars(select(AssignmentResult).where(AssignmentResult.course_id == course_id))
            }
            for result in results:
                row = stored.pop((result.username, result.assignment), None)
                values = (result.status, result.score, result.max_score, result.submitted_at, result.submission_id)
                if row is not None and (row.status, row.score, row.max_score, row.submitted_at, row.submission_id) == values:
                    continue
                if row is None:
                    row = AssignmentResult(username=result.username, course_id=course_id, assignment=result.assignment)
                    db.add(row)
                row.status, row.score, row.max_score, row.submitted_at, row.submission_id = values
                row.updated_at = utcnow()
                changed.add((result.username, course_id))
            for row in stored.values():
                # gone from the gradebook and the exchange (an instructor removed it)
                db.delete(row)
                changed.add((row.username, course_id))
            db.commit()
        return changed

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("Reading the gradebooks failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())
