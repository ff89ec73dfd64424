"""The hub that `make run` starts: sign-in, servers with course lessons, isolation, restarts."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from hub.courses import load_course
from hub.lessons import file_hash, update_name
from tests.hubtools import DEMO_PASSWORD, Member


def lesson_paths(courses_dir, course_id):
    course = load_course(courses_dir / course_id)
    return [f"{course_id}/{lesson}" for lesson in course.lessons]


def contents(member: Member, path: str = "") -> dict:
    r = member.server("GET", f"/api/contents/{path}")
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"
    return r.json()


@pytest.fixture(scope="module")
def luca(hub):
    member = hub.login("luca")
    member.start_server()
    return member


def test_learner_finds_their_lessons_and_runs_code(hub, hub_courses, luca):
    top = {item["name"] for item in contents(luca)["content"]}
    assert "digital-marketing" in top
    assert "networking" not in top, "luca is not enrolled in networking"
    for path in lesson_paths(hub_courses, "digital-marketing"):
        model = contents(luca, path)
        assert model["type"] == "notebook" and model["content"]["cells"], path
    assert luca.execute("print(sum(range(10)) * 7)").strip() == "315"


def test_learner_lands_in_jupyterlab_with_notebook_7_available(luca):
    lab = luca.http.get(f"{luca.hub.url}/user/luca/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    tree = luca.http.get(f"{luca.hub.url}/user/luca/tree")
    assert tree.status_code == 200 and "Jupyter Notebook" in tree.text


def test_learner_cannot_reach_another_members_server(hub, luca):
    elena = hub.login("elena")
    # with her own token
    for method, path in [("GET", "/api/contents/"), ("GET", "/api/contents/digital-marketing"), ("POST", "/api/kernels")]:
        r = elena.server(method, path, user="luca")
        assert r.status_code in (403, 404), f"{method} {path}: {r.status_code}"
    # with her browser cookie, as a page
    r = elena.http.get(f"{hub.url}/user/luca/lab")
    assert r.status_code in (403, 404)
    assert "digital-marketing" not in r.text


def test_learner_cannot_use_admin_apis(hub):
    chiara = hub.login("chiara")
    listing = chiara.hub_api("GET", "/users")
    assert listing.status_code == 403 or {u["name"] for u in listing.json()} <= {"chiara"}
    assert chiara.hub_api("POST", "/users/intruder").status_code == 403
    assert chiara.hub_api("PATCH", "/users/chiara", json={"admin": True}).status_code == 403
    assert chiara.hub_api("DELETE", "/users/luca/server").status_code in (403, 404)
    assert chiara.hub_api("POST", "/users/luca/tokens", json={}).status_code in (403, 404)
    assert chiara.hub_api("POST", "/groups/formgrade-networking/users", json={"users": ["chiara"]}).status_code in (403, 404)
    assert chiara.http.get(f"{hub.url}/hub/admin").status_code == 403
    assert chiara.http.get(f"{hub.url}/hub/password/luca").status_code == 403
    assert chiara.form("/hub/password/luca", {"new_password": "taken-over-123"}).status_code == 403


def test_instructor_sees_only_their_course_learners(hub):
    marco = hub.login("marco")
    names = {u["name"] for u in marco.hub_api("GET", "/users").json()}
    assert {"luca", "chiara"} <= names
    assert "elena" not in names, "elena learns networking, which marco does not teach"
    assert marco.hub_api("GET", "/groups/nbgrader-digital-marketing").status_code == 200
    assert marco.hub_api("GET", "/groups/nbgrader-networking").status_code in (403, 404)
    assert marco.hub_api("POST", "/users/intruder").status_code == 403


def _login_page(member: Member, password: str):
    """Status and page of a failed sign-in, without the parts that differ per request (name, XSRF token)."""
    r = member.sign_in(password, follow=False)
    return r.status_code, re.sub(r"[A-Za-z0-9+/=_|-]{40,}", "TOKEN", r.text.replace(member.name, "NAME"))


def test_wrong_password_and_unknown_user_get_the_same_answer(hub):
    wrong = _login_page(Member(hub, "elena"), "not-her-password")
    unknown = _login_page(Member(hub, "nobody-here"), "not-her-password")
    assert wrong[0] == unknown[0] == 403
    assert "Invalid username or password" in wrong[1]
    assert wrong[1] == unknown[1]


def test_repeated_failures_lock_the_username(hub):
    sara = Member(hub, "sara")
    for _ in range(5):
        assert sara.sign_in("guessing-123", follow=False).status_code == 403
    # even the right password is refused while locked, with the same answer
    status, page = _login_page(sara, DEMO_PASSWORD)
    assert status == 403 and "Invalid username or password" in page
    # unknown usernames lock the same way
    ghost = Member(hub, "ghost")
    for _ in range(6):
        assert ghost.sign_in("guessing-123", follow=False).status_code == 403
    assert "locked after repeated failures" in hub.log()

    # an admin sets a new password, which lifts the lockout
    giulia = hub.login("giulia")
    r = giulia.form("/hub/password/sara", {"new_password": "sara-new-password"})
    assert r.status_code == 200 and "Password set" in r.text
    hub.login("sara", "sara-new-password")


def test_admin_adds_a_member_who_then_signs_in(hub):
    giulia = hub.login("giulia")
    assert giulia.hub_api("POST", "/users/nuovo").status_code == 201
    assert Member(hub, "nuovo").sign_in(DEMO_PASSWORD, follow=False).status_code == 403  # no password yet
    page = giulia.form("/hub/password/nuovo", {"new_password": ""})
    assert page.status_code == 200
    generated = page.text.split('<pre id="new-password">')[1].split("</pre>")[0]
    nuovo = hub.login("nuovo", generated)
    # the member changes it on their own page; a form without the XSRF token is refused
    no_xsrf = nuovo.http.post(f"{hub.url}/hub/password", data={"current_password": generated})
    assert no_xsrf.status_code == 403
    r = nuovo.form("/hub/password", {"current_password": generated, "new_password": "mine-now-123", "confirm_password": "mine-now-123"})
    assert r.status_code == 200 and "changed" in r.text
    hub.login("nuovo", "mine-now-123")


def test_edited_notebook_survives_course_update_and_hub_restart(hub, hub_courses):
    chiara = hub.login("chiara")
    chiara.start_server()
    edited, untouched = lesson_paths(hub_courses, "networking")[:2]
    # chiara writes her own notes into a lesson
    model = contents(chiara, edited)
    notebook = nbformat.from_dict(model["content"])
    notebook.cells.append(nbformat.v4.new_markdown_cell("My notes: ask Sara about weak ties."))
    r = chiara.server("PUT", f"/api/contents/{edited}", json={"type": "notebook", "format": "json", "content": notebook})
    assert r.status_code == 200, r.text
    mine = contents(chiara, edited)["content"]

    # the course changes both lessons and adds one
    for path in (edited, untouched):
        source = hub_courses / path.replace("networking/", "networking/lessons/", 1)
        nb = nbformat.read(source, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("Updated for the spring cohort."))
        nbformat.write(nb, source)
    extra = hub_courses / "networking" / "lessons" / "99-new-lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), extra)

    chiara.stop_server()
    hub.restart()
    chiara = hub.login("chiara")
    chiara.start_server()

    assert contents(chiara, edited)["content"] == mine, "chiara's edited lesson must be kept as she left it"
    source = hub_courses / "networking" / "lessons" / edited.split("/", 1)[1]
    beside = update_name(source.parent / source.name, file_hash(source)).name
    folder = "/".join(edited.split("/")[:-1])
    names = {item["name"] for item in contents(chiara, folder)["content"]}
    assert beside in names, "the course's new version is delivered beside her copy"
    assert contents(chiara, untouched)["content"]["cells"][0]["source"] == "Updated for the spring cohort."
    assert "99-new-lesson.ipynb" in {item["name"] for item in contents(chiara, "networking")["content"]}
    chiara.stop_server()
