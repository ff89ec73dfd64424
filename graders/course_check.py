"""Course checks: does every notebook of a course run, grade, and catch the usual mistakes?

A course is only as good as its tests.  These checks run the real nbgrader
steps on a throw-away copy of a course folder (see ``courses/README.md``):

* ``generate_assignment`` must accept every source assignment;
* the solution must autograde to full autograded marks, and the released
  (blank) notebook to zero, so the tests neither fail good work nor reward
  none;
* every wrong-answer variant (``wrong_answers/<assignment>.toml``) must lose
  points on the test cells it names and keep them on every other one, so a
  mistake learners really make is caught by the test meant to catch it;
* every lesson must run top to bottom within the per-cell time budget.

nbgrader is driven in-process through its converters and read back through
:class:`nbgrader.api.Gradebook`: one command-line call costs seconds of
start-up, while the solution, the blank notebook and every variant of an
assignment can be graded together in one autograde run.

Autograding and lessons execute course code: the checks work in a scratch
folder, never in the course folder itself.

The functions here serve the test-suite (``tests/test_courses.py``) and the
``leva course report`` command, which calls :func:`report`.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any, Union

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode
from sqlalchemy.exc import SAWarning
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log

from hub.courses import Course, load_courses

__all__ = [
    "DEFAULT_CELL_TIMEOUT",
    "HIDDEN_TESTS_MARK",
    "KERNEL_NAME",
    "RELEASED",
    "SOLUTION",
    "AssignmentCheck",
    "CellRun",
    "CourseCheckError",
    "DataCheck",
    "GradedCell",
    "Grading",
    "NbGraderFailed",
    "NotebookRun",
    "ParallelChecks",
    "ScratchCourse",
    "Variant",
    "VariantOutcome",
    "apply_variant",
    "assignment_cells",
    "autograde",
    "check_assignment",
    "check_data",
    "course_notebooks",
    "generate",
    "generator_takes_out_dir",
    "graded_cells",
    "kernel_name",
    "load_variants",
    "read_notebook",
    "report",
    "run_lesson",
    "run_notebook",
    "scratch_course",
    "shipped_data_files",
    "source_notebooks",
    "variants_file",
]

#: Seconds one cell may run, in a lesson and under the autograder.
DEFAULT_CELL_TIMEOUT = 30

#: Student ids under which :func:`check_assignment` grades its notebooks.
SOLUTION = "solution"
RELEASED = "released"
VARIANT_PREFIX = "variant-"

#: Keys of one ``[[variant]]`` table, all required.
VARIANT_KEYS = ("name", "mistake", "cell", "targets", "source")

#: What nbgrader's ClearHiddenTests looks for in a test cell.
HIDDEN_TESTS_MARK = "BEGIN HIDDEN TESTS"

#: The kernel every notebook must name, so it runs for members and the autograder alike.
KERNEL_NAME = "python3"

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SKIP_DIRS = {".ipynb_checkpoints", "__pycache__"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in kernel tracebacks

NotebookLike = Union[NotebookNode, Mapping[str, Any], str, os.PathLike]
Submission = Union[NotebookLike, Mapping[str, NotebookLike]]


class CourseCheckError(Exception):
    """A course file or notebook the checks cannot use; the message names the file and the fix."""


class NbGraderFailed(CourseCheckError):
    """An nbgrader step failed; ``log`` holds what nbgrader said, for the report."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message if not log else f"{message}\n{log}")
        self.log = log


# ---------------------------------------------------------------------------
# Notebooks and their nbgrader cells
# ---------------------------------------------------------------------------


def read_notebook(notebook: NotebookLike) -> NotebookNode:
    """A private copy of ``notebook`` (a path, a JSON dict or a node), so callers' copies stay untouched."""
    if isinstance(notebook, (str, os.PathLike)):
        return nbformat.read(os.fspath(notebook), as_version=4)
    return nbformat.from_dict(copy.deepcopy(dict(notebook)))


def _notebook_files(folder: Path) -> list[Path]:
    """The notebooks nbgrader sees in an assignment folder: its top level only."""
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file())


def source_notebooks(course: Course, assignment: str) -> dict[str, NotebookNode]:
    """The source notebooks of an assignment, keyed by notebook name (file name without ``.ipynb``)."""
    folder = course.source_dir / assignment
    notebooks = {p.stem: read_notebook(p) for p in _notebook_files(folder)}
    if not notebooks:
        raise CourseCheckError(f"{folder}: no notebook; put the assignment's .ipynb file there")
    return notebooks


def course_notebooks(course: Course) -> list[Path]:
    """Every notebook of a course (lessons and source assignments), to check what they all must share."""
    found = []
    for folder in (course.lessons_dir, course.source_dir):
        for path in sorted(folder.rglob("*.ipynb")):
            if not _SKIP_DIRS.intersection(path.relative_to(folder).parts):
                found.append(path)
    return found


def kernel_name(notebook: NotebookNode) -> str | None:
    """The kernelspec a notebook names, or None when it names none."""
    return notebook.metadata.get("kernelspec", {}).get("name")


