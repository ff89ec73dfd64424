"""Course gradebooks on PostgreSQL (LEVA_GRADEBOOK_URL), with two learners graded at once."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from hub.courses import load_course
from hub.grading import course_root
from tests.hubtools import PROJECT, RunningHub, action, formgrader, ok

COURSE = "digital-marketing"


def test_formgrader_cycle_on_a_postgresql_gradebook(tmp_path, hub_courses, postgres_database):
    url = postgres_database("gradebook")
    hub = RunningHub(tmp_path / "var", hub_courses, PROJECT / "hub" / "demo" / "roster.csv", env={"LEVA_GRADEBOOK_URL": url})
    hub.start()
    try:
        assert f"db_url = '{url}'" in (course_root(hub.state_dir, COURSE) / "nbgrader_config.py").read_text()
        assert not (course_root(hub.state_dir, COURSE) / "gradebook.db").exists(), "no SQLite gradebook beside it"
        course = load_course(hub_courses / COURSE)
        name = course.assignments[0].name
        solution = nbformat.read(hub_courses / COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        for learner, notebook in (("luca", solution), ("chiara", None)):
            member = hub.login(learner)
            member.start_server()
            ok(action(member, "fetch", COURSE, name))
            if notebook is not None:
                path = f"/api/contents/{COURSE}/{name}/{name}.ipynb"
                assert member.server("PUT", path, json={"type": "notebook", "format": "json", "content": notebook}).ok
            ok(action(member, "submit", COURSE, name))

        marco = hub.login("marco")
        ok(formgrader(marco, "POST", f"/assignment/{name}/collect"))
        # two autogrades at once: the case SQLite gradebooks break on
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(formgrader, marco, "POST", f"/submission/{name}/{s}/autograde") for s in ("luca", "chiara")]
            for run in runs:
                ok(run.result())

        with Gradebook(url, course_id=COURSE) as gb:
            assert gb.find_assignment(name).duedate is not None, "due dates come from the course file"
            luca = gb.find_submission(name, "luca")
            assert luca.code_score == luca.max_code_score > 0
            assert gb.find_submission(name, "chiara").code_score == 0
            assert {s.id for s in gb.students} >= {"luca", "chiara", "sara"}

        out = subprocess.run(
            [str(Path(sys.executable).parent / "leva"), "grades", "export", COURSE],
            env=hub.env, capture_output=True, text=True, timeout=60, check=True,
        )
        assert f"luca,{name}," in out.stdout and f"chiara,{name}," in out.stdout
    finally:
        hub.stop()
