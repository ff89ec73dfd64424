"""The roster: who the members are, their role and the courses they take or teach.

Format (``hub/demo/roster.csv``), a CSV file with this header::

    username,full_name,email,role,courses

``role`` is ``learner``, ``instructor`` or ``admin``; ``courses`` is a
``;``-separated list of course ids (folders of ``courses/``).  A learner is in
``nbgrader-<course>`` of each course, an instructor in ``formgrade-<course>``;
an admin takes their courses as a learner.  A course may name the member's
role in it, so one member can learn one course and teach another:
``digital-marketing;networking:instructor``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("username", "full_name", "email", "role", "courses")
ROLES = ("learner", "instructor", "admin")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def learner_group(course: str) -> str:
    return f"nbgrader-{course}"


def instructor_group(course: str) -> str:
    return f"formgrade-{course}"


def course_of_group(group: str) -> str | None:
    """The course a course group belongs to, or None for any other group."""
    for prefix in ("nbgrader-", "formgrade-"):
        if group.startswith(prefix):
            return group[len(prefix):]
    return None


COURSE_ROLES = ("learner", "instructor")


@dataclass(frozen=True)
class Member:
    username: str
    full_name: str
    email: str
    role: str
    enrolments: tuple[tuple[str, str], ...]  # (course, "learner" | "instructor")
    line: int = 0

    @property
    def courses(self) -> tuple[str, ...]:
        return tuple(course for course, _ in self.enrolments)

    def courses_as(self, course_role: str) -> tuple[str, ...]:
        return tuple(course for course, role in self.enrolments if role == course_role)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(
            (instructor_group if role == "instructor" else learner_group)(course) for course, role in self.enrolments
        )

    def row(self) -> dict:
        default = "instructor" if self.role == "instructor" else "learner"
        courses = (course if role == default else f"{course}:{role}" for course, role in self.enrolments)
        return {
            "username": self.username,
            "full_name": self.full_name,
            "email": self.email,
            "role": self.role,
            "courses": ";".join(courses),
        }


@dataclass(frozen=True)
class RosterProblem:
    path: Path
    line: int
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.problem}. Fix: {self.fix}."


class RosterError(ValueError):
    def __init__(self, problems: list[RosterProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _check_row(row: dict, known_courses, seen: dict) -> tuple[Member | None, tuple[str, str] | None]:
    """One data row: the member, or (problem, fix)."""
    if None in row or any(row.get(c) is None for c in COLUMNS):
        return None, (
            f"expected {len(COLUMNS)} fields ({','.join(COLUMNS)})",
            "give every line exactly these columns; quote a field that contains a comma",
        )
    username = row["username"].strip()
    if not USERNAME_PATTERN.match(username):
        return None, (
            f"username {username!r} is not valid",
            "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if username in seen:
        return None, (f"username {username!r} already appears on line {seen[username]}", "keep one line per member")
    email = row["email"].strip()
    if email and not EMAIL_PATTERN.match(email):
        return None, (f"email {email!r} is not an e-mail address", "write it as name@example.org, or leave it empty")
    role = row["role"].strip()
    if role not in ROLES:
        return None, (f"role {role!r} is unknown", f"use one of {', '.join(ROLES)}")
    default = "instructor" if role == "instructor" else "learner"
    enrolments = []
    for entry in (c.strip() for c in row["courses"].split(";")):
        if not entry:
            continue
        course, _, course_role = (part.strip() for part in entry.partition(":"))
        course_role = course_role or default
        if course_role not in COURSE_ROLES:
            return None, (
                f"{entry!r} names the role {course_role!r} in a course",
                "write the course id alone, or course:learner / course:instructor",
            )
        if course in dict(enrolments):
            return None, (f"course {course!r} is listed twice", "list each course once")
        enrolments.append((course, course_role))
        if course not in known_courses:
            known = ", ".join(sorted(known_courses)) or "none"
            return None, (
                f"course {course!r} is not in the course catalogue",
                f"name one of the courses ({known}) or add a folder courses/{course}/ with its course.toml",
            )
    if role != "admin" and not enrolments:
        return None, (f"a {role} needs at least one course", "list course ids separated by ';'")
    full_name = row["full_name"].strip()
    if not full_name:
        return None, ("full_name is empty", "write the member's name")
    return Member(username, full_name, email, role, tuple(enrolments)), None


def parse_roster(path: Path, known_courses) -> tuple[list[Member], list[RosterProblem]]:
    """Every good member of the roster, and every bad line with its problem.

    A bad line is never half-read: it yields a problem and no member.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return [], [RosterProblem(path, 0, f"cannot read the roster ({e})", "point LEVA_ROSTER at a UTF-8 CSV file")]
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    if header != COLUMNS:
        return [], [
            RosterProblem(path, 1, f"the header is {','.join(header) or 'missing'}", f"make the first line {','.join(COLUMNS)}")
        ]
    reader.fieldnames = list(COLUMNS)
    members, problems, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        member, problem = _check_row(row, known_courses, seen)
        if problem:
            problems.append(RosterProblem(path, line, *problem))
            continue
        seen[member.username] = line
        members.append(Member(**{**member.__dict__, "line": line}))
    return members, problems


def read_roster(path: Path, known_courses) -> list[Member]:
    """The whole roster, or :class:`RosterError` naming every bad line."""
    members, problems = parse_roster(path, known_courses)
    if problems:
        raise RosterError(problems)
    return members


def write_roster(members, stream) -> None:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for member in members:
        writer.writerow(member.row())
