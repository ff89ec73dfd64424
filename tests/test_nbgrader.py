"""nbgrader across the hub: the whole cycle through the real hub, and who sees what."""

from __future__ import annotations

import csv
import datetime
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from hub.courses import load_course
from hub.grading import course_root, exchange_root, gradebook_url, sync_gradebook
from tests.hubtools import Member, action, assignments, formgrader, ok

COURSE, OTHER = "digital-marketing", "networking"


def disabled_extensions(member: Member) -> list:
    """The JupyterLab extensions switched off in the member's JupyterLab page."""
    page = member.server("GET", "/lab").text
    data = page.split('<script id="jupyter-config-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    return list(json.loads(data).get("disabledExtensions", []))


@pytest.fixture(scope="module")
def first_assignment(hub_courses):
    return load_course(hub_courses / COURSE).assignments[0]


@pytest.fixture(scope="module")
def luca(hub):
    member = hub.login("luca")
    member.start_server()
    return member


@pytest.fixture(scope="module")
def marco(hub):
    return hub.login("marco")


def test_the_demo_starts_with_each_first_assignment_released(hub, hub_courses):
    for course_id in (COURSE, OTHER):
        first = load_course(hub_courses / course_id).assignments[0].name
        assert (exchange_root(hub.state_dir) / course_id / "outbound" / first).is_dir()


def test_full_cycle(hub, hub_courses, luca, marco, first_assignment):
    name = first_assignment.name
    released = assignments(luca, COURSE)
    assert released[name]["status"] == "released"

    # the learner fetches, answers (here: the model solution) and submits twice; the latest counts
    ok(action(luca, "fetch", COURSE, name))
    path = f"{COURSE}/{name}/{name}.ipynb"
    fetched = luca.server("GET", f"/api/contents/{path}").json()["content"]
    solution = nbformat.read(hub_courses / COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    assert len(fetched["cells"]) == len(solution.cells)
    blank = luca.server("PUT", f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": fetched})
    assert blank.status_code == 200
    ok(action(luca, "submit", COURSE, name))
    r = luca.server("PUT", f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": solution})
    assert r.status_code == 200, r.text
    ok(action(luca, "submit", COURSE, name))
    assert assignments(luca, COURSE)[name]["status"] == "submitted"

    # the instructor collects, autogrades, grades the written answers, releases feedback
    ok(formgrader(marco, "POST", f"/assignment/{name}/collect"))
    ok(formgrader(marco, "POST", f"/submission/{name}/luca/autograde"))
    submission = ok(formgrader(marco, "GET", f"/submission/{name}/luca"))
    assert submission["autograded"]
    notebook_id = name
    submitted = ok(formgrader(marco, "GET", f"/submitted_notebooks/{name}/{notebook_id}"))
    mine = next(s for s in submitted if s["student"] == "luca")
    grades = ok(formgrader(marco, "GET", "/grades", params={"submission_id": mine["id"]}))
    auto = [g for g in grades if g["auto_score"] is not None]
    assert auto and all(g["auto_score"] == g["max_score"] for g in auto), "the model solution earns every autograded point"
    manual = [g for g in grades if g["needs_manual_grade"]]
    assert manual, "each assignment has a written answer to grade by hand"
    for grade in manual:
        ok(formgrader(marco, "PUT", f"/grade/{grade['id']}", json={"manual_score": grade["max_score"] / 2}))
    final = ok(formgrader(marco, "GET", f"/submission/{name}/luca"))
    assert final["score"] == pytest.approx(final["max_score"] - sum(g["max_score"] for g in manual) / 2)
    ok(formgrader(marco, "POST", f"/assignment/{name}/generate_feedback"))
    ok(formgrader(marco, "POST", f"/assignment/{name}/release_feedback"))

    # the learner fetches the feedback into their home
    ok(action(luca, "fetch_feedback", COURSE, name))
    feedback = luca.server("GET", f"/api/contents/{COURSE}/{name}/feedback").json()
    stamps = [item["name"] for item in feedback["content"]]
    assert stamps
    page = luca.server("GET", f"/api/contents/{COURSE}/{name}/feedback/{stamps[0]}/{name}.html")
    assert page.status_code == 200 and "Score" in page.json()["content"]

    # a late submission, graded from the command line: the due date passes, then chiara submits
    course = load_course(hub_courses / COURSE)
    course_file = hub_courses / COURSE / "course.toml"
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    course_file.write_text(course_file.read_text().replace(first_assignment.due.isoformat(), now.isoformat(), 1))
    sync_gradebook(load_course(hub_courses / COURSE), gradebook_url(hub.state_dir, COURSE, None), [])
    time.sleep(1.5)
    chiara = hub.login("chiara")
    chiara.start_server()
    ok(action(chiara, "fetch", COURSE, name))
    ok(action(chiara, "submit", COURSE, name))
    root = course_root(hub.state_dir, COURSE)
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    for command in (["collect", name], ["autograde", name, "--student", "chiara"]):
        subprocess.run([nbgrader, *command], cwd=root, env=hub.env, capture_output=True, timeout=300, check=True)

    # grades export: one row per learner and assignment of the course
    out = subprocess.run(
        [str(Path(sys.executable).parent / "leva"), "grades", "export", COURSE],
        env=hub.env, capture_output=True, text=True, timeout=60, check=True,
    )
    rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(io.StringIO(out.stdout))}
    assert set(rows) == {(s, a.name) for s in ("luca", "chiara", "sara") for a in course.assignments}
    assert float(rows["luca", name]["score"]) == pytest.approx(final["score"])
    assert rows["luca", name]["status"] == "graded" and rows["luca", name]["late"] == "False"
    assert rows["chiara", name]["late"] == "True"
    # she submitted the released notebook untouched: nbgrader gives a blank answer 0, with nothing to grade by hand
    assert rows["chiara", name]["status"] == "graded" and float(rows["chiara", name]["score"]) == 0
    later = course.assignments[1].name
    assert rows["luca", later]["status"] == "missing"


def test_a_corrupt_submission_is_reported_and_the_others_graded(hub, hub_courses, luca, first_assignment):
    """luca resubmits a file that is not a notebook; chiara a right answer whose test cells she tampered with."""
    name = first_assignment.name
    path = f"/api/contents/{COURSE}/{name}/{name}.ipynb"
    assert luca.server("PUT", path, json={"type": "file", "format": "text", "content": "{ this is not a notebook"}).ok
    ok(action(luca, "submit", COURSE, name))
    chiara = hub.login("chiara")
    chiara.start_server()
    notebook = json.loads(nbformat.writes(nbformat.read(hub_courses / COURSE / "source" / name / f"{name}.ipynb", as_version=4)))
    tests = [c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"]
    tests[0]["metadata"]["nbgrader"]["grade_id"] += "-mine"
    tests[0]["metadata"]["nbgrader"]["checksum"] = "0" * 32
    notebook["cells"].remove(tests[1])
    assert chiara.server("PUT", path, json={"type": "notebook", "format": "json", "content": notebook}).ok
    ok(action(chiara, "submit", COURSE, name))
    marco = hub.login("marco")
    ok(formgrader(marco, "POST", f"/assignment/{name}/collect"))

    result = subprocess.run(
        [str(Path(sys.executable).parent / "leva"), "grade", COURSE, name, "--force", "--no-progress"],
        env=hub.env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "luca" in output and "not a readable notebook" in output
    root = course_root(hub.state_dir, COURSE)
    assert (root / "autograded" / "chiara" / name).is_dir(), "the others are graded"
    with Gradebook(gradebook_url(hub.state_dir, COURSE, None), course_id=COURSE) as gb:
        graded = gb.find_submission(name, "chiara")
        assert graded.code_score == graded.max_code_score, "graded with the gradebook's tests, whatever she did to hers"


def test_learner_sees_nothing_of_another_course(hub, luca):
    other = load_course(Path(hub.env["LEVA_COURSES_DIR"]) / OTHER).assignments[0].name
    assert not assignments(luca, OTHER)
    action(luca, "fetch", OTHER, other)
    names = {item["name"] for item in luca.server("GET", "/api/contents/").json()["content"]}
    assert OTHER not in names
    # no formgrader for a learner: no course list in JupyterLab, no link from the server
    assert "@jupyter/nbgrader:course-list" in disabled_extensions(luca)
    listed = luca.server("GET", "/formgraders").json()
    assert not listed["success"] or listed["value"] == []
    assert formgrader(luca, "GET", "/status").status_code == 403


def test_instructor_course_list_and_formgrader_access(hub, marco):
    marco.start_server()
    assert "@jupyter/nbgrader:course-list" not in disabled_extensions(marco)
    assert "@jupyter/nbgrader:formgrader" in disabled_extensions(marco), "members grade in the course's service"
    listed = ok(marco.server("GET", "/formgraders"))["value"]
    assert [c["course_id"] for c in listed] == [COURSE]
    assert listed[0]["url"].endswith(f"/services/{COURSE}/lab?formgrader=true")
    assert formgrader(marco, "GET", "/status").status_code == 200
    assert formgrader(marco, "GET", "/status", course=OTHER).status_code == 403
    # the formgrader may be framed by its own JupyterLab only; members' servers keep 'none'
    page = marco.http.get(f"{hub.url}/services/{COURSE}/lab", headers={"Authorization": f"token {marco.token}"})
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    own = marco.server("GET", "/lab")
    assert "frame-ancestors 'none'" in own.headers["Content-Security-Policy"]


def test_submissions_are_private_in_the_exchange(hub, luca, first_assignment):
    inbound = exchange_root(hub.state_dir) / COURSE / "inbound"
    assert oct(inbound.stat().st_mode & 0o777) == oct(0o733), "others may drop submissions in, not list them"
    submissions = [p for p in inbound.iterdir() if p.name.startswith("luca+")]
    assert submissions
    for submission in submissions:
        assert submission.stat().st_mode & 0o077 == 0, f"{submission.name} is readable by others"
        for item in submission.rglob("*"):
            assert item.stat().st_mode & 0o077 == 0, f"{item} is readable by others"
    # the learner's server lists only their own submission history
    for entry in assignments(luca, COURSE).values():
        for submission in entry.get("submissions", []):
            assert submission["student_id"] == "luca"


def test_gradebook_lives_outside_members_homes(hub):
    root = course_root(hub.state_dir, COURSE)
    assert (root / "gradebook.db").exists()
    assert not str(root).startswith(str(hub.state_dir / "homes"))
