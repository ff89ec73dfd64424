"""``leva grade``: the same scores as ``nbgrader autograde``, honest scores, failures that stay alone.

Everything runs for real: nbgrader's converters, the kernel factory, forked
kernels with the guard up.  One course directory is generated per session
from a real course (its ``nbgrader_config.py`` and first assignment) plus a
small assignment written here, ``honesty``, whose tests are easy to cheat
under plain nbgrader; each test grades a copy of it.

* ``test_same_scores_as_nbgrader``: correct, partial, blank, raising and
  looping submissions of the real assignment, graded by ``nbgrader
  autograde`` in one copy and by ``leva grade`` in another: every cell's
  score is the same.
* the cheating tests: one submission per trick a learner could try, each
  with blank answers (so any point would be a stolen one); the tricks that
  do get points from plain nbgrader are shown as well.
* failures, isolation, resume, the command line and the after-grading hook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from traitlets.config import Config

from graders import autograde, hooks
from graders.autograde import find_course, grade
from hub.courses import courses_dir

COURSE = "digital-marketing"
CELL_TIMEOUT = 3  # seconds: looping cells are interrupted quickly
HONESTY = "honesty"
TIMESTAMP = "2026-12-01 10:00:00.000000 UTC"
GRADE_OPTIONS = dict(workers=1, progress=False, submission_timeout=40)


# ---------------------------------------------------------------------------
# The course directory
# ---------------------------------------------------------------------------


def _meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def honesty_notebook() -> nbformat.NotebookNode:
    """A small assignment whose tests lean on things a notebook can change: a module, builtins, names."""
    cells = [
        new_markdown_cell("# Honesty\nWrite `mean` and `span`.", metadata=_meta("intro", locked=True)),
        new_code_cell("import math\nimport numpy as np\nDATA = [3, 1, 7]", metadata=_meta("setup", locked=True)),
        new_code_cell("def mean(xs):\n    ### BEGIN SOLUTION\n    return sum(xs) / len(xs)\n    ### END SOLUTION",
                      metadata=_meta("mean", solution=True)),
        new_code_cell(textwrap.dedent('''\
            assert isinstance(mean([1, 2]), float), "mean returns a float"
            assert abs(mean(DATA) - sum(DATA) / len(DATA)) < 1e-9
            ### BEGIN HIDDEN TESTS
            assert math.isclose(mean([2, 4]), 3)
            assert np.isclose(mean([10]), 10)
            ### END HIDDEN TESTS'''), metadata=_meta("test_mean", grade=True, locked=True, points=2)),
        new_code_cell("def span(xs):\n    ### BEGIN SOLUTION\n    return max(xs) - min(xs)\n    ### END SOLUTION",
                      metadata=_meta("span", solution=True)),
        new_code_cell("assert span(DATA) == 6\n### BEGIN HIDDEN TESTS\nassert span([5, 5]) == 0\n"
                      "### END HIDDEN TESTS", metadata=_meta("test_span", grade=True, locked=True, points=1)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def first_assignment() -> str:
    course = tomllib.loads((courses_dir() / COURSE / "course.toml").read_text())
    return course["assignments"][0]["name"]


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """A course directory with the real assignment and ``honesty`` generated, before any submission."""
    from nbgrader.apps import NbGraderAPI

    root = tmp_path_factory.mktemp("course") / COURSE
    source = courses_dir() / COURSE
    real = first_assignment()
    root.mkdir()
    config = (source / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(
        config + f"\n# tests: loops are interrupted quickly\nc.Execute.timeout = {CELL_TIMEOUT}\n"
                 f"c.ExecutePreprocessor.timeout = {CELL_TIMEOUT}\n")
    shutil.copytree(source / "source" / real, root / "source" / real,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (root / "source" / HONESTY).mkdir(parents=True)
    nbformat.write(honesty_notebook(), root / "source" / HONESTY / f"{HONESTY}.ipynb")
    path, cwd = os.environ.get("PATH", ""), os.getcwd()
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])  # nbgrader asks alembic
    os.chdir(root)
    try:
        api = NbGraderAPI(config=autograde.load_config(root))
        for assignment in (real, HONESTY):
            result = api.generate_assignment(assignment, force=True, create=True)
            assert result["success"], result.get("log", "") + result.get("error", "")
    finally:
        os.chdir(cwd)
        os.environ["PATH"] = path
    return root


@pytest.fixture
def course(generated, tmp_path) -> Path:
    """A fresh copy of the generated course directory."""
    root = tmp_path / COURSE
    shutil.copytree(generated, root)
    return root


def submit(root: Path, assignment: str, student: str, nb, extra: dict[str, str] | None = None) -> Path:
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    released = root / "release" / assignment
    for path in released.rglob("*"):
        if path.is_file() and path.suffix != ".ipynb":
            target = folder / path.relative_to(released)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    if isinstance(nb, str):
        (folder / f"{assignment}.ipynb").write_text(nb)
    else:
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    (folder / "timestamp.txt").write_text(TIMESTAMP)
    return folder


def released(root: Path, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def source(root: Path, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", as_version=4)


def cells_by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def with_answers(root: Path, assignment: str, answers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The released notebook with the solution cells' sources replaced (the solution's, when not given)."""
    nb = released(root, assignment)
    solution = cells_by_id(source(root, assignment))
    for grade_id, cell in cells_by_id(nb).items():
        if cell.metadata["nbgrader"].get("solution") and cell.cell_type == "code":
            cell.source = (answers or {}).get(grade_id, solution[grade_id].source)
    return nb


