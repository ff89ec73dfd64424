"""Every course in the catalogue, checked with real nbgrader runs and real kernels.

The tests are parametrised over whatever course folders exist (the project's
``courses/`` or ``LEVA_COURSES_DIR``), with ids such as
``digital-marketing/a1-funnel`` or ``digital-marketing/a1-funnel/wrong-denominator``.

One assignment is generated and autograded once per session: its solution,
its released (blank) notebook and all its wrong-answer variants are graded in
a single in-process autograde run, and every test of that assignment reads
the cached result.  ``leva grade`` then grades the same submissions again,
and must give every cell the score nbgrader gave it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from graders import course_check as cc
from hub.courses import Assignment, Course, CourseError, Module, courses_dir, load_course

CELL_TIMEOUT = cc.DEFAULT_CELL_TIMEOUT
MIN_LESSONS = 4
MIN_ASSIGNMENTS = 3


# ---------------------------------------------------------------------------
# What to test: collected once, without running anything
# ---------------------------------------------------------------------------


def _course_folders() -> list[Path]:
    """The folders ``load_courses`` would read, so a broken one fails alone instead of hiding the rest."""
    root = courses_dir()
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]


def _load(folder: Path) -> tuple[Course | None, str | None]:
    try:
        return load_course(folder), None
    except CourseError as e:
        return None, str(e)


FOLDERS = {folder.name: _load(folder) for folder in _course_folders()}
COURSES = [course for course, _ in FOLDERS.values() if course is not None]


def _variant_params(course: Course, assignment: str) -> list:
    try:
        variants = cc.load_variants(course, assignment)
    except cc.CourseCheckError:
        return []  # test_wrong_answers_file reports it
    return [pytest.param(course, assignment, v.name, id=f"{course.id}/{assignment}/{v.name}")
            for v in variants]


COURSE_PARAMS = [pytest.param(course, id=course.id) for course in COURSES]
ASSIGNMENT_PARAMS = [pytest.param(course, a.name, id=f"{course.id}/{a.name}")
                     for course in COURSES for a in course.assignments]
LESSON_PARAMS = [pytest.param(course, lesson, id=f"{course.id}/{lesson}")
                 for course in COURSES for lesson in course.lessons]
VARIANT_PARAMS = [p for course in COURSES for a in course.assignments
                  for p in _variant_params(course, a.name)]


# ---------------------------------------------------------------------------
# One nbgrader run per assignment, shared by its tests
# ---------------------------------------------------------------------------


def _assignments_under_test(session: pytest.Session) -> list[tuple[Course, str]]:
    """The assignments the selected tests will ask ``checked`` for, in test order."""
    wanted: dict[tuple[str, str], tuple[Course, str]] = {}
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        course, assignment = params.get("course"), params.get("assignment")
        if "checked" in getattr(item, "fixturenames", ()) and isinstance(course, Course):
            wanted.setdefault((course.id, assignment), (course, assignment))
    return list(wanted.values())


@pytest.fixture(scope="session")
def checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Callable[[Course, str], cc.AssignmentCheck]]:
    """``checked(course, assignment)``: the assignment's check, run once for the session.

    Every selected assignment is submitted at once to worker processes
    (``LEVA_CHECK_WORKERS``, default one per core), and each is generated and
    autograded in one nbgrader run.  The scratch courses are kept below
    pytest's temporary folder, to inspect a failure.
    """
    workers = int(os.environ.get("LEVA_CHECK_WORKERS") or 0) or None
    with cc.ParallelChecks(workers=workers, cell_timeout=CELL_TIMEOUT,
                           workdir=tmp_path_factory.mktemp("assignments")) as checks:
        for course, assignment in _assignments_under_test(request.session):
            checks.submit(course, assignment)

        def check(course: Course, assignment: str) -> cc.AssignmentCheck:
            try:
                return checks.result(course, assignment)
            except cc.CourseCheckError as e:
                pytest.fail(str(e), pytrace=False)

        yield check


@pytest.fixture(scope="session", autouse=True)
def _start_checks_early(request: pytest.FixtureRequest) -> None:
    """Start the assignment checks with the first test, so they run while lessons run here."""
    if any("checked" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("checked")


def _generated(check: cc.AssignmentCheck) -> cc.AssignmentCheck:
    """The check, or a failure showing nbgrader's log when the assignment could not be generated."""
    if not check.generate_ok:
        pytest.fail(f"{check.id}: generate_assignment failed:\n{check.generate_log}", pytrace=False)
    return check


def _scores(scores: dict[str, tuple[float, float]]) -> str:
    return ", ".join(f"{grade_id} {s:g}/{m:g}" for grade_id, (s, m) in scores.items())


# ---------------------------------------------------------------------------
# Courses
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_course_file_loads(folder: str) -> None:
    _, error = FOLDERS[folder]
    assert error is None, error