@dataclass(frozen=True)
class GradedCell:
    """One cell that carries points, as nbgrader will count it."""

    notebook: str
    grade_id: str
    points: float
    autograded: bool  # an "autograder tests" cell; otherwise graded by hand
    hidden_tests: bool = False


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_cells(notebook: NotebookNode, name: str) -> list[GradedCell]:
    """The cells of one notebook that carry points.

    nbgrader scores a code cell that is graded but not a solution (a test
    cell) by running it; solution and task cells that are graded wait for a
    person.  This mirrors ``nbgrader.utils.determine_grade``.
    """
    cells = []
    for cell in notebook.cells:
        meta = _nbgrader(cell)
        if not (meta.get("grade") or meta.get("task")):
            continue
        autograded = (
            cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")
            and not meta.get("task")
        )
        cells.append(GradedCell(
            notebook=name,
            grade_id=meta.get("grade_id", ""),
            points=float(meta.get("points", 0)),
            autograded=bool(autograded),
            hidden_tests=bool(autograded) and HIDDEN_TESTS_MARK in cell.source,
        ))
    return cells


def assignment_cells(notebooks: Mapping[str, NotebookNode]) -> list[GradedCell]:
    """The graded cells of all notebooks of an assignment, in order."""
    return [cell for name, nb in notebooks.items() for cell in graded_cells(nb, name)]


def _find_cell(notebook: NotebookNode, grade_id: str) -> NotebookNode | None:
    for cell in notebook.cells:
        if _nbgrader(cell).get("grade_id") == grade_id:
            return cell
    return None


# ---------------------------------------------------------------------------
# Wrong-answer variants
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A mistake learners make: the solution cell it replaces and the test cells that must catch it."""

    name: str
    mistake: str
    cell: str
    targets: tuple[str, ...]
    source: str


def variants_file(course: Course, assignment: str) -> Path:
    return course.path / "wrong_answers" / f"{assignment}.toml"


def _variant(table: Any, where: str) -> Variant:
    """One ``[[variant]]`` table, checked key by key so the message can say what to fix."""
    if not isinstance(table, dict):
        raise CourseCheckError(f"{where}: must be a table with keys {', '.join(VARIANT_KEYS)}")
    missing = [key for key in VARIANT_KEYS if key not in table]
    if missing:
        raise CourseCheckError(f"{where}: missing key(s) {', '.join(map(repr, missing))}; "
                               f"a variant needs {', '.join(VARIANT_KEYS)}")
    unknown = sorted(set(table) - set(VARIANT_KEYS))
    if unknown:
        raise CourseCheckError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                               f"a variant has only {', '.join(VARIANT_KEYS)}")
    for key in ("name", "mistake", "cell", "source"):
        if not isinstance(table[key], str) or not table[key].strip():
            raise CourseCheckError(f"{where}: {key!r} must be a non-empty string")
    targets = table["targets"]
    if (not isinstance(targets, list) or not targets
            or not all(isinstance(t, str) and t for t in targets)):
        raise CourseCheckError(f"{where}: 'targets' must be a non-empty list of test-cell grade_ids")
    return Variant(table["name"], table["mistake"], table["cell"], tuple(targets), table["source"])


def load_variants(course: Course, assignment: str) -> list[Variant]:
    """The wrong-answer variants of an assignment; none when it has no ``wrong_answers`` file."""
    path = variants_file(course, assignment)
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CourseCheckError(f"{path}: not valid TOML ({e}); fix the syntax") from None
    unknown = sorted(set(data) - {"variant"})
    if unknown:
        raise CourseCheckError(f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                               f"list the mistakes as [[variant]] tables")
    tables = data.get("variant", [])
    if not isinstance(tables, list):
        raise CourseCheckError(f"{path}: 'variant' must be an array of tables ([[variant]])")
    variants, seen = [], set()
    for i, table in enumerate(tables, 1):
        name = table.get("name") if isinstance(table, dict) else None
        variant = _variant(table, f"{path} [[variant]] #{i}" + (f" ({name!r})" if name else ""))
        if variant.name in seen:
            raise CourseCheckError(f"{path} [[variant]] #{i}: the name {variant.name!r} is used twice; "
                                   f"give each variant its own name")
        seen.add(variant.name)
        variants.append(variant)
    return variants


def apply_variant(notebook: NotebookLike, variant: Variant) -> NotebookNode:
    """A copy of ``notebook`` with the variant's source in the cell whose grade_id is ``variant.cell``."""
    nb = read_notebook(notebook)
    cell = _find_cell(nb, variant.cell)
    if cell is None:
        raise CourseCheckError(
            f"variant {variant.name!r}: no cell has grade_id {variant.cell!r}; "
            f"set 'cell' to the grade_id of the solution cell it replaces")
    cell.source = variant.source.strip("\n")
    return nb