def scores(root: Path, assignment: str) -> dict[tuple[str, str], tuple]:
    """Every graded cell of every submission: (auto_score, needs_manual_grade)."""
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            for notebook in submission.notebooks:
                for g in notebook.grades:
                    found[(submission.student.id, g.name)] = (g.auto_score, g.needs_manual_grade)
    return found


def autograded_points(root: Path, assignment: str, student: str) -> float:
    return sum(score or 0 for (who, _), (score, _) in scores(root, assignment).items() if who == student)


def nbgrader_autograde(root: Path, assignment: str) -> None:
    """Plain ``nbgrader autograde ASSIGNMENT``, through nbgrader's own converter."""
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log

    config = autograde.load_config(root)
    coursedir = autograde.CourseTarget(root, config).coursedir
    coursedir.assignment_id = assignment
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    cwd = os.getcwd()
    os.chdir(root)
    try:
        capture_log(converter)
    finally:
        os.chdir(cwd)


def leva_grade(root: Path, assignment: str, **options):
    return grade(None, assignment, cwd=root, **{**GRADE_OPTIONS, **options})


def outcomes(report) -> dict[str, autograde.Outcome]:
    return {o.student: o for o in report.outcomes}


# ---------------------------------------------------------------------------
# The same scores as nbgrader
# ---------------------------------------------------------------------------


def test_same_scores_as_nbgrader(course, tmp_path):
    real = first_assignment()
    variants = tomllib.loads((courses_dir() / COURSE / "wrong_answers" / f"{real}.toml").read_text())["variant"]
    solution_cells = [g for g, c in cells_by_id(source(course, real)).items()
                      if c.metadata["nbgrader"].get("solution") and c.cell_type == "code"]
    submit(course, real, "correct", source(course, real))
    submit(course, real, "partial", with_answers(course, real, {variants[0]["cell"]: variants[0]["source"]}))
    submit(course, real, "blank", released(course, real))
    submit(course, real, "raising", with_answers(course, real, {solution_cells[1]: "raise ValueError('stuck')"}))
    submit(course, real, "looping", with_answers(course, real, {solution_cells[0]: "while True:\n    pass"}))
    plain = tmp_path / "plain"
    shutil.copytree(course, plain)

    nbgrader_autograde(plain, real)
    report = leva_grade(course, real, workers=2)

    expected, got = scores(plain, real), scores(course, real)
    assert set(expected) == set(got)
    assert got == expected
    assert not report.failed and len(report.graded) == 5
    by_student = outcomes(report)
    assert by_student["correct"].score == by_student["correct"].max_score > 0
    assert by_student["blank"].score == 0
    assert 0 < by_student["partial"].score < by_student["partial"].max_score
    # the autograded notebooks are where nbgrader puts them, with the same outputs in the test cells
    for student in ("correct", "partial", "raising"):
        ours = nbformat.read(course / "autograded" / student / real / f"{real}.ipynb", as_version=4)
        theirs = nbformat.read(plain / "autograded" / student / real / f"{real}.ipynb", as_version=4)
        assert [_error_names(c) for c in ours.cells] == [_error_names(c) for c in theirs.cells]


