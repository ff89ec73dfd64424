"""The course catalogue: every folder of ``courses/`` with a ``course.toml``.

The course file is the one description of a course that the hub (lesson
delivery, groups), the graders (points, due dates) and the community profiles
(badge criteria) all read.  See ``courses/README.md`` for its format.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COURSE_FILE = "course.toml"


class CourseError(ValueError):
    """A course folder or course file that cannot be used; the message names file and fix."""


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    points: float
    due: dt.datetime | None
    module: str | None = None


@dataclass(frozen=True)
class Module:
    id: str
    title: str
    lessons: tuple[str, ...]


@dataclass(frozen=True)
class Badge:
    name: str
    description: str
    criteria: str
    min_score: float
    required_lessons: tuple[str, ...]
    required_assignments: tuple[str, ...]


@dataclass(frozen=True)
class Course:
    id: str
    path: Path
    title: str
    description: str
    modules: tuple[Module, ...]
    assignments: tuple[Assignment, ...]
    badge: Badge | None
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def lessons_dir(self) -> Path:
        """What members receive: everything below it lands in ``~/<course-id>/``."""
        return self.path / "lessons"

    @property
    def source_dir(self) -> Path:
        return self.path / "source"

    @property
    def lessons(self) -> tuple[str, ...]:
        return tuple(lesson for module in self.modules for lesson in module.lessons)

    def assignment(self, name: str) -> Assignment:
        for assignment in self.assignments:
            if assignment.name == name:
                return assignment
        raise KeyError(f"course {self.id!r} has no assignment {name!r}")


def courses_dir() -> Path:
    """The course folder: ``LEVA_COURSES_DIR`` or the project's ``courses/``."""
    return Path(os.environ.get("LEVA_COURSES_DIR") or PROJECT_ROOT / "courses").resolve()


def _require(table: dict, key: str, where: str, kind=str):
    if key not in table:
        raise CourseError(f"{where}: missing key {key!r}; add it (see courses/README.md)")
    value = table[key]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise CourseError(f"{where}: {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def _due(value, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise CourseError(
            f"{where}: 'due' must be a date-time with its time zone, e.g. 2026-12-15T23:59:00+01:00"
        )
    return value


def load_course(path: Path) -> Course:
    """Read and check one course folder."""
    path = Path(path)
    course_file = path / COURSE_FILE
    if not course_file.is_file():
        raise CourseError(
            f"{course_file}: no course file; every folder in {path.parent} needs a {COURSE_FILE} "
            f"(see courses/README.md)"
        )
    try:
        data = tomllib.loads(course_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CourseError(f"{course_file}: not valid TOML ({e}); fix the syntax") from None

    where = str(course_file)
    course_id = _require(data, "id", where)
    if course_id != path.name:
        raise CourseError(f"{where}: id {course_id!r} must equal the folder name {path.name!r}")
    modules = []
    for i, m in enumerate(data.get("modules", []), 1):
        mwhere = f"{where} [[modules]] #{i}"
        lessons = tuple(_require(m, "lessons", mwhere, list))
        for lesson in lessons:
            if not (path / "lessons" / lesson).is_file():
                raise CourseError(f"{mwhere}: lesson {lesson!r} is not in {path / 'lessons'}")
        modules.append(Module(_require(m, "id", mwhere), _require(m, "title", mwhere), lessons))
    assignments = []
    for i, a in enumerate(data.get("assignments", []), 1):
        awhere = f"{where} [[assignments]] #{i}"
        name = _require(a, "name", awhere)
        if not (path / "source" / name).is_dir():
            raise CourseError(f"{awhere}: assignment {name!r} has no folder {path / 'source' / name}")
        assignments.append(
            Assignment(
                name=name,
                title=_require(a, "title", awhere),
                points=_require(a, "points", awhere, float),
                due=_due(a.get("due"), awhere),
                module=a.get("module"),
            )
        )
    badge = None
    if "badge" in data:
        b = data["badge"]
        bwhere = f"{where} [badge]"
        badge = Badge(
            name=_require(b, "name", bwhere),
            description=_require(b, "description", bwhere),
            criteria=_require(b, "criteria", bwhere),
            min_score=_require(b, "min_score", bwhere, float),
            required_lessons=tuple(b.get("required_lessons", [])),
            required_assignments=tuple(b.get("required_assignments", [])),
        )
    known = {"id", "title", "description", "modules", "assignments", "badge"}
    return Course(
        id=course_id,
        path=path.resolve(),
        title=_require(data, "title", where),
        description=_require(data, "description", where),
        modules=tuple(modules),
        assignments=tuple(assignments),
        badge=badge,
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_courses(root: Path | None = None) -> dict[str, Course]:
    """Every course below ``root`` (default: :func:`courses_dir`), keyed by id."""
    root = Path(root) if root else courses_dir()
    if not root.is_dir():
        raise CourseError(
            f"{root}: the course folder does not exist; create it or point LEVA_COURSES_DIR at one"
        )
    return {
        p.name: load_course(p)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith((".", "_"))
    }