def _apply_to_assignment(notebooks: Mapping[str, NotebookNode], variant: Variant
                         ) -> dict[str, NotebookNode]:
    """The solution notebooks with the variant applied to the one notebook holding its cell."""
    holders = [name for name, nb in notebooks.items() if _find_cell(nb, variant.cell) is not None]
    if len(holders) != 1:
        where = "no notebook" if not holders else f"several notebooks ({', '.join(holders)})"
        raise CourseCheckError(
            f"variant {variant.name!r}: {where} of the assignment has a cell with grade_id "
            f"{variant.cell!r}; set 'cell' to the grade_id of one solution cell")
    return {name: apply_variant(nb, variant) if name == holders[0] else nb
            for name, nb in notebooks.items()}


# ---------------------------------------------------------------------------
# The scratch nbgrader course and the nbgrader steps
# ---------------------------------------------------------------------------


#: nbgrader's messages are captured per step (see :func:`_capture`) and shown
#: only when a step fails.  The logger stays outside the logging tree, so no
#: application's logging set-up can make it print.
_NBGRADER_LOG = logging.Logger("leva.course_check.nbgrader", logging.INFO)
_NBGRADER_LOG.addHandler(logging.NullHandler())


def _nbgrader_log() -> logging.Logger:
    return _NBGRADER_LOG


@dataclass
class ScratchCourse:
    """A throw-away nbgrader course directory made from a course folder.

    It holds a copy of ``nbgrader_config.py`` and ``source/``; nbgrader writes
    ``release/``, ``submitted/``, ``autograded/`` and ``gradebook.db`` beside
    them.  Use it as a context manager to remove it afterwards.
    """

    course: Course
    root: Path
    config: Config
    owned: bool = True  # remove ``root`` on close

    def coursedir(self, **traits: Any) -> CourseDirectory:
        """A fresh CourseDirectory on the scratch root; ``traits`` such as ``assignment_id``."""
        coursedir = CourseDirectory(config=self.config, log=_nbgrader_log())
        for name, value in traits.items():
            setattr(coursedir, name, value)
        return coursedir

    @property
    def db_url(self) -> str:
        return self.coursedir().db_url

    def path(self, step: str, student: str, assignment: str) -> Path:
        """Where nbgrader keeps ``assignment`` of ``student`` at ``step`` ("release", "submitted", ...)."""
        coursedir = self.coursedir()
        directory = getattr(coursedir, f"{step}_directory")
        return Path(coursedir.format_path(directory, student, assignment))

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ScratchCourse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _whole_seconds(seconds: float) -> int:
    """A time budget as nbclient and nbgrader take it: whole seconds, at least one."""
    return max(1, math.ceil(seconds))


def nbgrader_config(course: Course, root: Path, cell_timeout: float) -> Config:
    """The course's own nbgrader settings, pointed at the scratch root and held to the time budget."""
    config = Config()
    config_file = root / "nbgrader_config.py"
    if config_file.is_file():
        config.merge(PyFileConfigLoader(config_file.name, path=str(root)).load_config())
    overrides = Config()
    overrides.CourseDirectory.root = str(root)
    overrides.CourseDirectory.course_id = course.id
    overrides.Execute.timeout = _whole_seconds(cell_timeout)
    config.merge(overrides)
    return config


@functools.cache
def _empty_gradebook() -> bytes:
    """An empty gradebook database, made once per process.

    nbgrader stamps a new gradebook with the schema version it asks the
    ``alembic`` command for, which costs seconds; every scratch course starts
    from a copy instead.
    """
    with tempfile.TemporaryDirectory(prefix="leva-gradebook-") as tmp:
        path = Path(tmp) / "gradebook.db"
        with _scripts_on_path(), Gradebook(f"sqlite:///{path}"):
            pass
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM course")
        db.close()
        return path.read_bytes()


def scratch_course(course: Course, root: Path | None = None, *,
                   cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> ScratchCourse:
    """Copy the course's nbgrader files into ``root`` (default: a new temporary folder).

    A folder given as ``root`` is kept on close, so a failing check can be
    inspected; a temporary one is removed.
    """
    owned = root is None
    root = Path(tempfile.mkdtemp(prefix=f"leva-{course.id}-")) if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config_file = course.path / "nbgrader_config.py"
    if config_file.is_file():
        shutil.copy2(config_file, root / config_file.name)
    shutil.copytree(course.source_dir, root / "source", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*_SKIP_DIRS))
    scratch = ScratchCourse(course, root.resolve(),
                            nbgrader_config(course, root.resolve(), cell_timeout), owned)
    gradebook = scratch.root / "gradebook.db"
    if scratch.db_url == f"sqlite:///{gradebook}" and not gradebook.exists():
        gradebook.write_bytes(_empty_gradebook())
    return scratch


@contextmanager
def _scripts_on_path() -> Iterator[None]:
    """Make this Python's commands findable while nbgrader runs.

    A new gradebook asks the ``alembic`` command for its schema version, and
    the command is installed beside nbgrader, which need not be on ``PATH``
    (a virtual environment used without activating it).
    """
    scripts = sysconfig.get_path("scripts")
    path = os.environ.get("PATH", "")
    if scripts in path.split(os.pathsep):
        yield
        return
    os.environ["PATH"] = os.pathsep.join([scripts, path]) if path else scripts
    try:
        yield
    finally:
        os.environ["PATH"] = path


