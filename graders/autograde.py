"""Grading a whole cohort fast, and honestly: the engine behind ``leva grade``.

``nbgrader autograde`` grades one notebook after another and spends most of
its time starting and stopping kernels.  :class:`CohortGrader` grades every
collected submission of an assignment with the same steps and the same
preprocessors, in the order :class:`nbgrader.converters.Autograde` runs them,
but:

* in parallel: a pool of worker processes, each with its own kernel factory
  (:mod:`graders.sandbox`) that forks one fresh kernel per notebook, ready in
  milliseconds instead of the second a new interpreter takes, and always one
  ahead; nbgrader's per-command start-up (seconds) is paid once per worker;
* isolated and limited: each kernel runs in a private copy of the submission,
  fenced by :mod:`graders.guard`, with a per-cell timeout, a per-submission
  wall-clock timeout, a memory cap and an output cap; a notebook that loops,
  crashes its kernel, floods its output or is not JSON fails alone;
* honestly: on top of nbgrader's own defence (locked and test cells
  overwritten from the gradebook), the nbgrader metadata of every known cell
  is restored from the gradebook, deleted test cells are put back, and the
  guard checks every cell and resets what the learner's code changed before
  every test (see the README, "Grading");
* resumable: a submission's results reach the gradebook before its
  ``autograded`` folder is published, so a run that is interrupted and
  started again grades only what is not done.

The gradebook is written through :class:`nbgrader.api.Gradebook` and
nbgrader's own ``SaveAutoGrades``, ``AssignLatePenalties`` and
``CheckCellMetadata``, by the coordinating process alone, so the formgrader,
feedback and exports see exactly what ``nbgrader autograde`` would have
written.  After each recorded submission :func:`graders.hooks.notify_graded`
is called, for services that want to hear about new scores at once.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# jsonschema imports rfc3987_syntax, where installed, to check IRI formats, which notebook schemas do not use;
# building its grammar takes seconds of CPU in every grading process (the forkserver and the coordinator)
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode
from sqlalchemy.exc import SAWarning
from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Instance, Integer, List, Unicode, default
from traitlets.config import Config, LoggingConfigurable

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells, SaveAutoGrades
from nbgrader.utils import is_ignored

from . import forkserver, hooks
from .guard import fingerprinter
from .sandbox import FactorySpec, KernelFactory, Limits, SandboxKernel, protected_paths


CONFIG_FILE = "nbgrader_config.py"
STAGING = ".leva-grading"  # below the course root: results not yet in the gradebook

#: Why a submission failed when its kernel ended while a cell ran.
KERNEL_DIED = "the kernel ended while a cell ran"

#: Kernelspec names of the kernels the factory forks.
PYTHON_KERNELS = ("python3", "python")


class GradingError(Exception):
    """The assignment cannot be graded at all (no course, no such assignment...); the message says why."""


class SubmissionFailed(Exception):
    """One submission could not be graded; the message is the reason shown to instructors."""


# ---------------------------------------------------------------------------
# The course directory
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class CourseTarget:
    """An nbgrader course directory and its configuration."""

    root: Path
    config: Config

    @property
    def coursedir(self) -> CourseDirectory:
        return CourseDirectory(config=self.config)

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id or self.root.name

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url


def load_config(root: Path) -> Config:
    """nbgrader's configuration of a course directory, read as nbgrader's own commands read it.

    That is: the ``nbgrader_config.py`` files of Jupyter's config path, then
    the one in the course directory; ``CourseDirectory.root`` defaults to it.
    """
    from nbgrader.apps.baseapp import NbGrader

    app = NbGrader()
    app.log.setLevel(logging.ERROR)
    with _working_directory(root):
        app.load_config_file()
    config = Config(app.config)
    if "root" not in config.CourseDirectory:
        config.CourseDirectory.root = str(root)
    return config


def find_course(course: str | None, *, cwd: Path | None = None, state_dir: Path | None = None) -> CourseTarget:
    """The course to grade: the current directory when it is a course directory, else the platform's.

    As nbgrader's commands do, a folder holding ``nbgrader_config.py`` is the
    course directory; elsewhere the course is
    ``$LEVA_STATE_DIR/courses/<course>/``.
    """
    cwd = Path(cwd or os.getcwd()).resolve()
    if (cwd / CONFIG_FILE).is_file():
        target = CourseTarget(cwd, load_config(cwd))
        if course and course not in (target.course_id, target.root.name):
            raise GradingError(
                f"this folder is the course directory of {target.course_id!r}, not {course!r}; "
                f"run the command elsewhere or name this course")
        return target
    if not course:
        raise GradingError(f"{cwd} is not a course directory (no {CONFIG_FILE}); name the course")
    if state_dir is None:
        from hub.settings import load_settings

        state_dir = load_settings().state_dir
    root = Path(state_dir) / "courses" / course
    if not (root / CONFIG_FILE).is_file():
        raise GradingError(
            f"no course {course!r} in {Path(state_dir) / 'courses'} (no {CONFIG_FILE}); "
            f"start the hub once so it prepares the course, or run the command in a course directory")
    return CourseTarget(root.resolve(), load_config(root))


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


# ---------------------------------------------------------------------------
# One gradebook per process
# ---------------------------------------------------------------------------


class _SharedGradebook:
    """Stands in for ``Gradebook(db_url)`` in nbgrader's preprocessors: one connection per process.

    nbgrader opens the gradebook afresh in every preprocessor of every
    notebook (about 30 ms each, mostly creating the engine and checking the
    tables); a grader that handles hundreds of notebooks keeps one open.
    Leaving a ``with`` block ends the transaction instead of closing.
    """

    _open: dict[str, Gradebook] = {}
    kind: type = None  # _ReusableGradebook, or _FrozenSourceGradebook in workers

    def __new__(cls, db_url: str, course_id: str = "default_course", authenticator=None):
        gradebook = cls._open.get(db_url)
        if gradebook is None:
            gradebook = cls._open[db_url] = (cls.kind or _ReusableGradebook)(db_url, course_id, authenticator)
            gradebook.courses = {course_id}
        elif course_id not in gradebook.courses:
            gradebook.check_course(course_id)  # as a new Gradebook(db_url, course_id) would
            gradebook.courses.add(course_id)
        return gradebook

    @classmethod
    def close_all(cls) -> None:
        for gradebook in cls._open.values():
            gradebook.really_close()
        cls._open.clear()


class _BatchedSession:
    """A session whose ``commit()`` waits for the end of a batch (see :meth:`_ReusableGradebook.batch`)."""

    def __init__(self, session) -> None:
        self._session = session
        self.deferred = False

    def commit(self) -> None:
        if not self.deferred:
            self._session.commit()

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class _ReusableGradebook(Gradebook):
    """A gradebook that stays open across ``with`` blocks and can batch nbgrader's commits."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.db = _BatchedSession(self.db)

    def close(self) -> None:
        if not self.db.deferred:
            self.db.rollback()  # commits were made by the callers; this only ends the transaction

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for everything inside: nbgrader commits after every cell, which means a
        disk sync per cell; a submission's results are committed together (or not at all)."""
        self.db.deferred = True
        try:
            yield
        except BaseException:
            self.db.deferred = False
            self.db.rollback()
            raise
        else:
            self.db.deferred = False
            self.db.commit()

    def really_close(self) -> None:
        self.db = self.db._session
        super().close()