@pytest.mark.parametrize("course", COURSE_PARAMS)
def test_course_size(course: Course) -> None:
    assert len(course.lessons) >= MIN_LESSONS, (
        f"{course.id}: {len(course.lessons)} lesson(s) in course.toml, a course needs {MIN_LESSONS}")
    assert len(course.assignments) >= MIN_ASSIGNMENTS, (
        f"{course.id}: {len(course.assignments)} assignment(s), a course needs {MIN_ASSIGNMENTS}")


@pytest.mark.parametrize("course", COURSE_PARAMS)
def test_notebooks_use_python3_kernel(course: Course) -> None:
    notebooks = cc.course_notebooks(course)
    assert notebooks, f"{course.id}: no notebooks"
    wrong = {str(p.relative_to(course.path)): cc.kernel_name(cc.read_notebook(p)) for p in notebooks}
    wrong = {path: name for path, name in wrong.items() if name != cc.KERNEL_NAME}
    assert not wrong, f"notebooks without the {cc.KERNEL_NAME} kernelspec: {wrong}"


@pytest.mark.parametrize("course", COURSE_PARAMS)
def test_data_generator_reproduces_shipped_data(course: Course, tmp_path: Path) -> None:
    if not (course.path / "data" / "generate.py").is_file():
        pytest.skip(f"{course.id} has no data/generate.py")
    if not cc.generator_takes_out_dir(course):
        pytest.skip(f"{course.id}: data/generate.py takes no --out DIR, and running it in place "
                    f"would overwrite the shipped data")
    result = cc.check_data(course, tmp_path / "out")
    assert result.ok, "\n".join(result.problems())


# ---------------------------------------------------------------------------
# Lessons
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("course, lesson", LESSON_PARAMS)
def test_lesson_runs(course: Course, lesson: str, tmp_path: Path) -> None:
    run = cc.run_lesson(course, lesson, cell_timeout=CELL_TIMEOUT, workdir=tmp_path)
    assert run.ok, f"{run.path} stopped at {run.error}"
    slow = [f"cell {c.index} ({c.first_line}) {c.seconds:.1f} s" for c in run.slow_cells(CELL_TIMEOUT)]
    assert not slow, f"{run.path}: cells over the {CELL_TIMEOUT} s budget: {slow}"


# ---------------------------------------------------------------------------
# Assignments: structure
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_points_match_course_file(course: Course, assignment: str) -> None:
    cells = cc.assignment_cells(cc.source_notebooks(course, assignment))
    auto = sum(c.points for c in cells if c.autograded)
    manual = sum(c.points for c in cells if not c.autograded)
    declared = course.assignment(assignment).points
    assert auto + manual == declared, (
        f"course.toml gives {assignment} {declared:g} points; its notebooks carry "
        f"{auto:g} autograded + {manual:g} manually graded = {auto + manual:g}")


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_has_manually_graded_cell(course: Course, assignment: str) -> None:
    cells = cc.assignment_cells(cc.source_notebooks(course, assignment))
    assert any(not c.autograded for c in cells), f"{assignment}: no manually graded cell"


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_has_hidden_tests(course: Course, assignment: str) -> None:
    cells = cc.assignment_cells(cc.source_notebooks(course, assignment))
    assert any(c.hidden_tests for c in cells), (
        f"{assignment}: no test cell with a {cc.HIDDEN_TESTS_MARK!r} block")


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_wrong_answers_file(course: Course, assignment: str) -> None:
    path = cc.variants_file(course, assignment)
    assert path.is_file(), f"{assignment}: no {path.relative_to(course.path)}"
    variants = cc.load_variants(course, assignment)  # raises with file and variant on a bad entry
    assert variants, f"{path.relative_to(course.path)} lists no [[variant]]"


# ---------------------------------------------------------------------------
# Assignments: nbgrader runs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_generate_assignment(course: Course, assignment: str, checked) -> None:
    _generated(checked(course, assignment))


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_solution_gets_full_marks(course: Course, assignment: str, checked) -> None:
    check = _generated(checked(course, assignment))
    assert check.solution is not None, check.grading_errors.get(cc.SOLUTION)
    assert check.solution, f"{assignment}: no autograded test cell"
    assert check.solution_full, f"solution loses points: {_scores(check.solution)}"
    assert sum(m for _, m in check.solution.values()) == check.autograded_points, (
        "the gradebook's autograded points differ from the notebook's test cells")


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_released_notebook_scores_zero(course: Course, assignment: str, checked) -> None:
    check = _generated(checked(course, assignment))
    assert check.released is not None, check.grading_errors.get(cc.RELEASED)
    assert check.released_zero, f"the blank notebook earns points: {_scores(check.released)}"