def _capture(converter: Any) -> dict:
    """Run an nbgrader converter as nbgrader's own API does: its log captured, errors as a result."""
    with _scripts_on_path(), warnings.catch_warnings():
        # nbgrader's gradebook trips SQLAlchemy's autoflush warnings when it
        # creates students; they are nbgrader's to fix and change nothing here
        warnings.simplefilter("ignore", SAWarning)
        return capture_log(converter)


def _run(converter: Any, what: str) -> str:
    """Run an nbgrader converter, returning its log; raise :class:`NbGraderFailed` on failure."""
    result = _capture(converter)
    output = result.get("log", "")
    if not result["success"]:
        raise NbGraderFailed(f"nbgrader {what} failed", output + result.get("error", ""))
    return output


def generate(course: Course | ScratchCourse, assignment: str, *,
             cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> ScratchCourse:
    """Run nbgrader's ``generate_assignment``: records the assignment in the gradebook and releases it.

    Given a :class:`Course`, a new scratch course is made and returned (close
    it, or use it as a context manager); given a scratch course, it is used.
    Raises :class:`NbGraderFailed` with nbgrader's log when nbgrader refuses
    the assignment.
    """
    scratch = course if isinstance(course, ScratchCourse) else scratch_course(
        course, cell_timeout=cell_timeout)
    converter = GenerateAssignment(
        coursedir=scratch.coursedir(assignment_id=assignment), config=scratch.config,
        log=_nbgrader_log())
    converter.force = True
    converter.create_assignment = True
    try:
        _run(converter, f"generate_assignment {assignment}")
    except NbGraderFailed:
        if scratch is not course:
            scratch.close()
        raise
    return scratch


class _TimedAutograde(Autograde):
    """Autograde that notes how long each submission takes: the figure a course is budgeted on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        self.started[student_id] = time.monotonic()
        super().init_assignment(assignment_id, student_id)

    def set_permissions(self, assignment_id: str, student_id: str) -> None:
        super().set_permissions(assignment_id, student_id)
        self.seconds[student_id] = time.monotonic() - self.started[student_id]


@dataclass
class Grading:
    """Autograded scores of one autograde run.

    ``scores[student][grade_id] = (score, max_score)`` for every autograded
    test cell; students whose grading failed are in ``errors`` instead.
    """

    assignment: str
    scores: dict[str, dict[str, tuple[float, float]]]
    seconds: dict[str, float]
    errors: dict[str, str] = field(default_factory=dict)
    log: str = ""

    def total(self, student: str) -> float:
        """The autograded score of one student."""
        return sum(score for score, _ in self.scores[student].values())

    @property
    def totals(self) -> dict[str, float]:
        return {student: self.total(student) for student in self.scores}


def _submission_notebooks(submission: Submission, notebook_names: list[str]) -> dict[str, NotebookLike]:
    """A submission as ``{notebook name: notebook}``; a single notebook stands for a one-notebook assignment."""
    is_single = (isinstance(submission, (str, os.PathLike, NotebookNode))
                 or (isinstance(submission, Mapping) and "cells" in submission))
    if not is_single:
        return dict(submission)
    if len(notebook_names) != 1:
        raise CourseCheckError(
            f"the assignment has notebooks {', '.join(notebook_names)}; "
            f"submit a mapping of notebook name to notebook")
    return {notebook_names[0]: submission}


def _write_submission(scratch: ScratchCourse, assignment: str, student: str,
                      notebooks: Mapping[str, NotebookLike]) -> None:
    if not _STUDENT_ID.match(student):
        raise CourseCheckError(f"student id {student!r}: use letters, digits, '.', '_' and '-' only")
    folder = scratch.path("submitted", student, assignment)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, notebook in notebooks.items():
        nbformat.write(read_notebook(notebook), folder / f"{name}.ipynb")


def _read_scores(scratch: ScratchCourse, assignment: str, student: str,
                 cells: list[GradedCell]) -> dict[str, tuple[float, float]]:
    """The autograded test cells' scores of one student, from the gradebook."""
    autograded = {(c.notebook, c.grade_id) for c in cells if c.autograded}
    scores = {}
    with Gradebook(scratch.db_url, scratch.course.id) as gb:
        for notebook in sorted({nb for nb, _ in autograded}):
            submitted = gb.find_submission_notebook(notebook, assignment, student)
            for grade in submitted.grades:
                if (notebook, grade.name) in autograded:
                    scores[grade.name] = (float(grade.score or 0.0), float(grade.max_score))
    return scores


#: jupyter_client's kernel start can lose a race for its ports on a busy machine; the kernel is
#: then gone before nbgrader's first message.  That says nothing about the notebook: grade again.
KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"


def autograde(scratch: ScratchCourse, assignment: str, submissions: Mapping[str, Submission],
              retries: int = 2) -> Grading:
    """Autograde several submissions of one generated assignment in one nbgrader run.

    ``submissions`` maps a student id to a notebook (path, JSON dict or
    node), or to ``{notebook name: notebook}`` for assignments of several
    notebooks.  Students are created in the gradebook as needed; earlier
    submissions of other students in the scratch course are left alone.
    Submissions whose kernel failed to start are graded again, ``retries`` times at most.
    """
    grading = _autograde_once(scratch, assignment, submissions)
    again = {s: submissions[s] for s in grading.errors if KERNEL_START_FAILURE in grading.log}
    if again and retries > 0:
        retried = autograde(scratch, assignment, again, retries - 1)
        for student in again:
            grading.errors.pop(student, None)
        grading.scores.update(retried.scores)
        grading.errors.update(retried.errors)
        grading.seconds.update(retried.seconds)
    return grading


def _autograde_once(scratch: ScratchCourse, assignment: str, submissions: Mapping[str, Submission]) -> Grading:
    sources = {p.stem: read_notebook(p)
               for p in _notebook_files(scratch.path("source", ".", assignment))}
    names = list(sources)
    cells = assignment_cells(sources)
    if not submissions:
        return Grading(assignment, {}, {})
    for student, submission in submissions.items():
        _write_submission(scratch, assignment, student, _submission_notebooks(submission, names))
    submitted_root = scratch.root / scratch.coursedir().submitted_directory
    others = [p.name for p in submitted_root.iterdir() if p.is_dir() and p.name not in submissions]
    converter = _TimedAutograde(
        coursedir=scratch.coursedir(assignment_id=assignment, student_id="*",
                                    student_id_exclude=",".join(others)),
        config=scratch.config, log=_nbgrader_log())
    converter.force = True
    converter.create_student = True
    result = _capture(converter)
    output = result.get("log", "") + result.get("error", "")
    grading = Grading(assignment, {}, dict(converter.seconds), log=output)
    for student in submissions:
        if student not in converter.seconds:
            grading.errors[student] = f"autograding {student!r} failed; see the log:\n{output}"
            continue
        try:
            grading.scores[student] = _read_scores(scratch, assignment, student, cells)
        except MissingEntry as e:
            grading.errors[student] = f"no grades for {student!r} in the gradebook ({e})"
    return grading


# ---------------------------------------------------------------------------
# Lessons
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CellRun:
    """How long one code cell of a notebook ran."""

    index: int
    seconds: float
    first_line: str


@dataclass
class NotebookRun:
    """One top-to-bottom run of a notebook: the cells that ran and the error that stopped it, if any."""

    path: str
    cells: list[CellRun]
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def slow_cells(self, budget: float) -> list[CellRun]:
        return [cell for cell in self.cells if cell.seconds > budget]


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0][:60] if lines else ""


