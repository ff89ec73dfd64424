"""Grades of one course as CSV: one row per learner and assignment, missing work included."""

from __future__ import annotations

import csv
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

COLUMNS = ("student", "assignment", "due", "submitted_at", "late", "status", "score", "max_score")


def grade_rows(db_url: str, course_id: str, root: Path | None = None):
    with Gradebook(db_url, course_id=course_id) as gb:
        for assignment in gb.assignments:
            for student in gb.students:
                row = {"student": student.id, "assignment": assignment.name, "max_score": assignment.max_score,
                       "due": assignment.duedate.isoformat() if assignment.duedate else ""}
                try:
                    submission = gb.find_submission(assignment.name, student.id)
                except MissingEntry:
                    # collected but not autograded yet, or never submitted
                    collected = root is not None and (root / "submitted" / student.id / assignment.name).is_dir()
                    yield {**row, "submitted_at": "", "late": "", "status": "collected" if collected else "missing", "score": 0}
                    continue
                status = "needs manual grade" if submission.needs_manual_grade else "graded"
                yield {**row, "submitted_at": submission.timestamp.isoformat() if submission.timestamp else "",
                       "late": submission.total_seconds_late > 0, "status": status, "score": submission.score}


def export_grades(db_url: str, course_id: str, stream, root: Path | None = None) -> int:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in grade_rows(db_url, course_id, root):
        writer.writerow(row)
        count += 1
    return count