@pytest.mark.parametrize("course, assignment", ASSIGNMENT_PARAMS)
def test_leva_grade_gives_nbgraders_scores(course: Course, assignment: str, checked, tmp_path: Path) -> None:
    """``leva grade``, guard and all, scores every cell as nbgrader did: solution, blank, every wrong answer."""
    from nbgrader.api import Gradebook

    from graders.autograde import grade
    from graders.benchmark import cell_scores

    check = _generated(checked(course, assignment))
    assert check.workdir, "the check's course directory was not kept"
    graded_by_nbgrader = Path(check.workdir)
    root = tmp_path / course.id
    shutil.copytree(graded_by_nbgrader, root, ignore=shutil.ignore_patterns("autograded", "feedback"))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:  # no score of nbgrader's is left to match
        for student in [s.student.id for s in gb.find_assignment(assignment).submissions]:
            gb.remove_submission(assignment, student)
    report = grade(None, assignment, cwd=root, workers=2, progress=False, cell_timeout=CELL_TIMEOUT)
    assert not report.failed, [(o.student, o.reason) for o in report.failed]
    expected = cell_scores(graded_by_nbgrader / "gradebook.db", assignment)
    assert expected and cell_scores(root / "gradebook.db", assignment) == expected


@pytest.mark.parametrize("course, assignment, variant", VARIANT_PARAMS)
def test_wrong_answer_is_caught(course: Course, assignment: str, variant: str, checked) -> None:
    check = _generated(checked(course, assignment))
    if not check.solution_full:
        pytest.fail("the solution itself loses points; see test_solution_gets_full_marks",
                    pytrace=False)
    outcome = check.variant(variant)
    assert outcome.error is None, outcome.error
    assert not outcome.unknown_targets, (
        f"targets {outcome.unknown_targets} are not autograded test cells of {assignment}")
    assert not outcome.missed, (
        f"{variant!r} ({outcome.variant.mistake}) keeps full marks on {outcome.missed}: "
        f"{_scores(outcome.scores)}")
    assert not outcome.collateral, (
        f"{variant!r} also loses points on {outcome.collateral}, which it does not target: "
        f"{_scores(outcome.scores)}")


# ---------------------------------------------------------------------------
# The checks themselves: a small course with known flaws must be caught
# ---------------------------------------------------------------------------

_KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def _meta(grade_id: str, *, grade: bool = False, solution: bool = False,
          points: float | None = None) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": grade and not solution,
            "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


@pytest.fixture(scope="module")
def flawed_course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """One assignment with a variant its tests catch, one they miss, and one naming no cell."""
    root = tmp_path_factory.mktemp("courses") / "flawed"
    (root / "source" / "a1").mkdir(parents=True)
    (root / "wrong_answers").mkdir()
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    nbformat.write(new_notebook(metadata=_KERNEL, cells=[
        new_code_cell("def double(n):\n    ### BEGIN SOLUTION\n    return 2 * n\n    ### END SOLUTION",
                      metadata=_meta("double", solution=True)),
        new_code_cell("assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(5) == 10\n"
                      "### END HIDDEN TESTS", metadata=_meta("test_double", grade=True, points=2)),
        new_code_cell("assert double(0) == 0", metadata=_meta("test_zero", grade=True, points=1)),
        new_markdown_cell("YOUR ANSWER HERE", metadata=_meta("why", grade=True, solution=True, points=1)),
    ]), root / "source" / "a1" / "a1.ipynb")
    (root / "wrong_answers" / "a1.toml").write_text(textwrap.dedent("""
        [[variant]]
        name = "square"
        mistake = "Squares instead of doubling."
        cell = "double"
        targets = ["test_double"]
        source = "def double(n):\\n    return n * n"

        [[variant]]
        name = "harmless"
        mistake = "Writes the same function differently."
        cell = "double"
        targets = ["test_double"]
        source = "def double(n):\\n    return n + n"

        [[variant]]
        name = "no-such-cell"
        mistake = "Names a cell the notebook lacks."
        cell = "triple"
        targets = ["test_double"]
        source = "pass"
    """))
    return Course(id="flawed", path=root, title="Flawed", description="",
                  modules=(Module("m", "M", ()),),
                  assignments=(Assignment("a1", "A1", points=5, due=None),), badge=None)


def test_check_catches_flaws(flawed_course: Course) -> None:
    check = cc.check_assignment(flawed_course, "a1")
    assert check.generate_ok and check.solution_full and check.released_zero
    assert (check.autograded_points, check.manual_points) == (3, 1)
    assert check.variant("square").ok
    assert check.variant("harmless").missed == ["test_double"]
    assert "grade_id 'triple'" in check.variant("no-such-cell").error
    problems = "\n".join(check.problems())
    assert "course.toml gives 5 points" in problems and "harmless" in problems


def test_bad_variant_file_names_file_and_variant(flawed_course: Course, tmp_path: Path) -> None:
    course = dataclasses.replace(flawed_course, path=tmp_path)
    (tmp_path / "wrong_answers").mkdir()
    (tmp_path / "wrong_answers" / "a1.toml").write_text(
        '[[variant]]\nname = "typo"\nmistake = "m"\ncell = "double"\nsource = "pass"\n')
    with pytest.raises(cc.CourseCheckError, match=r"a1\.toml \[\[variant\]\] #1 \('typo'\).*'targets'"):
        cc.load_variants(course, "a1")