def run_notebook(path: Path, *, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                 cwd: Path | None = None) -> NotebookRun:
    """Run a notebook top to bottom in a fresh kernel, timing each code cell.

    The kernel starts in ``cwd`` (default: the notebook's folder), as it
    would for a member.  A cell that errors or runs past ``cell_timeout``
    stops the run; the result says which.
    """
    path = Path(path)
    nb = read_notebook(path)
    cells: list[CellRun] = []
    current: dict[str, Any] = {}  # the cell under way: its index and start time

    def on_execute(cell: NotebookNode, cell_index: int) -> None:
        current.update(index=cell_index, start=time.monotonic())

    def on_executed(cell: NotebookNode, cell_index: int, execute_reply: dict) -> None:
        cells.append(CellRun(cell_index, time.monotonic() - current.pop("start"),
                             _first_line(cell.source)))

    client = NotebookClient(
        nb, timeout=_whole_seconds(cell_timeout), kernel_name=kernel_name(nb) or KERNEL_NAME,
        resources={"metadata": {"path": str(cwd or path.parent)}},
        on_cell_execute=on_execute, on_cell_executed=on_executed)
    begin = time.monotonic()
    error = None
    try:
        client.execute()
    except Exception as e:  # a cell error, a timeout or a dead kernel: all end the run
        if "start" in current:  # timed out or died before its reply
            index = current["index"]
            cells.append(CellRun(index, time.monotonic() - current["start"],
                                 _first_line(nb.cells[index].source)))
        where = f"cell {current['index']}: " if "index" in current else ""
        error = f"{where}{type(e).__name__}: {_ANSI.sub('', str(e)).strip()}"
    return NotebookRun(str(path), sorted(cells, key=lambda c: c.index), error,
                       time.monotonic() - begin)


def run_lesson(course: Course, lesson: str, *, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
               workdir: Path | None = None) -> NotebookRun:
    """Run one lesson (a path below ``lessons/``) in a copy of the lessons folder.

    The copy is what a member gets in ``~/<course-id>/``, and keeps files a
    lesson writes out of the course folder.
    """
    with tempfile.TemporaryDirectory(prefix=f"leva-{course.id}-lessons-", dir=workdir) as tmp:
        copy_root = Path(tmp) / course.id
        shutil.copytree(course.lessons_dir, copy_root, ignore=shutil.ignore_patterns(*_SKIP_DIRS))
        run = run_notebook(copy_root / lesson, cell_timeout=cell_timeout)
    run.path = f"{course.id}/{lesson}"
    return run


# ---------------------------------------------------------------------------
# Course data
# ---------------------------------------------------------------------------