class _Snapshot:
    """Plain attributes copied from a gradebook row (the row's own object expires with its transaction)."""

    def __init__(self, **attributes) -> None:
        self.__dict__.update(attributes)


class _FrozenSourceGradebook(_ReusableGradebook):
    """A worker's gradebook: the assignment's source notebooks and cells are read once.

    nbgrader's ``OverwriteCells`` looks every cell up in the gradebook, one
    query each; the source cells do not change while a cohort is graded, so
    a worker keeps plain copies.  Workers only read the gradebook.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frozen: dict[tuple[str, str], _Snapshot] = {}

    def _frozen(self, notebook: str, assignment: str) -> _Snapshot:
        key = (notebook, assignment)
        if key not in self.frozen:
            nb = super().find_notebook(notebook, assignment)
            cells = [_Snapshot(name=c.name, cell_type=c.cell_type, locked=c.locked, source=c.source,
                               checksum=c.checksum) for c in nb.source_cells]
            self.frozen[key] = _Snapshot(
                name=nb.name, kernelspec=nb.kernelspec, source_cells=cells,
                grade_cells=[_Snapshot(name=c.name, max_score=c.max_score, cell_type=c.cell_type)
                             for c in nb.grade_cells],
                solution_cells=[_Snapshot(name=c.name) for c in nb.solution_cells],
                task_cells=[_Snapshot(name=c.name, max_score=c.max_score) for c in nb.task_cells])
            self.db.rollback()
        return self.frozen[key]

    def find_notebook(self, name: str, assignment: str):
        return self._frozen(name, assignment)

    def find_source_cell(self, name: str, notebook: str, assignment: str):
        for cell in self._frozen(notebook, assignment).source_cells:
            if cell.name == name:
                return cell
        raise MissingEntry()

    def find_graded_cell(self, name: str, notebook: str, assignment: str):
        nb = self._frozen(notebook, assignment)
        for cell in nb.grade_cells + nb.task_cells:
            if cell.name == name:
                return cell
        raise MissingEntry()


class _Exporter(NotebookExporter):
    """nbconvert's notebook exporter without re-validating the whole notebook after every preprocessor.

    That validation is a third of what preparing a notebook costs; the
    notebook is validated when it is read and when it is written.
    """

    def _validate_preprocessor(self, nbc, preprocessor) -> None:
        pass


@functools.lru_cache(maxsize=None)
def _schema_validator(schema_json: str):
    import json

    import jsonschema

    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


class _CachedJsonschema:
    """Stands in for ``jsonschema`` in nbgrader's metadata checks: same validation, schema compiled once."""

    ValidationError = None

    @staticmethod
    def validate(instance, schema) -> None:
        import json

        import jsonschema

        error = jsonschema.exceptions.best_match(
            _schema_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
        if error is not None:
            raise error


#: nbgrader modules whose ``Gradebook`` the grader replaces by :class:`_SharedGradebook`.
_GRADEBOOK_USERS = ("overwritecells", "overwritekernelspec", "saveautogrades", "latesubmissions", "getgrades")


def share_gradebooks() -> None:
    """Make nbgrader's preprocessors in this process use :class:`_SharedGradebook`.

    And let nbgrader's metadata checks compile their JSON schema once rather
    than for every cell.
    """
    import importlib

    import jsonschema

    for name in _GRADEBOOK_USERS:
        module = importlib.import_module(f"nbgrader.preprocessors.{name}")
        module.Gradebook = _SharedGradebook
    common = importlib.import_module("nbgrader.nbgraderformat.common")
    _CachedJsonschema.ValidationError = jsonschema.ValidationError
    common.jsonschema = _CachedJsonschema


# ---------------------------------------------------------------------------
# Preprocessors
# ---------------------------------------------------------------------------


class RestoreCellMetadata(NbGraderPreprocessor):
    """Give every cell the gradebook knows the nbgrader metadata its source cell has.

    nbgrader's ``OverwriteCells`` restores a cell's source, type, lock and
    points, but trusts the submitted ``grade``, ``solution`` and ``task``
    flags: a learner who turns a test cell into a solution cell may edit it
    freely.  This runs before ``OverwriteCells`` and puts every flag back;
    cells that claim a ``grade_id`` the gradebook does not know lose their
    nbgrader metadata, and test and locked cells lose tags that would make
    the kernel skip them.  Notebooks nobody tampered with are left unchanged.
    """

    skip_tags = List(["skip-execution"], help="Cell tags that make nbclient skip a cell.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        self.known = _source_cells(resources["nbgrader"]["db_url"], resources["nbgrader"]["notebook"],
                                   resources["nbgrader"]["assignment"])
        self.restored = resources.setdefault("leva", {}).setdefault("restored", [])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            return cell, resources
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        truth = self.known.get(grade_id)
        if truth is None:
            del cell.metadata["nbgrader"]
            self.restored.append(f"cell {index + 1}: nbgrader metadata of an unknown cell removed")
            return cell, resources
        wanted = dict(meta)
        wanted.update(truth)
        if "points" not in truth:
            wanted.pop("points", None)
        if wanted != meta:
            self.restored.append(f"{grade_id}: nbgrader metadata restored")
            cell.metadata["nbgrader"] = wanted
        if truth["grade"] or truth["locked"]:
            tags = cell.metadata.get("tags", [])
            kept = [tag for tag in tags if tag not in self.skip_tags]
            if kept != tags:
                cell.metadata["tags"] = kept
                self.restored.append(f"{grade_id}: tag that skips the cell removed")
        return cell, resources


_SOURCE_CELLS: dict[tuple[str, str, str], dict[str, dict]] = {}


def _source_cells(db_url: str, notebook: str, assignment: str) -> dict[str, dict]:
    """The authoritative nbgrader flags of the notebook's cells, from the gradebook (cached per process)."""
    key = (db_url, notebook, assignment)
    if key not in _SOURCE_CELLS:
        with _SharedGradebook(db_url) as gb:
            source = gb.find_notebook(notebook, assignment)
            grades = {cell.name: float(cell.max_score) for cell in source.grade_cells}
            tasks = {cell.name: float(cell.max_score) for cell in source.task_cells}
            solutions = {cell.name for cell in source.solution_cells}
            known = {}
            for cell in source.source_cells:
                flags = {"grade_id": cell.name, "grade": cell.name in grades, "solution": cell.name in solutions,
                         "task": cell.name in tasks, "locked": bool(cell.locked), "schema_version": 3}
                if cell.name in grades or cell.name in tasks:
                    flags["points"] = grades.get(cell.name, tasks.get(cell.name))
                known[cell.name] = flags
        _SOURCE_CELLS[key] = known
    return _SOURCE_CELLS[key]


class OutputLimitExceeded(SubmissionFailed):
    pass


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` on a kernel of the factory, with an output cap and the guard's seal.

    Cells run exactly as nbgrader runs them (same timeouts, interrupts and
    error handling, taken from the course's ``Execute`` settings); after the
    last one, one more cell asks the guard to confirm that every cell of the
    notebook ran, in order, through the kernel's own machinery.
    """

    sandbox_kernel = Instance(SandboxKernel, allow_none=True)
    output_limit = Integer(16 * 1024 * 1024, help="Bytes of output one notebook may produce.").tag(config=True)
    guard_token = Unicode("")
    seal_source = Unicode("")
    test_cells = Dict(help="Position in the guard's plan of each test cell, by notebook index.")

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        from nbclient import NotebookClient

        kernel = self.sandbox_kernel
        NotebookClient.__init__(self, nb, kernel.km)
        self.kc = kernel.client
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.output_bytes = 0
        with self.setup_kernel():
            info_msg = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
            for index, cell in enumerate(self.nb.cells):
                self.preprocess_cell(cell, resources, index)
            self.seal()
        self.set_widgets_metadata()
        return self.nb, self.resources

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if index not in self.test_cells:
            return super().preprocess_cell(cell, resources, index)
        source = cell.source  # the test as the kernel runs it (see test_statements); as it was in the notebook
        cell.source = test_statements(source)[0]
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = source

    def seal(self) -> None:
        reply = self.wait_for_reply(self.kc.execute(self.seal_source, store_history=False))
        if reply is None:
            raise SubmissionFailed("the kernel did not answer after the last cell")
        report = self.sandbox_kernel.guard_report()
        tampered = [line[len("tamper "):] for line in report if line.startswith("tamper ")]
        if tampered:
            raise SubmissionFailed(f"tampering with the grader: {tampered[0]}")
        if "exited" in report:
            raise SubmissionFailed("the notebook ended its kernel (exit() or quit() in a cell)")
        if not any(line.split()[:2] == ["seal", self.guard_token] for line in report):
            raise SubmissionFailed("the grader could not confirm that every cell ran")
        finished = {int(line.split()[1]) for line in report if line.startswith("test ") and line.endswith(" finished")}
        for index, position in self.test_cells.items():
            cell = self.nb.cells[index]
            if position not in finished and not any(o.get("output_type") == "error" for o in cell.outputs):
                name = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index + 1}")
                raise SubmissionFailed(f"tampering with the grader: the test {name!r} stopped before its end "
                                       f"and no error was reported")

    def process_message(self, msg: dict, cell: NotebookNode, cell_index: int):
        self.output_bytes += _message_size(msg.get("content", {}))
        if self.output_bytes > self.output_limit:
            reason = f"the notebook produced more than {self.output_limit / 1048576:g} MB of output (cell {cell_index + 1})"
            self.sandbox_kernel.failure = reason
            self.sandbox_kernel.terminate()
            raise OutputLimitExceeded(reason)
        return super().process_message(msg, cell, cell_index)


def _message_size(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, dict):
        return sum(_message_size(value) for value in content.values())
    if isinstance(content, list):
        return sum(_message_size(value) for value in content)
    return 8


# ---------------------------------------------------------------------------
# What the guard must see: the notebook's cells in order
# ---------------------------------------------------------------------------


def cell_kind(cell: NotebookNode) -> str:
    """``test`` (autograded), ``locked`` (the instructor's, not a test) or ``learner``."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution") and not meta.get("task"):
        return "test"
    if meta.get("locked") and not meta.get("solution"):
        return "locked"
    return "learner"


def bound_names(source: str) -> tuple[str, ...]:
    """Names a cell binds at the notebook's top level (assignments, imports, definitions)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    names: list[str] = []

    def targets(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def statements(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.extend((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            for field in ("body", "orelse", "finalbody"):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    statements(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                statements(handler.body)

    statements(tree.body)
    return tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=4096)
def ipython_source(source: str) -> str | None:
    """The source IPython will parse for a cell (after its input transformations); None if it refuses.

    Cached: the instructor's cells are the same in every submission.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython will refuse it the same way
        return None


#: Appended to every test cell the kernel runs: reaching it proves the test's statements all ran.
TEST_END = "\npass  # leva: end of the test\n"


@functools.lru_cache(maxsize=4096)
def test_statements(source: str) -> tuple[str, tuple] | None:
    """How the kernel runs a test cell: the source it is sent, and what the guard expects it to execute.

    IPython compiles each top-level statement of a cell on its own and stops
    at the first that raises.  The test is sent with a last ``pass`` appended;
    the guard sees every statement the kernel executes and compares it with
    these fingerprints (bytecode, constants, names, first line), so a test
    counts as finished only when all its statements and the ``pass`` ran, in
    order, whatever the notebook's code did to how errors are reported.  A
    test whose last statement is an expression keeps it shown, without the
    ``pass`` (only the statements before it are then proved).  None: IPython
    will refuse the cell.
    """
    sent = source.rstrip() + TEST_END
    transformed = ipython_source(sent)
    try:
        body = ast.parse(transformed or "").body
    except SyntaxError:
        return None
    if len(body) < 2 or not isinstance(body[-1], ast.Pass):
        return None
    if isinstance(body[-2], ast.Expr):  # IPython shows a last expression: leave it last
        sent, body = source, body[:-1]
    flags, fingerprint = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0), fingerprinter()
    fingerprints = []
    for number, node in enumerate(body, 1):
        last_expression = number == len(body) and isinstance(node, ast.Expr)
        tree = ast.Interactive([node]) if last_expression else ast.Module([node], [])
        fingerprints.append(fingerprint(compile(tree, "<test>", "single" if last_expression else "exec", flags,
                                                dont_inherit=True)))
    return sent, tuple(fingerprints)


def guard_plan(nb: NotebookNode, skip_tag: str, token: str, seal: str) -> tuple[dict, dict[int, int]]:
    """The guard's configuration: every cell the kernel will be asked to run, in order.

    Also returns, for each test cell, its position in the plan by its index in the notebook.
    """
    cells, tests = [], {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip() or skip_tag in cell.metadata.get("tags", []):
            continue
        kind = cell_kind(cell)
        names = bound_names(cell.source) if kind == "locked" else ()
        statements = test_statements(cell.source) if kind == "test" else None
        if statements is None:
            cells.append((ipython_source(cell.source), kind, names, None))
        else:
            tests[index] = len(cells)
            cells.append((ipython_source(statements[0]), kind, names, (statements[1], bound_names(cell.source))))
    return {"cells": cells, "token": token, "seal": seal}, tests


# ---------------------------------------------------------------------------
# Submissions, outcomes
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Submission:
    """A collected submission: ``submitted/<student>/<assignment>/``."""

    student: str
    path: Path
    timestamp: dt.datetime | None = None


@dataclasses.dataclass
class Outcome:
    """What happened to one submission."""

    student: str
    status: str                      # "graded", "failed" or "skipped"
    score: float | None = None       # autograded points earned (after late penalty)
    max_score: float | None = None   # autograded points available
    reason: str = ""                 # why it failed
    seconds: float = 0.0             # wall-clock time in its worker
    restored: list[str] = dataclasses.field(default_factory=list)  # what the grader put back
    timings: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Report:
    """A grading run: every outcome, and where the time went."""

    course_id: str
    assignment: str
    outcomes: list[Outcome]
    seconds: float
    workers: int
    interrupted: bool = False

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def graded(self) -> list[Outcome]:
        return self.by_status("graded")

    @property
    def failed(self) -> list[Outcome]:
        return self.by_status("failed")

    @property
    def skipped(self) -> list[Outcome]:
        return self.by_status("skipped")

    def as_dict(self) -> dict:
        """The report as JSON-ready data (``leva grade --json``)."""
        return {
            "course": self.course_id, "assignment": self.assignment, "seconds": self.seconds,
            "workers": self.workers, "interrupted": self.interrupted, "phases": self.phase_seconds(),
            "submissions": [dataclasses.asdict(outcome) for outcome in self.outcomes],
        }

    def phase_seconds(self) -> dict[str, float]:
        """Seconds spent in each phase, summed over submissions (see :class:`Outcome` timings)."""
        total: dict[str, float] = {}
        for outcome in self.outcomes:
            for phase, seconds in outcome.timings.items():
                total[phase] = total.get(phase, 0.0) + seconds
        return total


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class WorkerSetup:
    """What every worker process needs, handed over once when it starts."""

    config: dict
    root: str
    assignment: str
    course_id: str
    db_url: str
    notebooks: list[str]           # the assignment's notebooks, as the gradebook lists them
    staging: str
    factory: dict                  # FactorySpec fields
    limits: dict                   # Limits fields


class _Worker:
    """A worker process: a kernel factory and nbgrader's preprocessors, set up once."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.config = Config(setup.config)
        self.limits = Limits(**setup.limits)
        self.coursedir = CourseDirectory(config=self.config)
        self.autograde = Autograde(coursedir=self.coursedir, config=self.config)
        share_gradebooks()
        _SharedGradebook.kind = _FrozenSourceGradebook
        _fast_reconnect()
        spec = FactorySpec(**setup.factory)
        spec.run_root = tempfile.mkdtemp(prefix="w", dir=spec.run_root)
        self.factory = KernelFactory(spec)
        self.sanitize = self._exporter(self._sanitize_preprocessors())
        self.run = self._exporter(_split_autograde(self.autograde.autograde_preprocessors)[0])
        self.execute = next(pp for pp in self.run._preprocessors if isinstance(pp, SandboxedExecute))
        self.execute.output_limit = int(self.limits.output_mb * 1048576)
        self.current: SandboxKernel | None = None
        self.timed_out = threading.Event()

    def _sanitize_preprocessors(self) -> list:
        preprocessors = list(self.autograde.sanitize_preprocessors)
        at = next((i for i, pp in enumerate(preprocessors) if _is_class(pp, OverwriteCells)), len(preprocessors))
        preprocessors.insert(at, RestoreCellMetadata)
        return preprocessors

    def _exporter(self, preprocessors: list) -> NotebookExporter:
        exporter = _Exporter(config=self.config)
        for pp in preprocessors:
            exporter.register_preprocessor(_replace_execute(pp))
        return exporter

    def close(self) -> None:
        if self.current is not None:
            self.current.discard()
        self.factory.close()
        shutil.rmtree(self.factory.spec.run_root, ignore_errors=True)
        _SharedGradebook.close_all()

    # one submission -----------------------------------------------------------

    def grade(self, submission: Submission) -> dict:
        started, cpu = time.monotonic(), time.process_time()
        result: dict[str, Any] = {"student": submission.student, "notebooks": {}, "resources": {},
                                  "restored": [], "timings": {}, "missing": []}
        timer = threading.Timer(self.limits.submission_timeout, self._time_out)
        self.timed_out.clear()
        timer.start()
        try:
            stage = self._stage(submission, result)
            for name in self.setup.notebooks:
                path = submission.path / f"{name}.ipynb"
                if not path.is_file():
                    result["missing"].append(name)
                    continue
                self._grade_notebook(submission, name, path, stage, result)
            result["ok"] = True
        except Exception as e:  # noqa: BLE001 - one submission's failure is reported, the batch goes on
            result["ok"] = False
            result["reason"] = self._reason(e)
        finally:
            timer.cancel()
            if self.current is not None:
                self.current.discard()
                self.current = None
        result["seconds"] = time.monotonic() - started
        result["timings"]["worker_cpu"] = time.process_time() - cpu
        return result

    def _time_out(self) -> None:
        self.timed_out.set()
        if self.current is not None:
            self.current.terminate()

    def _reason(self, error: Exception) -> str:
        if self.timed_out.is_set():
            return f"took longer than {self.limits.submission_timeout:g} s (per-submission timeout)"
        if self.current is not None and self.current.failure:
            return self.current.failure
        if isinstance(error, SubmissionFailed):
            return str(error)
        name = type(error).__name__
        if name == "DeadKernelError":
            return self._death()
        if name == "CellTimeoutError":
            return f"a cell did not stop when interrupted after {self._cell_timeout():g} s"
        if name in ("NotJSONError", "JSONDecodeError") or "JSON" in str(error)[:200]:
            return f"not a readable notebook ({str(error).splitlines()[0][:200]})"
        first = (str(error).strip().splitlines() or [""])[0][:300]
        return f"{name}: {first}" if first else name

    def _death(self) -> str:
        kernel = self.current
        report = kernel.guard_report() if kernel else []
        tampered = [line[len("tamper "):] for line in report if line.startswith("tamper ")]
        if tampered:
            return f"tampering with the grader: {tampered[0]}"
        return f"{KERNEL_DIED} (it crashed, ran out of memory within {self.limits.memory_mb} MB, or was ended)"

    def _cell_timeout(self) -> float:
        return float(self.config.Execute.get("timeout", 30) or 30)

    def _stage(self, submission: Submission, result: dict) -> Path:
        """The submission's files as nbgrader assembles them: submitted files, then the source's over them."""
        begin = time.monotonic()
        stage = Path(self.setup.staging) / submission.student
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        ignore = list(self.coursedir.ignore) + ["*.ipynb"]
        _copy_files(submission.path, stage, ignore)
        source = Path(self.coursedir.format_path(self.coursedir.source_directory, ".", self.setup.assignment))
        excluded = {str(source / name) for name in self.autograde.exclude_overwriting.get(self.setup.assignment, [])}
        _copy_files(source, stage, ignore, excluded)
        result["timings"]["prepare"] = time.monotonic() - begin
        result["stage"] = str(stage)
        return stage

    def _grade_notebook(self, submission: Submission, name: str, path: Path, stage: Path, result: dict) -> None:
        timings = result["timings"]
        begin = time.monotonic()
        size = path.stat().st_size
        if size > self.limits.notebook_mb * 1048576:
            raise SubmissionFailed(f"{name}.ipynb is {size / 1048576:.0f} MB; the limit is {self.limits.notebook_mb:g} MB")
        resources = self._resources(submission, name)
        try:
            sanitized, resources = self.sanitize.from_filename(str(path), resources=resources)
        except Exception as e:  # noqa: BLE001
            if "json" in type(e).__name__.lower() or "JSON" in str(e)[:300] or isinstance(e, (ValueError, UnicodeDecodeError)):
                raise SubmissionFailed(f"{name}.ipynb is not a readable notebook ({_first_line(e)})") from None
            raise
        result["restored"].extend(resources.get("leva", {}).get("restored", []))
        nb = nbformat.reads(sanitized, as_version=4)
        kernel_name = nb.metadata.get("kernelspec", {}).get("name", "python3")
        if kernel_name not in PYTHON_KERNELS:
            raise SubmissionFailed(f"{name}.ipynb needs the {kernel_name!r} kernel; leva grade runs Python "
                                   f"notebooks (grade this one with nbgrader autograde)")
        timings["prepare"] = timings.get("prepare", 0.0) + time.monotonic() - begin

        begin = time.monotonic()
        if self.factory.process.poll() is not None:  # the factory died (out of memory?): start another
            self.factory.spare = None
            self.factory = KernelFactory(self.factory.spec)
        kernel = self.current = self.factory.take()
        _copy_tree(stage, kernel.work_dir)
        (kernel.work_dir / f"{name}.ipynb").write_text(sanitized)
        token = secrets.token_hex(16)
        seal = f"# leva: the notebook has ended ({secrets.token_hex(4)})\n"
        plan, self.execute.test_cells = guard_plan(nb, self._skip_tag(), token, seal)
        kernel.configure(plan)
        self.factory.refill()
        from jupyter_core.utils import run_sync

        run_sync(kernel.connect)(timeout=60)
        timings["kernel"] = timings.get("kernel", 0.0) + time.monotonic() - begin
        timings["kernel_start_cpu"] = timings.get("kernel_start_cpu", 0.0) + kernel.cpu_seconds()

        begin = time.monotonic()
        self.execute.sandbox_kernel, self.execute.guard_token, self.execute.seal_source = kernel, token, seal
        with _environment(NBGRADER_EXECUTION="autograde"):
            output, resources = self.run.from_notebook_node(nb, resources=resources)
        timings["execute"] = timings.get("execute", 0.0) + time.monotonic() - begin
        timings["cells"] = timings.get("cells", 0.0) + _cell_seconds(self.execute.nb)
        result["restored"].extend(_restorations(kernel.guard_report()))
        timings["kernel_cpu"] = timings.get("kernel_cpu", 0.0) + kernel.cpu_seconds()
        kernel.discard()
        self.current = None
        result["notebooks"][name] = output
        result["resources"][name] = {"nbgrader": resources["nbgrader"], "unique_key": resources.get("unique_key"),
                                     "output_files_dir": resources.get("output_files_dir")}

    def _skip_tag(self) -> str:
        return str(self.config.get("NotebookClient", {}).get("skip_cells_with_tag", "skip-execution"))

    def _resources(self, submission: Submission, name: str) -> dict:
        return {
            "unique_key": name,
            "output_files_dir": f"{name}_files",
            "nbgrader": {"student": submission.student, "assignment": self.setup.assignment, "notebook": name,
                         "db_url": self.setup.db_url},
        }


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _restorations(report: list[str]) -> list[str]:
    return [line[len("restored "):] for line in report if line.startswith("restored ")]


def _cell_seconds(nb: NotebookNode) -> float:
    """Seconds the kernel spent running the notebook's cells, from nbclient's timestamps."""
    total = 0.0
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            try:
                total += (dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
                          - dt.datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            except ValueError:
                pass
    return max(total, 0.0)


def _copy_files(source: Path, target: Path, ignore: list[str], excluded: set[str] = frozenset()) -> None:
    """Copy a folder's files as nbgrader does, except that symbolic links are not followed but skipped."""
    if not source.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(source):
        if is_ignored(dirpath, ignore) and Path(dirpath) != source:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if os.path.islink(path) or is_ignored(path, ignore) or path in excluded:
                continue
            destination = target / os.path.relpath(path, source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.exists():
                destination.unlink()
            shutil.copyfile(path, destination)


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)


def _is_class(value: Any, cls: type) -> bool:
    return isinstance(value, type) and issubclass(value, cls)


def _replace_execute(pp: Any) -> Any:
    return SandboxedExecute if _is_class(pp, Execute) else pp


def _split_autograde(preprocessors: list) -> tuple[list, list]:
    """nbgrader's autograde steps: those before the gradebook is written (run by workers) and the rest."""
    at = next((i for i, pp in enumerate(preprocessors) if _is_class(pp, SaveAutoGrades)), len(preprocessors))
    return list(preprocessors[:at]), list(preprocessors[at:])


def _fast_reconnect() -> None:
    """Kernel sockets are connected before the kernel binds them: retry every 10 ms, not zmq's 100 ms."""
    import zmq
    import zmq.asyncio

    zmq.asyncio.Context.instance().setsockopt(zmq.RECONNECT_IVL, 10)


_WORKER: _Worker | None = None


def _worker_init(setup: WorkerSetup) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    _WORKER = _Worker(setup)
    import multiprocessing.util

    multiprocessing.util.Finalize(_WORKER, _WORKER.close, exitpriority=10)


def _worker_grade(submission: Submission) -> dict:
    assert _WORKER is not None
    return _WORKER.grade(submission)


# ---------------------------------------------------------------------------
# The coordinator
# ---------------------------------------------------------------------------


class CohortGrader(LoggingConfigurable):
    """Autograde every collected submission of one assignment, in parallel (``leva grade``).

    Settings may be given in the course's ``nbgrader_config.py``, e.g.
    ``c.CohortGrader.workers = 4``; the command line overrides them.
    """

    workers = Integer(0, help="Worker processes; 0: one more than the CPU cores (a worker waits for its "
                              "kernel part of the time).").tag(config=True)
    cell_timeout = Float(0.0, help="Seconds per cell; 0: the course's Execute.timeout.").tag(config=True)
    submission_timeout = Float(300.0, help="Wall-clock seconds per submission, then it fails.").tag(config=True)
    memory_mb = Integer(2048, help="Address space of a kernel, in MB.").tag(config=True)
    output_mb = Float(16.0, help="Output one notebook may produce, in MB.").tag(config=True)
    notebook_mb = Float(32.0, help="Largest submitted notebook accepted, in MB.").tag(config=True)
    force = Bool(False, help="Grade submissions again even when their results are up to date.").tag(config=True)
    network = Bool(False, help="Leave kernels the machine's network.").tag(config=True)
    add_missing_cells = Bool(True, help="Put back test cells a learner deleted (OverwriteCells.add_missing_cells).").tag(config=True)
    preload = List(Unicode(), help="Modules the kernel factory imports besides those the notebooks import.").tag(config=True)
    progress = Bool(True, help="Show a progress bar on standard error.").tag(config=True)
    stream = AnyTrait(help="Where per-submission lines and the summary go.")

    @default("stream")
    def _stream_default(self):
        return sys.stderr

    def __init__(self, target: CourseTarget, assignment: str, *, students: Iterable[str] | None = None, **kwargs):
        super().__init__(config=target.config, **kwargs)
        self.target = target
        self.assignment = assignment
        self.students = list(students or [])
        self.coursedir = target.coursedir
        self.coursedir.assignment_id = assignment

    # planning -----------------------------------------------------------------

    def submissions(self) -> list[Submission]:
        """Every collected submission of the assignment (or of the students asked for), by student id."""
        excluded = set(filter(None, self.coursedir.student_id_exclude.split(",")))
        found = []
        for student in self.students or self._submitted_students():
            if student in excluded:
                continue
            path = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, self.assignment))
            if path.is_dir():
                found.append(Submission(student, path, self.coursedir.get_existing_timestamp(str(path))))
            elif self.students:
                raise GradingError(f"no submission of {self.assignment!r} by {student!r} in {path.parent.parent}")
        return found

    def _submitted_students(self) -> list[str]:
        """Student ids with a folder for the assignment, found as nbgrader finds them (a glob)."""
        import glob
        import re

        coursedir, step = self.coursedir, self.coursedir.submitted_directory
        pattern = re.compile(coursedir.format_path(step, "(?P<student_id>[^/]+)", self.assignment, escape=True) + "$")
        students = []
        for path in glob.glob(coursedir.format_path(step, "*", self.assignment)):
            match = pattern.match(path)
            if match and os.path.isdir(path):
                students.append(match.group("student_id"))
        return sorted(students)

    def autograded_path(self, student: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.autograded_directory, student, self.assignment))

    def is_done(self, submission: Submission, notebooks: list[str], gradebook: Gradebook) -> bool:
        """Graded already: results in the gradebook no older than the submission, and the autograded folder."""
        if self.force:
            return False
        graded = self.autograded_path(submission.student)
        submitted = [n for n in notebooks if (submission.path / f"{n}.ipynb").is_file()]
        if not graded.is_dir() or not all((graded / f"{n}.ipynb").is_file() for n in submitted):
            return False
        if self.coursedir.get_existing_timestamp(str(graded)) != submission.timestamp:
            return False
        try:
            record = gradebook.find_submission(self.assignment, submission.student)
        except MissingEntry:
            return False
        return submission.timestamp is None or (
            record.timestamp is not None and record.timestamp >= _naive_utc(submission.timestamp))

    # running ------------------------------------------------------------------

    def run(self) -> Report:
        begin = time.monotonic()
        config = self._grading_config()
        share_gradebooks()
        with _SharedGradebook(self.target.db_url, self.target.course_id) as gb:
            try:
                source = gb.find_assignment(self.assignment)
            except MissingEntry:
                raise GradingError(
                    f"no assignment {self.assignment!r} in the gradebook of {self.target.course_id!r}; "
                    f"run nbgrader generate_assignment {self.assignment} first") from None
            notebooks = sorted(nb.name for nb in source.notebooks)
            if not notebooks:
                raise GradingError(f"assignment {self.assignment!r} has no notebooks; generate it first")
            submissions = self.submissions()
            pending, outcomes = [], []
            for submission in submissions:
                if self.is_done(submission, notebooks, gb):
                    outcomes.append(Outcome(submission.student, "skipped"))
                else:
                    pending.append(submission)
        workers = min(self.workers or (os.cpu_count() or 1) + 1, max(1, len(pending)))
        interrupted = False
        if pending:
            staging = Path(self.target.root) / STAGING / self.assignment
            staging.mkdir(parents=True, exist_ok=True)
            run_root = Path(tempfile.mkdtemp(prefix="leva-grade-"))
            setup = WorkerSetup(
                config=_plain(config), root=str(self.target.root), assignment=self.assignment,
                course_id=self.target.course_id, db_url=self.target.db_url, notebooks=notebooks,
                staging=str(staging), factory=dataclasses.asdict(self._factory_spec(run_root, notebooks)),
                limits=dataclasses.asdict(self._limits(config)))
            recorder = _Recorder(self, config, notebooks)
            try:
                interrupted = self._dispatch(setup, pending, recorder, outcomes, workers)
            finally:
                shutil.rmtree(run_root, ignore_errors=True)
                shutil.rmtree(staging, ignore_errors=True)  # what is there was not recorded: graded next run
                with contextlib.suppress(OSError):
                    staging.parent.rmdir()
        report = Report(self.target.course_id, self.assignment, outcomes, time.monotonic() - begin, workers,
                        interrupted)
        self.summarize(report)
        return report

    def _dispatch(self, setup: WorkerSetup, pending: list[Submission], recorder: _Recorder,
                  outcomes: list[Outcome], workers: int) -> bool:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), unit="submission", file=self.stream, disable=not self.progress,
                   dynamic_ncols=True, leave=False)
        # workers are forked from a server that imported nbgrader once, not started from scratch each
        executor = concurrent.futures.ProcessPoolExecutor(workers, mp_context=forkserver.context(),
                                                          initializer=_worker_init, initargs=(setup,))
        interrupted = False
        try:
            futures = {executor.submit(_worker_grade, s): s for s in pending}
            for future in concurrent.futures.as_completed(futures):
                submission = futures[future]
                try:
                    result = future.result()
                except concurrent.futures.process.BrokenProcessPool as e:
                    result = {"student": submission.student, "ok": False, "seconds": 0.0,
                              "reason": f"the grading worker died ({e})", "notebooks": {}, "resources": {},
                              "restored": [], "timings": {}, "missing": []}
                outcome = recorder.record(submission, result)
                outcomes.append(outcome)
                bar.update(1)
                self._line(outcome, bar)
        except KeyboardInterrupt:
            interrupted = True
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()
            return True
        finally:
            if not interrupted:
                executor.shutdown(wait=True)
                bar.close()
        return interrupted

    def _line(self, outcome: Outcome, bar) -> None:
        if outcome.status == "graded":
            text = f"graded {outcome.student}: {outcome.score:g}/{outcome.max_score:g} in {outcome.seconds:.1f} s"
            if outcome.restored:
                text += f" (restored: {', '.join(outcome.restored[:4])}{'...' if len(outcome.restored) > 4 else ''})"
        else:
            text = f"FAILED {outcome.student}: {outcome.reason}"
        bar.write(text, file=self.stream)

    def _grading_config(self) -> Config:
        config = Config(self.target.config)
        if self.cell_timeout:
            config.Execute.timeout = int(self.cell_timeout) if float(self.cell_timeout).is_integer() else self.cell_timeout
        if self.add_missing_cells and "add_missing_cells" not in config.OverwriteCells:
            config.OverwriteCells.add_missing_cells = True
        config.CourseDirectory.assignment_id = self.assignment
        return config

    def _limits(self, config: Config) -> Limits:
        return Limits(
            cell_timeout=float(config.Execute.get("timeout", 30) or 30),
            submission_timeout=self.submission_timeout, memory_mb=self.memory_mb, output_mb=self.output_mb,
            notebook_mb=self.notebook_mb)

    def _factory_spec(self, run_root: Path, notebooks: list[str]) -> FactorySpec:
        state_dir = None
        with contextlib.suppress(Exception):
            from hub.settings import load_settings

            settings = load_settings()
            state_dir, catalogue = settings.state_dir, settings.courses_dir
        roots = [self.target.root, run_root]
        if state_dir is not None:
            roots += [state_dir, catalogue]
        source = Path(self.coursedir.format_path(self.coursedir.source_directory, ".", self.assignment))
        roots.append(source)
        db_file = _sqlite_path(self.target.db_url)
        if db_file is not None:
            roots.append(db_file.parent)
        return FactorySpec(run_root=str(run_root), preload=sorted(set(self.preload) | _imports(source, notebooks)),
                           protected=protected_paths(*roots), network=self.network)

    def summarize(self, report: Report) -> None:
        out = self.stream
        print(f"\n{report.course_id} / {report.assignment}: {len(report.graded)} graded, {len(report.failed)} failed, "
              f"{len(report.skipped)} already graded, in {report.seconds:.1f} s with {report.workers} worker(s)"
              + (" (interrupted: run again to resume)" if report.interrupted else ""), file=out)
        if report.graded:
            scores = [o.score for o in report.graded if o.score is not None]
            top = report.graded[0].max_score or 0
            mean = sum(scores) / len(scores) if scores else 0.0
            print(f"  autograded score: mean {mean:.2f} / {top:g}", file=out)
        if report.failed:
            width = max(len(o.student) for o in report.failed)
            print("  failed:", file=out)
            for outcome in sorted(report.failed, key=lambda o: o.student):
                print(f"    {outcome.student:<{width}}  {outcome.reason}", file=out)
            print("  failed submissions score 0 and are marked for manual grading; run again to retry them.",
                  file=out)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _plain(config: Config) -> dict:
    """A picklable copy of a traitlets Config (lazy values resolved)."""
    return {key: (_plain(value) if isinstance(value, Config) else value) for key, value in config.items()}


def _sqlite_path(db_url: str) -> Path | None:
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///"):]
        return Path(path if path.startswith("/") else os.path.abspath(path)).resolve()
    return None


def _imports(source: Path, notebooks: list[str]) -> set[str]:
    """Top-level modules the source notebooks import: the kernel factory imports them once for all kernels."""
    found: set[str] = set()
    for name in notebooks:
        try:
            nb = nbformat.read(str(source / f"{name}.ipynb"), as_version=4)
        except Exception:  # noqa: BLE001
            continue
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(ipython_source(cell.source) or "")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


class _Recorder:
    """Writes each worker's result into the gradebook and the course directory, in the coordinator."""

    def __init__(self, grader: CohortGrader, config: Config, notebooks: list[str]) -> None:
        self.grader = grader
        self.config = config
        self.notebooks = notebooks
        coursedir = CourseDirectory(config=config)
        self.autograde = Autograde(coursedir=coursedir, config=config)
        self.exporter = _Exporter(config=config)
        for pp in _split_autograde(self.autograde.autograde_preprocessors)[1]:
            self.exporter.register_preprocessor(pp)
        self.permissions = int(str(self.autograde.permissions), 8)
        with self._gradebook() as gb:
            self.autograded_cells = {
                (notebook.name, cell.name)
                for notebook in gb.find_assignment(grader.assignment).notebooks
                for cell in notebook.grade_cells
                if cell.cell_type == "code" and cell.name not in {c.name for c in notebook.solution_cells}}

    def record(self, submission: Submission, result: dict) -> Outcome:
        with warnings.catch_warnings():
            # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; they are nbgrader's to fix
            warnings.simplefilter("ignore", SAWarning)
            return self._record(submission, result)

    def _record(self, submission: Submission, result: dict) -> Outcome:
        begin, cpu = time.monotonic(), time.process_time()
        outcome = Outcome(submission.student, "graded", seconds=result.get("seconds", 0.0),
                          restored=list(result.get("restored", [])), timings=dict(result.get("timings", {})))
        stage = Path(result["stage"]) if result.get("stage") else None
        try:
            with self._gradebook().batch():
                self._create(submission)
                if result.get("ok"):
                    self._save(submission, result, stage)
                else:
                    outcome.status, outcome.reason = "failed", result.get("reason", "unknown failure")
                    self._fail(submission)
            if outcome.status == "graded":
                self._publish(submission, stage)
            outcome.score, outcome.max_score = self._score(submission.student)
        except Exception as e:  # noqa: BLE001
            outcome.status, outcome.reason = "failed", f"could not record the results: {type(e).__name__}: {e}"
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        outcome.timings["database"] = time.monotonic() - begin
        outcome.timings["database_cpu"] = time.process_time() - cpu
        hooks.notify_graded(hooks.GradedSubmission(
            course_id=self.grader.target.course_id, assignment=self.grader.assignment, student=submission.student,
            status=outcome.status, score=outcome.score, max_score=outcome.max_score, reason=outcome.reason,
            db_url=self.grader.target.db_url, autograded=self.grader.autograded_path(submission.student)))
        return outcome

    def _gradebook(self) -> Gradebook:
        return _SharedGradebook(self.grader.target.db_url, self.grader.target.course_id)

    def _create(self, submission: Submission) -> None:
        """The student and the submission, as ``Autograde.init_assignment`` creates them."""
        with self._gradebook() as gb:
            if self.autograde.create_student:
                gb.update_or_create_student(submission.student)
            else:
                gb.find_student(submission.student)
            if submission.timestamp:
                gb.update_or_create_submission(self.grader.assignment, submission.student,
                                               timestamp=submission.timestamp)
            else:
                gb.update_or_create_submission(self.grader.assignment, submission.student)
            gb.db.commit()

    def _save(self, submission: Submission, result: dict, stage: Path | None) -> None:
        assert stage is not None
        with self._gradebook() as gb:
            for name in result.get("missing", []):
                notebook = gb.find_submission_notebook(name, self.grader.assignment, submission.student)
                for grade in notebook.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
        for name, output in result["notebooks"].items():
            nb = nbformat.reads(output, as_version=4)
            resources = dict(result["resources"][name])
            with _environment(NBGRADER_EXECUTION="autograde"):
                text, _ = self.exporter.from_notebook_node(nb, resources=resources)
            (stage / f"{name}.ipynb").write_text(text, encoding="utf-8")

    def _publish(self, submission: Submission, stage: Path) -> None:
        """Move the assembled folder into ``autograded/`` (after the gradebook has the results)."""
        for dirpath, _, filenames in os.walk(stage):
            for filename in filenames:
                os.chmod(os.path.join(dirpath, filename), self.permissions)
        target = self.grader.autograded_path(submission.student)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        shutil.move(str(stage), str(target))

    def _fail(self, submission: Submission) -> None:
        """A submission that could not be graded scores 0 and waits for a person."""
        with self._gradebook() as gb:
            record = gb.find_submission(self.grader.assignment, submission.student)
            for notebook in record.notebooks:
                for grade in notebook.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = True
            gb.db.commit()
        target = self.grader.autograded_path(submission.student)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)

    def _score(self, student: str) -> tuple[float, float]:
        with self._gradebook() as gb:
            record = gb.find_submission(self.grader.assignment, student)
            score = max_score = 0.0
            for notebook in record.notebooks:
                for grade in notebook.grades:
                    if (notebook.name, grade.name) in self.autograded_cells:
                        score += float(grade.score or 0)
                        max_score += float(grade.max_score or 0)
            penalty = float(record.late_submission_penalty or 0)
            return max(score - penalty, 0.0), max_score


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def grade(course: str | None, assignment: str, *, students: Iterable[str] | None = None,
          cwd: Path | None = None, state_dir: Path | None = None, **options) -> Report:
    """Grade an assignment of a course (see :func:`find_course` and :class:`CohortGrader`)."""
    target = find_course(course, cwd=cwd, state_dir=state_dir)
    grader = CohortGrader(target, assignment, students=students, **{k: v for k, v in options.items() if v is not None})
    return grader.run()