def _error_names(cell) -> list:
    return [o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"]


# ---------------------------------------------------------------------------
# Honest scores: a submission earns no point it did not earn
# ---------------------------------------------------------------------------


def _tests(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
            and not c.metadata["nbgrader"].get("solution")]


def _insert(nb, index: int, source_text: str):
    nb.cells.insert(index, new_code_cell(source_text))
    return nb


def _blank_with(root: Path, code: str, at: int = 3):
    """The released honesty notebook, answers left blank, with the learner's extra cell inserted."""
    return _insert(released(root, HONESTY), at, textwrap.dedent(code))


def _with_mean(root: Path, mean: str):
    """The released honesty notebook with the learner's own ``mean`` cell, ``span`` left blank."""
    return with_answers(root, HONESTY, {"mean": mean, "span": cells_by_id(released(root, HONESTY))["span"].source})


def cheats(root: Path) -> dict[str, object]:
    """One submission per trick.  Answers are blank: every autograded point would be a stolen one."""
    course_source = root / "source" / HONESTY / f"{HONESTY}.ipynb"
    gradebook = root / "gradebook.db"
    marker = root.parent / "outside-marker.txt"
    found: dict[str, object] = {}

    nb = released(root, HONESTY)
    for cell in _tests(nb):
        cell.source = "pass"
    found["edit-tests"] = nb

    nb = released(root, HONESTY)
    nb.cells = [c for c in nb.cells if c not in _tests(nb)]
    found["delete-tests"] = nb

    nb = released(root, HONESTY)
    for cell in _tests(nb):
        cell.metadata["nbgrader"].update(solution=True, locked=False)
        cell.source = "pass"
    found["test-made-solution"] = nb

    nb = released(root, HONESTY)
    for cell in _tests(nb):
        cell.metadata["nbgrader"].update(grade=False, points=0)
        cell.source = "pass"
    found["test-not-graded"] = nb

    nb = released(root, HONESTY)
    for cell in _tests(nb):
        cell.metadata["nbgrader"]["grade_id"] += "-mine"
        cell.metadata["nbgrader"]["checksum"] = "0" * 32
        cell.source = "pass"
    found["grade-id-and-checksum"] = nb

    nb = released(root, HONESTY)
    for cell in _tests(nb):
        cell.metadata["tags"] = ["skip-execution"]
        cell.metadata["nbgrader"]["points"] = 100
    found["skip-tag-and-points"] = nb

    found["patch-module-and-builtin"] = _with_mean(root, (
        "def mean(xs):\n    return 2  # no work\nimport math, numpy\n"
        "math.isclose = lambda *a, **k: True\nnumpy.isclose = lambda *a, **k: True\n"
        "isinstance = lambda *a: True\nabs = lambda x: 0"))
    found["rebind-names"] = _with_mean(root, (
        "def mean(xs):\n    return 4  # no work\n"
        "class _Yes:\n    def __getattr__(self, name):\n        return lambda *a, **k: True\n"
        "math = np = _Yes()\nDATA = [4, 4, 4]\nisinstance = lambda *a: True"))
    found["shadow-module-file"] = (_with_mean(root, (
        "def mean(xs):\n    return sum(xs) / len(xs) if len(xs) > 1 else 0.0  # one case left out")),
        {"numpy.py": SHADOW_NUMPY})
    found["input-transformer"] = _blank_with(root, '''
        get_ipython().input_transformers_cleanup.append(
            lambda lines: ["pass\\n"] if any("assert" in line for line in lines) else lines)''')
    found["ast-transformer"] = _blank_with(root, '''
        import ast
        class NoAsserts(ast.NodeTransformer):
            def visit_Assert(self, node):
                return ast.Pass()
        get_ipython().ast_transformers.append(NoAsserts())''')
    found["hide-errors"] = _blank_with(root, '''
        _ip = get_ipython()
        _run_cell = _ip.run_cell
        def run_cell(*args, **kwargs):
            result = _run_cell(*args, **kwargs)
            result.error_in_exec = None
            return result
        _ip.run_cell = run_cell
        _ip._showtraceback = lambda *args, **kwargs: None''')
    found["swallow-exceptions"] = _blank_with(root, '''
        get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)
        get_ipython().showtraceback = lambda *args, **kwargs: None''')
    found["post-run-callback"] = _blank_with(root, '''
        def forgive(result):
            result.error_in_exec = None
        get_ipython().events.register("post_run_cell", forgive)''')
    found["hide-errors-while-tested"] = _with_mean(root, (
        "def mean(xs):\n    ip = get_ipython()  # while the test runs: no traceback, a reply saying 'ok'\n"
        "    ip.showtraceback = lambda *args, **kwargs: None\n"
        "    type(ip.displayhook.exec_result).success = property(lambda self: True)\n    return 0"))
    found["skip-the-rest-of-the-test"] = _with_mean(root, (
        "import sys\ndef mean(xs):\n    frame = sys._getframe(1)  # the first assert passes, the rest never run\n"
        "    while frame is not None:\n        if frame.f_code.co_name == 'run_ast_nodes':\n"
        "            frame.f_locals['to_run'].clear()\n        frame = frame.f_back\n    return 0.0"))
    found["patch-while-tested"] = _with_mean(root, (
        "def mean(xs):\n    import builtins, math, numpy  # once the test has started, after the guard's reset\n"
        "    builtins.abs = lambda x: 0\n    math.isclose = numpy.isclose = lambda *a, **k: True\n    return 2.0"))
    found["redefine-assertionerror"] = _blank_with(root, '''
        import builtins
        AssertionError = builtins.AssertionError = type("AssertionError", (Warning,), {})
        print("Traceback (most recent call last):\\nAssertionError: (this traceback is fake)")''')
    found["read-solution"] = _blank_with(root, f'''
        import json
        for path in ("../../source/{HONESTY}/{HONESTY}.ipynb", {str(course_source)!r}):
            try:
                for cell in json.load(open(path))["cells"]:
                    if "BEGIN SOLUTION" in "".join(cell["source"]):
                        exec("".join(cell["source"]))
            except OSError as e:
                print("refused:", e)''')
    found["write-gradebook"] = _blank_with(root, f'''
        import sqlite3
        sqlite3.connect({str(gradebook)!r}).execute("UPDATE grade SET auto_score = 99")''')
    found["write-outside"] = _blank_with(root, f'''
        open({str(marker)!r}, "w").write("escaped")''')
    found["kill-the-grader"] = _blank_with(root, '''
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)''')
    found["subprocess"] = _blank_with(root, f'''
        import subprocess
        subprocess.run(["cat", {str(gradebook)!r}])''')
    found["sys-exit"] = _blank_with(root, "import sys\nsys.exit(0)")
    found["os-exit"] = _blank_with(root, "import os\nos._exit(0)")
    found["exit"] = _blank_with(root, "exit()")
    found["raise-after-tests"] = _insert(with_answers(root, HONESTY), 99, "raise RuntimeError('after the tests')")
    return found


#: Tricks that end the kernel or that the guard catches: the submission fails (0 points, manual grading).
FAILING = {"input-transformer", "hide-errors", "os-exit", "exit", "hide-errors-while-tested",
           "skip-the-rest-of-the-test", "patch-while-tested"}


@pytest.fixture(scope="module")
def cheated(generated, tmp_path_factory):
    root = tmp_path_factory.mktemp("cheats") / COURSE
    shutil.copytree(generated, root)
    for name, nb in cheats(root).items():
        nb, extra = nb if isinstance(nb, tuple) else (nb, None)
        submit(root, HONESTY, name, nb, extra)
    submit(root, HONESTY, "honest-correct", with_answers(root, HONESTY))
    submit(root, HONESTY, "honest-blank", released(root, HONESTY))
    report = leva_grade(root, HONESTY, workers=3)
    return root, report


#: A numpy.py next to the notebook: the real numpy, with isclose always true.
SHADOW_NUMPY = textwrap.dedent('''\
    import importlib.machinery, importlib.util, os, sys
    _path = [p for p in sys.path if p not in ("", os.getcwd(), os.path.dirname(__file__))]
    _spec = importlib.machinery.PathFinder.find_spec("numpy", _path)
    _real = sys.modules["numpy"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_real)
    _real.isclose = lambda *a, **k: True
    ''')

TRICKS = [
    "edit-tests", "delete-tests", "test-made-solution", "test-not-graded", "grade-id-and-checksum",
    "skip-tag-and-points", "patch-module-and-builtin", "rebind-names", "shadow-module-file", "input-transformer",
    "ast-transformer", "hide-errors", "swallow-exceptions", "post-run-callback", "hide-errors-while-tested",
    "skip-the-rest-of-the-test", "patch-while-tested", "redefine-assertionerror",
    "read-solution", "write-gradebook", "write-outside", "kill-the-grader", "subprocess", "sys-exit", "os-exit",
    "exit", "raise-after-tests",
]


def test_every_trick_is_tried(generated, tmp_path):
    root = tmp_path / COURSE
    shutil.copytree(generated, root)
    assert sorted(cheats(root)) == sorted(TRICKS)


@pytest.mark.parametrize("trick", TRICKS)
def test_no_stolen_points(cheated, trick):
    root, report = cheated
    outcome = outcomes(report)[trick]
    assert autograded_points(root, HONESTY, trick) == (3 if trick == "raise-after-tests" else 0), outcome
    if trick in FAILING:
        assert outcome.status == "failed" and outcome.reason, outcome
        assert all(needs for (who, _), (_, needs) in scores(root, HONESTY).items() if who == trick)
    else:
        assert outcome.status == "graded", outcome
    # the scores of the test cells still count what the gradebook says they are worth
    assert outcome.max_score == 3


def test_honest_submissions_beside_the_tricks(cheated):
    root, report = cheated
    assert autograded_points(root, HONESTY, "honest-correct") == 3
    assert autograded_points(root, HONESTY, "honest-blank") == 0
    assert not (root.parent / "outside-marker.txt").exists()
    assert all(score in (None, 0, 1, 2, 3) for score, _ in scores(root, HONESTY).values())  # no 99 anywhere


def test_what_the_grader_put_back_is_reported(cheated):
    _, report = cheated
    by_student = outcomes(report)
    assert any("math.isclose" in r for r in by_student["patch-module-and-builtin"].restored)
    assert any("isinstance" in r for r in by_student["patch-module-and-builtin"].restored)
    assert any(r.startswith("math") for r in by_student["rebind-names"].restored)
    assert any("metadata restored" in r for r in by_student["test-made-solution"].restored)
    assert "tampering" in by_student["input-transformer"].reason
    for trick in ("hide-errors-while-tested", "skip-the-rest-of-the-test"):
        assert "the test 'test_mean' stopped before its end" in by_student[trick].reason
    assert "while a test ran" in by_student["patch-while-tested"].reason
    assert "ended" in by_student["exit"].reason  # exit(): the kernel ends, at once or a moment later
    assert not by_student["honest-correct"].restored


#: Tricks that earn points from plain ``nbgrader autograde``: why the guard exists.
PAYING_UNDER_NBGRADER = ["patch-module-and-builtin", "rebind-names", "shadow-module-file", "skip-tag-and-points",
                         "input-transformer", "ast-transformer", "hide-errors", "read-solution",
                         "hide-errors-while-tested", "skip-the-rest-of-the-test", "patch-while-tested"]


@pytest.fixture(scope="module")
def cheated_plain(generated, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cheats-plain") / COURSE
    shutil.copytree(generated, root)
    tricks = cheats(root)
    for name in PAYING_UNDER_NBGRADER:
        nb, extra = tricks[name] if isinstance(tricks[name], tuple) else (tricks[name], None)
        submit(root, HONESTY, name, nb, extra)
    nbgrader_autograde(root, HONESTY)
    return root


@pytest.mark.parametrize("trick", PAYING_UNDER_NBGRADER)
def test_plain_nbgrader_gives_these_tricks_points(cheated_plain, trick):
    assert autograded_points(cheated_plain, HONESTY, trick) > 0


# ---------------------------------------------------------------------------
# Failures stay alone; kernels share nothing
# ---------------------------------------------------------------------------


def test_failures_are_clear_and_the_rest_is_graded(course):
    submit(course, HONESTY, "loop", with_answers(course, HONESTY, {"mean": "while True:\n    pass"}))
    submit(course, HONESTY, "stubborn-loop", with_answers(course, HONESTY, {"mean": textwrap.dedent('''\
        while True:
            try:
                while True:
                    pass
            except KeyboardInterrupt:
                pass''')}))
    submit(course, HONESTY, "flood", with_answers(course, HONESTY, {"mean": "for _ in range(200):\n"
                                                                           "    print('x' * 100_000)"}))
    submit(course, HONESTY, "crash", with_answers(course, HONESTY, {"mean": "import os\nos.abort()"}))
    submit(course, HONESTY, "memory", with_answers(course, HONESTY, {"span": "hog = bytearray(3 * 1024 ** 3)"}))
    submit(course, HONESTY, "not-json", "this is not a notebook {")
    submit(course, HONESTY, "honest", with_answers(course, HONESTY))

    report = leva_grade(course, HONESTY, workers=2, output_mb=2.0, memory_mb=1024, submission_timeout=20)
    by_student = outcomes(report)
    assert by_student["honest"].status == "graded" and by_student["honest"].score == 3
    assert by_student["loop"].status == "graded" and by_student["loop"].score == 1  # mean was interrupted
    assert by_student["memory"].status == "graded" and by_student["memory"].score == 2  # MemoryError in span
    assert "did not stop when interrupted" in by_student["stubborn-loop"].reason \
        or "per-submission timeout" in by_student["stubborn-loop"].reason
    assert "MB of output" in by_student["flood"].reason
    assert "kernel ended" in by_student["crash"].reason
    assert "not a readable notebook" in by_student["not-json"].reason
    for student in ("stubborn-loop", "flood", "crash", "not-json"):
        assert by_student[student].status == "failed"
        assert autograded_points(course, HONESTY, student) == 0
        assert not (course / "autograded" / student).exists()


def test_no_state_crosses_from_one_submission_to_the_next(course):
    submit(course, HONESTY, "a-leaker", with_answers(course, HONESTY, {"mean": textwrap.dedent('''\
        import builtins, math
        builtins.LEAKED = True
        math.LEAKED = True
        open("leaked.txt", "w").write("hello")
        def mean(xs):
            return sum(xs) / len(xs)''')}))
    submit(course, HONESTY, "b-checker", with_answers(course, HONESTY, {"mean": textwrap.dedent('''\
        import builtins, math, os
        CLEAN = not hasattr(builtins, "LEAKED") and not hasattr(math, "LEAKED") and not os.path.exists("leaked.txt")
        def mean(xs):
            assert CLEAN, "something of another submission is here"
            return sum(xs) / len(xs)''')}))
    report = leva_grade(course, HONESTY, workers=1)  # one worker: both kernels come from the same factory
    assert outcomes(report)["b-checker"].score == 3


# ---------------------------------------------------------------------------
# Resume, the command line, the hook
# ---------------------------------------------------------------------------


def test_interrupted_run_resumes_without_regrading(course):
    for student in ("s1", "s2", "s3", "s4"):
        submit(course, HONESTY, student, with_answers(course, HONESTY))
    first = leva_grade(course, HONESTY, students=["s1", "s2", "s3"])
    assert sorted(o.student for o in first.graded) == ["s1", "s2", "s3"]
    # as if interrupted after s3's results reached the gradebook, before its folder was published
    shutil.rmtree(course / "autograded" / "s3")

    second = leva_grade(course, HONESTY)
    assert sorted(o.student for o in second.graded) == ["s3", "s4"]
    assert sorted(o.student for o in second.skipped) == ["s1", "s2"]

    # a resubmission is graded again; --force grades everything again
    (course / "submitted" / "s1" / HONESTY / "timestamp.txt").write_text("2026-12-02 09:00:00.000000 UTC")
    third = leva_grade(course, HONESTY)
    assert [o.student for o in third.graded] == ["s1"]
    assert len(leva_grade(course, HONESTY, force=True).graded) == 4
    assert not (course / autograde.STAGING).exists()


def test_command_grades_the_course_directory_it_runs_in(course):
    submit(course, HONESTY, "cli", with_answers(course, HONESTY))
    report_file = course.parent / "report.json"
    done = subprocess.run([sys.executable, "-m", "hub.cli", "grade", HONESTY, "--workers", "1", "--no-progress",
                           "--json", str(report_file)], cwd=course, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "graded cli: 3/3" in done.stderr and "1 graded, 0 failed" in done.stderr
    assert json.loads(report_file.read_text())["submissions"][0]["score"] == 3
    again = subprocess.run([sys.executable, "-m", "hub.cli", "grade", COURSE, HONESTY, "--no-progress"],
                           cwd=course, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "1 already graded" in again.stderr


def test_course_is_found_in_the_platform_state(generated, tmp_path):
    state = tmp_path / "state"
    shutil.copytree(generated, state / "courses" / COURSE)
    target = find_course(COURSE, cwd=tmp_path, state_dir=state)
    assert target.root == (state / "courses" / COURSE).resolve()
    assert target.course_id == COURSE
    with pytest.raises(autograde.GradingError, match="no course 'nope'"):
        find_course("nope", cwd=tmp_path, state_dir=state)
    with pytest.raises(autograde.GradingError, match="not 'networking'"):
        find_course("networking", cwd=state / "courses" / COURSE)


def test_hook_is_called_after_each_graded_submission(course):
    submit(course, HONESTY, "hooked", with_answers(course, HONESTY))
    submit(course, HONESTY, "broken", "not json")
    seen: list[hooks.GradedSubmission] = []
    subscriber = hooks.on_graded(seen.append)
    try:
        leva_grade(course, HONESTY)
    finally:
        hooks.unsubscribe(subscriber)
    by_student = {event.student: event for event in seen}
    assert by_student["hooked"].status == "graded" and by_student["hooked"].score == 3
    assert by_student["hooked"].autograded.is_dir()
    assert by_student["broken"].status == "failed" and by_student["broken"].course_id == COURSE


def test_plain_config_object_survives_the_trip_to_workers(generated):
    config = autograde.load_config(generated)
    assert isinstance(config, Config)
    plain = autograde._plain(config)
    assert Config(plain).Execute.timeout == CELL_TIMEOUT
