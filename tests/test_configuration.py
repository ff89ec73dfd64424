"""A bad configuration stops start-up with one message naming the file, the line and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.roster import parse_roster
from tests.hubtools import PROJECT

HEADER = "username,full_name,email,role,courses\n"
GOOD = "anna,Anna Bassi,anna@leva.example,learner,{course}\n"


@pytest.fixture
def catalogue(tmp_path, hub_courses):
    target = tmp_path / "courses"
    shutil.copytree(hub_courses, target)
    return target


def start_hub(tmp_path, courses: Path, roster_text: str) -> subprocess.CompletedProcess:
    roster = tmp_path / "roster.csv"
    roster.write_text(roster_text)
    env = {"LEVA_STATE_DIR": str(tmp_path / "var"), "LEVA_COURSES_DIR": str(courses), "LEVA_ROSTER": str(roster),
           "PATH": str(Path(sys.executable).parent)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(PROJECT / "jupyterhub_config.py")],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )


def first_course(courses: Path) -> str:
    return sorted(p.name for p in courses.iterdir() if p.is_dir())[0]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("bob,Bob Conti,bob@leva.example,learner,cooking\n", ["line 3", "course 'cooking' is not in the course catalogue", "Fix:"]),
        ("bob,Bob Conti,bob@leva.example,learner\n", ["line 3", "expected 5 fields", "Fix:"]),
        ("bob,Bob Conti,bob@leva.example,student,{course}\n", ["line 3", "role 'student' is unknown", "learner, instructor, admin"]),
        ("Bob!,Bob Conti,bob@leva.example,learner,{course}\n", ["line 3", "username 'Bob!' is not valid"]),
        ("bob,Bob Conti,not-an-email,learner,{course}\n", ["line 3", "not an e-mail address"]),
        ("anna,Anna Again,anna2@leva.example,learner,{course}\n", ["line 3", "already appears on line 2"]),
        ("bob,Bob Conti,bob@leva.example,learner,{course}:teacher\n", ["line 3", "names the role 'teacher'", "course:instructor"]),
    ],
    ids=["unknown-course", "missing-field", "unknown-role", "bad-username", "bad-email", "duplicate", "bad-course-role"],
)
def test_bad_roster_line_stops_startup(tmp_path, catalogue, line, expected):
    course = first_course(catalogue)
    result = start_hub(tmp_path, catalogue, HEADER + GOOD.format(course=course) + line.format(course=course))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("leva: cannot start:") and "Traceback" not in message
    assert str(tmp_path / "roster.csv") in message
    for part in expected:
        assert part in message
    assert not (tmp_path / "var" / "jupyterhub.sqlite").exists(), "nothing starts on a bad roster"


def test_missing_course_folder_stops_startup(tmp_path):
    result = start_hub(tmp_path, tmp_path / "no-such-courses", HEADER)
    assert result.returncode == 2
    assert "no-such-courses: the course folder does not exist" in result.stderr
    assert "LEVA_COURSES_DIR" in result.stderr


def test_course_without_course_file_stops_startup(tmp_path, catalogue):
    (catalogue / "cooking").mkdir()
    result = start_hub(tmp_path, catalogue, HEADER)
    assert result.returncode == 2
    assert f"{catalogue / 'cooking' / 'course.toml'}: no course file" in result.stderr


def test_course_file_naming_a_missing_lesson_stops_startup(tmp_path, catalogue):
    course = first_course(catalogue)
    course_file = catalogue / course / "course.toml"
    course_file.write_text(course_file.read_text().replace("lessons = [", 'lessons = ["99-missing.ipynb", ', 1))
    result = start_hub(tmp_path, catalogue, HEADER)
    assert result.returncode == 2
    assert "lesson '99-missing.ipynb' is not in" in result.stderr and str(course_file) in result.stderr


def test_roster_reports_every_bad_line_and_keeps_the_good_ones(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(HEADER + GOOD.format(course="c1") + "x,,x@y.org,learner,c1\n" + "\n" + "carla,Carla,c@leva.example,admin,\n" + "dino,Dino,d@leva.example,learner,c2\n")
    members, problems = parse_roster(roster, {"c1"})
    assert [m.username for m in members] == ["anna", "carla"]
    assert [(p.line, p.problem) for p in problems] == [(3, "full_name is empty"), (6, "course 'c2' is not in the course catalogue")]


def test_a_member_can_learn_one_course_and_teach_another(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(HEADER + "sara,Sara Conti,sara@leva.example,instructor,c2;c1:learner\n")
    (sara,), problems = parse_roster(roster, {"c1", "c2"})
    assert not problems
    assert sara.groups == ("formgrade-c2", "nbgrader-c1")
    assert sara.courses_as("learner") == ("c1",) and sara.courses_as("instructor") == ("c2",)
    assert sara.row()["courses"] == "c2;c1:learner"


def test_demo_roster_is_valid(hub_courses):
    from hub.courses import load_courses

    members, problems = parse_roster(PROJECT / "hub" / "demo" / "roster.csv", load_courses(hub_courses))
    assert not problems
    roles = [m.role for m in members]
    assert roles.count("admin") >= 1 and roles.count("learner") >= 3
    courses = load_courses(hub_courses)
    for course in courses:
        assert any(course in m.courses_as("instructor") for m in members), f"no instructor for {course}"