@dataclass
class DataCheck:
    """What ``data/generate.py --out DIR`` wrote, compared with the data the course ships."""

    generated: list[str]
    differing: list[str]
    not_shipped: list[str]
    not_generated: list[str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (self.error is None and bool(self.generated)
                and not (self.differing or self.not_shipped or self.not_generated))

    def problems(self) -> list[str]:
        found = [self.error] if self.error else []
        if not self.generated and not self.error:
            found.append("data/generate.py --out DIR wrote no files")
        found += [f"{p}: differs from the shipped file" for p in self.differing]
        found += [f"{p}: generated but not shipped" for p in self.not_shipped]
        found += [f"{p}: shipped but not generated" for p in self.not_generated]
        return found


def _files_below(root: Path, folders: Iterable[Path]) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for folder in folders if folder.is_dir()
        for p in folder.rglob("*")
        if p.is_file() and not _SKIP_DIRS.intersection(p.relative_to(root).parts)
    }


def _data_folders(root: Path) -> list[Path]:
    return [root / "lessons" / "data", *sorted((root / "source").glob("*/data"))]


def shipped_data_files(course: Course) -> set[str]:
    """The course's data files (``lessons/data/…``, ``source/<a>/data/…``), relative to the course folder."""
    return _files_below(course.path, _data_folders(course.path))


def generator_takes_out_dir(course: Course) -> bool:
    """Whether ``data/generate.py`` takes ``--out DIR``; without it a run would overwrite the shipped data."""
    script = course.path / "data" / "generate.py"
    return script.is_file() and "--out" in script.read_text(encoding="utf-8")


def check_data(course: Course, out_dir: Path, *, timeout: float = 300) -> DataCheck:
    """Run ``data/generate.py --out out_dir`` and compare its files byte for byte with the shipped ones."""
    script = course.path / "data" / "generate.py"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([sys.executable, str(script), "--out", str(out_dir)], cwd=out_dir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return DataCheck([], [], [], [], f"data/generate.py ran longer than {timeout:g} s")
    if proc.returncode != 0:
        return DataCheck([], [], [], [], f"data/generate.py --out failed ({proc.returncode}):\n"
                                         f"{proc.stderr[-2000:]}")
    generated = _files_below(out_dir, [out_dir])
    shipped = shipped_data_files(course)
    differing = sorted(p for p in generated & shipped
                       if (out_dir / p).read_bytes() != (course.path / p).read_bytes())
    return DataCheck(sorted(generated), differing, sorted(generated - shipped),
                     sorted(shipped - generated))


# ---------------------------------------------------------------------------
# One assignment, checked
# ---------------------------------------------------------------------------


@dataclass
class VariantOutcome:
    """How the tests took one wrong-answer variant."""

    variant: Variant
    scores: dict[str, tuple[float, float]] | None = None
    error: str | None = None

    @property
    def caught(self) -> list[str]:
        """Targets that lost points, as they should."""
        return [t for t in self.variant.targets if self._lost(t)]

    @property
    def missed(self) -> list[str]:
        """Targets that kept full marks: the mistake slips past them."""
        return [t for t in self.variant.targets if t in (self.scores or {}) and not self._lost(t)]

    @property
    def collateral(self) -> list[str]:
        """Other test cells that lost points: the tests blame the wrong thing."""
        return [g for g in (self.scores or {}) if g not in self.variant.targets and self._lost(g)]

    @property
    def unknown_targets(self) -> list[str]:
        return [t for t in self.variant.targets if self.scores is not None and t not in self.scores]

    @property
    def ok(self) -> bool:
        return (self.error is None and self.scores is not None and not self.missed
                and not self.collateral and not self.unknown_targets)

    def _lost(self, grade_id: str) -> bool:
        score, max_score = (self.scores or {}).get(grade_id, (0.0, 0.0))
        return score < max_score

    def describe(self) -> str:
        """One line for the report."""
        if self.error:
            return f"{self.variant.name}: ERROR {self.error.splitlines()[0]}"
        parts = [f"caught by {', '.join(self.caught)}" if self.caught else "not caught"]
        if self.missed:
            parts.append(f"missed by {', '.join(self.missed)}")
        if self.collateral:
            parts.append(f"also failed {', '.join(self.collateral)}")
        if self.unknown_targets:
            parts.append(f"unknown target(s) {', '.join(self.unknown_targets)}")
        return f"{self.variant.name}: {'ok' if self.ok else 'FAIL'}, {'; '.join(parts)}"


@dataclass
class AssignmentCheck:
    """Everything :func:`check_assignment` found out about one assignment."""

    course_id: str
    assignment: str
    declared_points: float
    cells: int = 0
    autograded_points: float = 0.0
    manual_points: float = 0.0
    manual_cells: int = 0
    hidden_test_cells: int = 0
    generate_ok: bool = False
    generate_log: str = ""
    solution: dict[str, tuple[float, float]] | None = None
    released: dict[str, tuple[float, float]] | None = None
    variants: list[VariantOutcome] = field(default_factory=list)
    variants_error: str | None = None
    autograde_seconds: float | None = None
    grading_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the check itself could not run
    workdir: str | None = None  # the scratch course directory, when it was kept

    @property
    def id(self) -> str:
        return f"{self.course_id}/{self.assignment}"

    @property
    def solution_full(self) -> bool:
        return self.solution is not None and all(s == m for s, m in self.solution.values())

    @property
    def released_zero(self) -> bool:
        return self.released is not None and all(s == 0 for s, _ in self.released.values())

    def variant(self, name: str) -> VariantOutcome:
        for outcome in self.variants:
            if outcome.variant.name == name:
                return outcome
        raise KeyError(f"{self.id} has no variant {name!r}")

    def problems(self, variants: bool = True) -> list[str]:
        """What is wrong, one sentence each; empty when the assignment passes every check.

        ``variants=False`` leaves out the variants that are not caught, for a
        report that lists every variant anyway.
        """
        if self.error:
            return [self.error]
        found = []
        if not self.manual_cells:
            found.append("no manually graded cell")
        if not self.hidden_test_cells:
            found.append(f"no test cell with a {HIDDEN_TESTS_MARK!r} block")
        if not self.generate_ok:
            found.append(f"generate_assignment failed:\n{self.generate_log}")
            return found
        for student, error in self.grading_errors.items():
            if not student.startswith(VARIANT_PREFIX):
                found.append(f"{student}: {error}")
        if self.solution is not None and not self.solution_full:
            lost = [f"{g} {s:g}/{m:g}" for g, (s, m) in self.solution.items() if s < m]
            found.append(f"solution does not get full autograded marks: {', '.join(lost)}")
        if self.solution is not None and sum(m for _, m in self.solution.values()) != self.autograded_points:
            found.append("the gradebook's autograded points differ from the notebook's")
        if self.released is not None and not self.released_zero:
            kept = [f"{g} {s:g}/{m:g}" for g, (s, m) in self.released.items() if s > 0]
            found.append(f"released (blank) notebook scores points: {', '.join(kept)}")
        if self.variants_error:
            found.append(self.variants_error)
        if variants:
            found += [outcome.describe() for outcome in self.variants if not outcome.ok]
        if self.autograded_points + self.manual_points != self.declared_points:
            found.append(f"course.toml gives {self.declared_points:g} points, the notebooks "
                         f"{self.autograded_points:g} autograded + {self.manual_points:g} manual")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems()


def _submissions(scratch: ScratchCourse, assignment: str, solution: dict[str, NotebookNode],
                 variants: list[Variant], outcomes: list[VariantOutcome]) -> dict[str, Submission]:
    """Solution, released notebook and every applicable variant, each under its own student id."""
    released_folder = scratch.path("release", ".", assignment)
    submissions: dict[str, Submission] = {
        SOLUTION: solution,
        RELEASED: {p.stem: p for p in _notebook_files(released_folder)},
    }
    for i, variant in enumerate(variants, 1):
        outcome = VariantOutcome(variant)
        outcomes.append(outcome)
        try:
            submissions[f"{VARIANT_PREFIX}{i:02d}"] = _apply_to_assignment(solution, variant)
        except CourseCheckError as e:
            outcome.error = str(e)
    return submissions


def check_assignment(course: Course, assignment: str, *,
                     cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                     workdir: Path | None = None) -> AssignmentCheck:
    """Generate an assignment and autograde its solution, its blank release and every variant.

    All notebooks are graded in one autograde run.  ``workdir`` keeps the
    scratch course for inspection; by default it is a temporary folder.
    """
    solution = source_notebooks(course, assignment)
    cells = assignment_cells(solution)
    check = AssignmentCheck(
        course.id, assignment, course.assignment(assignment).points,
        cells=sum(len(nb.cells) for nb in solution.values()),
        autograded_points=sum(c.points for c in cells if c.autograded),
        manual_points=sum(c.points for c in cells if not c.autograded),
        manual_cells=sum(not c.autograded for c in cells),
        hidden_test_cells=sum(c.hidden_tests for c in cells))
    try:
        variants = load_variants(course, assignment)
    except CourseCheckError as e:
        variants, check.variants_error = [], str(e)
    with scratch_course(course, workdir, cell_timeout=cell_timeout) as scratch:
        check.workdir = None if scratch.owned else str(scratch.root)
        try:
            generate(scratch, assignment)
        except NbGraderFailed as e:
            check.generate_log = e.log
            return check
        check.generate_ok = True
        submissions = _submissions(scratch, assignment, solution, variants, check.variants)
        grading = autograde(scratch, assignment, submissions)
    check.grading_errors = grading.errors
    check.solution = grading.scores.get(SOLUTION)
    check.released = grading.scores.get(RELEASED)
    check.autograde_seconds = grading.seconds.get(SOLUTION)
    for i, outcome in enumerate(check.variants, 1):
        student = f"{VARIANT_PREFIX}{i:02d}"
        if outcome.error is None:
            outcome.scores = grading.scores.get(student)
            outcome.error = grading.errors.get(student)
    return check


class ParallelChecks:
    """Assignment checks run side by side in worker processes.

    Autograding one notebook is mostly kernel start-up and imports, so on a
    machine with several cores whole assignments are checked at once.  Each
    worker still grades one assignment in a single nbgrader run.  Workers
    are spawned, not forked: the parent may already hold kernel connections.
    Use as a context manager; unfinished checks are cancelled on exit.
    """

    def __init__(self, *, workers: int | None = None, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                 workdir: Path | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.cell_timeout = cell_timeout
        self.workdir = Path(workdir) if workdir else None
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[tuple[str, str], Future] = {}

    def submit(self, course: Course, assignment: str) -> None:
        """Start checking an assignment, unless it is already under way."""
        key = (course.id, assignment)
        if key in self._futures:
            return
        workdir = self.workdir / f"{course.id}-{assignment}" if self.workdir else None
        if self.workers == 1:  # no process to gain from: check here, now
            self._futures[key] = future = Future()
            try:
                future.set_result(check_assignment(course, assignment, cell_timeout=self.cell_timeout,
                                                   workdir=workdir))
            except Exception as e:
                future.set_exception(e)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        self._futures[key] = self._pool.submit(
            check_assignment, course, assignment, cell_timeout=self.cell_timeout, workdir=workdir)

    def result(self, course: Course, assignment: str) -> AssignmentCheck:
        """The check of an assignment, waiting for it (and starting it if nobody did)."""
        self.submit(course, assignment)
        return self._futures[(course.id, assignment)].result()

    def as_completed(self) -> Iterator[tuple[str, str]]:
        """The ``(course id, assignment)`` of each submitted check as soon as it is done."""
        keys = {future: key for key, future in self._futures.items()}
        for future in as_completed(keys):
            yield keys[future]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelChecks:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def _courses(courses: Iterable[Course | str] | None) -> list[Course]:
    catalogue = None
    chosen = []
    for item in (courses if courses is not None else [None]):
        if isinstance(item, Course):
            chosen.append(item)
            continue
        catalogue = catalogue if catalogue is not None else load_courses()
        if item is None:
            chosen.extend(catalogue.values())
        elif item in catalogue:
            chosen.append(catalogue[item])
        else:
            raise CourseCheckError(f"no course {item!r}; known: {', '.join(catalogue) or 'none'}")
    return chosen


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if digits else f"{value:g}"


def _progress_line(check: AssignmentCheck) -> str:
    if check.error:
        return f"{check.id}: could not be checked"
    if not check.generate_ok:
        return f"{check.id}: generate_assignment FAILED"
    return (f"{check.id}: {check.cells} cells, {check.autograded_points:g} autograded + "
            f"{check.manual_points:g} manual points (course.toml {check.declared_points:g}), "
            f"autograde {_fmt(check.autograde_seconds)} s, "
            f"solution {'full' if check.solution_full else 'NOT FULL'}, "
            f"blank {'0' if check.released_zero else 'NOT 0'}")


def _table(checks: list[AssignmentCheck]) -> list[str]:
    header = ("assignment", "cells", "auto", "manual", "points", "grade s", "variants", "status")
    rows = [header] + [
        (c.id, str(c.cells), f"{c.autograded_points:g}", f"{c.manual_points:g}",
         f"{c.declared_points:g}", _fmt(c.autograde_seconds),
         f"{sum(v.ok for v in c.variants)}/{len(c.variants)} ok",
         "ok" if c.ok else f"{len(c.problems())} problem(s)")
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def report(courses: Iterable[Course | str] | None = None, stream: IO[str] = sys.stdout, *,
           cell_timeout: float = DEFAULT_CELL_TIMEOUT, workers: int | None = None
           ) -> list[AssignmentCheck]:
    """Check every assignment of ``courses`` (default: all), printing as it goes and a table at the end.

    ``courses`` holds :class:`Course` objects or course ids.  Assignments are
    checked ``workers`` at a time (default: one per core), so the progress
    lines come in the order they finish; the table keeps the course order.
    Returns the checks, so a command can set its exit status from ``check.ok``.
    """
    order = [(course, a.name) for course in _courses(courses) for a in course.assignments]
    courses_by_id = {course.id: course for course, _ in order}
    done: dict[tuple[str, str], AssignmentCheck] = {}
    with ParallelChecks(workers=min(workers or os.cpu_count() or 1, max(1, len(order))),
                        cell_timeout=cell_timeout) as checks:
        for course, assignment in order:
            checks.submit(course, assignment)
        for course_id, assignment in checks.as_completed():
            course = courses_by_id[course_id]
            try:
                check = checks.result(course, assignment)
            except Exception as e:  # one broken assignment must not hide the others
                check = AssignmentCheck(course_id, assignment, course.assignment(assignment).points,
                                        error=f"{type(e).__name__}: {e}")
            done[(course_id, assignment)] = check
            _print_check(check, stream)
    ordered = [done[(course.id, assignment)] for course, assignment in order]
    print("", file=stream)
    for line in _table(ordered):
        print(line, file=stream)
    stream.flush()
    return ordered


def _print_check(check: AssignmentCheck, stream: IO[str]) -> None:
    print(_progress_line(check), file=stream, flush=True)
    for outcome in check.variants:
        print(f"  variant {outcome.describe()}", file=stream, flush=True)
    for problem in check.problems(variants=False):
        print(f"  problem: {problem}", file=stream, flush=True)
