"""Community profiles through the real hub, the real service and members' real servers.

Every test runs twice: on the demo hub, whose community service keeps SQLite under
the state dir, and on a hub of its own whose service uses a fresh PostgreSQL
database (``LEVA_COMMUNITY_DB_URL``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import sqlite3
import time
import uuid
from urllib.parse import urlparse

import nbformat
import psycopg
import pytest
import requests
import websocket
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nbgrader.api import Gradebook

from hub.courses import load_course
from hub.grading import course_root, gradebook_url, nbgrader_api
from tests.hubtools import PROJECT, Member, RunningHub, action, formgrader, ok, wait_for

SERVICE = "/services/community"
DM, NET = "digital-marketing", "networking"
EVERYONE = ("giulia", "marco", "sara", "luca", "elena", "chiara")


# the platform, on each database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(request, tmp_path_factory, hub_courses):
    if request.param == "sqlite":
        yield request.getfixturevalue("hub")
        return
    url = request.getfixturevalue("postgres_database")("community")
    running = RunningHub(
        tmp_path_factory.mktemp("community-pg") / "var", hub_courses, PROJECT / "hub" / "demo" / "roster.csv",
        env={"LEVA_COMMUNITY_DB_URL": url},
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def members(platform) -> dict[str, Member]:
    return {name: platform.login(name) for name in EVERYONE}


def api(member: Member, method: str, path: str, **kwargs) -> requests.Response:
    """The community API with the member's own token."""
    url = f"{member.hub.url}{SERVICE}/api{path}"
    return member.http.request(method, url, headers={"Authorization": f"token {member.token}"}, **kwargs)


def view(member: Member, username: str) -> dict:
    r = api(member, "GET", f"/members/{username}")
    assert r.status_code == 200, r.text
    return r.json()


def eventually(member: Member, username: str, check, what: str, timeout: float = 20) -> dict:
    """The member's view of ``username`` once ``check(view)`` holds."""
    found = {}

    def ready():
        found["view"] = view(member, username)
        return check(found["view"])

    wait_for(ready, timeout, what, interval=0.5)
    return found["view"]


def run_in_kernel(member: Member, kernel_id: str, code: str, timeout: float = 60) -> None:
    """Run code in an existing kernel of the member's server, as JupyterLab does over the websocket."""
    ws_url = urlparse(member.hub.url)._replace(scheme="ws").geturl()
    ws = websocket.create_connection(
        f"{ws_url}/user/{member.name}/api/kernels/{kernel_id}/channels",
        header={"Authorization": f"token {member.token}"}, timeout=timeout,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": member.name,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
        }))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "status" \
                    and msg["content"]["execution_state"] == "idle":
                return
        raise TimeoutError("no reply from the kernel")
    finally:
        ws.close()


# what the members wrote and did


@pytest.fixture(scope="module")
def profiles(members):
    """luca shows himself to everyone but his city; elena to course peers; chiara to nobody."""
    edits = {
        "luca": {"display_name": "Luca Bianchi", "headline": "Growth marketer", "skills": ["pandas", "SQL"],
                 "interests": ["A/B testing"], "city": "Torino", "private_fields": ["city"],
                 "visibility": "community", "leaderboard": True},
        "elena": {"display_name": "Elena Russo", "headline": "Community builder", "skills": ["networkx"],
                  "city": "Bari", "visibility": "peers", "leaderboard": True},
        "chiara": {"display_name": "Chiara Romano", "headline": "Founder", "skills": ["python"],
                   "city": "Milano", "visibility": "private"},
    }
    for name, edit in edits.items():
        r = api(members[name], "PATCH", f"/members/{name}", json=edit)
        assert r.status_code == 200, r.text
    return edits


@pytest.fixture(scope="module")
def graded_elena(platform, members, hub_courses):
    """elena submits the model solution of networking's first assignment; sara autogrades it."""
    elena, sara = members["elena"], members["sara"]
    elena.start_server()
    name = load_course(hub_courses / NET).assignments[0].name
    ok(action(elena, "fetch", NET, name))
    solution = nbformat.read(hub_courses / NET / "source" / name / f"{name}.ipynb", as_version=4)
    r = elena.server("PUT", f"/api/contents/{NET}/{name}/{name}.ipynb", json={"type": "notebook", "format": "json", "content": solution})
    assert r.status_code == 200, r.text
    ok(action(elena, "submit", NET, name))
    submitted = eventually(elena, "elena", lambda v: v["courses"][NET]["assignments"][name]["status"] == "submitted",
                           "the submission to show")
    ok(formgrader(sara, "POST", f"/assignment/{name}/collect", course=NET))
    ok(formgrader(sara, "POST", f"/submission/{name}/elena/autograde", course=NET))
    start = time.monotonic()  # the formgrader answers once the gradebook holds the scores
    with Gradebook(gradebook_url(platform.state_dir, NET, platform.env.get("LEVA_GRADEBOOK_URL")), course_id=NET) as gb:
        score = gb.find_submission(name, "elena").score
    graded = eventually(elena, "elena", lambda v: v["courses"][NET]["assignments"][name]["score"] == score,
                        "the autograded score to show")
    return {"name": name, "submitted": submitted, "view": graded, "seconds": time.monotonic() - start, "score": score}


@pytest.fixture(scope="module")
def chiara_badge(platform, members, hub_courses):
    """chiara completes every networking lesson and has all three assignments graded at 90%."""
    chiara = members["chiara"]
    course = load_course(hub_courses / NET)
    events = [{"id": uuid.uuid4().hex, "kind": "saved", "path": f"{NET}/{lesson}", "cells_run": 9, "cells_total": 9}
              for lesson in course.lessons]
    assert api(chiara, "POST", "/events", json={"events": events}).json()["accepted"] == len(course.lessons)
    root = course_root(platform.state_dir, NET)
    for assignment in course.assignments[1:]:
        assert nbgrader_api(root).generate_assignment(assignment.name)["success"]
    with Gradebook(gradebook_url(platform.state_dir, NET, platform.env.get("LEVA_GRADEBOOK_URL")), course_id=NET) as gb:
        gb.update_or_create_student("chiara")
        for assignment in course.assignments:
            with gb.db.no_autoflush:  # nbgrader's own add_submission otherwise warns
                submission = gb.add_submission(assignment.name, "chiara")
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.manual_score = grade.max_score * 0.9
                    grade.needs_manual_grade = False
            gb.db.commit()
    mine = eventually(chiara, "chiara", lambda v: v["badges"], "chiara's badge", timeout=30)
    return mine["badges"][0]


# the service, its API description and its links


def test_openapi_document_describes_the_api(members):
    spec = requests.get(f"{members['luca'].hub.url}{SERVICE}/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/members", "/members/{username}", "/events", "/courses/{course}/learners",
                 "/courses/{course}/scores", "/courses/{course}/leaderboard", "/badges/{id}", "/badges/{id}/verify"):
        assert path in spec["paths"], path
    assert "patch" in spec["paths"]["/members/{username}"]
    assert spec["servers"][0]["url"].endswith(f"{SERVICE}/api")


def test_hub_home_and_jupyterlab_link_to_the_profile(members):
    luca = members["luca"]
    home = luca.http.get(f"{luca.hub.url}/hub/home")
    assert 'href="/services/community/members/luca"' in home.text
    luca.start_server()
    page = luca.server("GET", "/lab").text
    config = json.loads(page.split('<script id="jupyter-config-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert "jupyter_app_launcher" in {e["name"] for e in config["federated_extensions"]}
    items = luca.server("POST", "/jupyterlab-app-launcher", json={"method": "init_launcher"}).json()
    profile = next(i for i in items if i["title"] == "My community profile")
    assert profile["type"] == "url" and profile["source"] == "/services/community/members/luca"
    # the link works with the browser's hub session: the page answers after the OAuth round trip
    r = luca.http.get(f"{luca.hub.url}{profile['source']}")
    assert r.status_code == 200 and "@luca" in r.text


def test_a_member_edits_and_reads_back_their_profile(members, profiles, hub_courses):
    mine = view(members["luca"], "luca")
    for field in ("display_name", "headline", "skills", "interests", "city", "visibility", "leaderboard"):
        assert mine[field] == profiles["luca"][field], field
    assert mine["private_fields"] == ["city"]
    assert set(mine["courses"]) == {DM}
    assert set(mine["courses"][DM]["assignments"]) == {a.name for a in load_course(hub_courses / DM).assignments}
    bad = api(members["luca"], "PATCH", "/members/luca", json={"links": [{"url": "javascript:alert(1)"}]})
    assert bad.status_code == 400 and "links" in bad.json()["message"]
    assert api(members["luca"], "PATCH", "/members/luca", json={"admin": True}).status_code == 400


# authorisation

# (viewer, target): None when the viewer may see nothing (404), else what they see:
# the profile's fields, its private field (city), the courses listed, and whether scores show.
MATRIX = {
    ("luca", "luca"): dict(profile=True, city=True, courses={DM}, scores=True),
    ("elena", "luca"): dict(profile=True, city=False, courses={DM}, scores=False),
    ("chiara", "luca"): dict(profile=True, city=False, courses={DM}, scores=False),
    ("marco", "luca"): dict(profile=True, city=False, courses={DM}, scores=True),
    ("sara", "luca"): dict(profile=True, city=False, courses={DM}, scores=False),
    ("giulia", "luca"): dict(profile=True, city=True, courses={DM}, scores=True),
    ("elena", "elena"): dict(profile=True, city=True, courses={NET}, scores=True),
    ("luca", "elena"): None,  # peers only, and they share no course
    ("chiara", "elena"): dict(profile=True, city=True, courses={NET}, scores=False),
    ("marco", "elena"): None,  # instructors see their own courses' learners only
    ("sara", "elena"): dict(profile=True, city=True, courses={NET}, scores=True),
    ("giulia", "elena"): dict(profile=True, city=True, courses={NET}, scores=True),
    ("chiara", "chiara"): dict(profile=True, city=True, courses={DM, NET}, scores=True),
    ("luca", "chiara"): None,  # private
    ("elena", "chiara"): None,
    ("marco", "chiara"): dict(profile=False, city=False, courses={DM}, scores=True),
    ("sara", "chiara"): dict(profile=False, city=False, courses={NET}, scores=True),
    ("giulia", "chiara"): dict(profile=True, city=True, courses={DM, NET}, scores=True),
}


@pytest.mark.parametrize("viewer,target", list(MATRIX), ids=[f"{v}-sees-{t}" for v, t in MATRIX])
def test_authorisation_matrix(members, profiles, graded_elena, chiara_badge, viewer, target):
    expected = MATRIX[viewer, target]
    r = api(members[viewer], "GET", f"/members/{target}")
    if expected is None:
        assert r.status_code == 404, r.text
        assert profiles[target]["headline"] not in r.text
        return
    assert r.status_code == 200, r.text
    seen = r.json()
    assert set(seen["courses"]) == expected["courses"]
    assert ("display_name" in seen) == expected["profile"]
    assert ("headline" in seen) == expected["profile"]
    assert ("city" in seen) == expected["city"]
    assert (profiles[target]["city"] in r.text) == expected["city"], "a private field must not leak anywhere"
    assert ("private_fields" in seen) == (viewer in (target, "giulia")), "settings are the owner's (and admins')"
    graded = [a for c in seen["courses"].values() for a in c["assignments"].values() if a["status"] in ("autograded", "graded")]
    if NET in expected["courses"]:
        assert graded, "elena and chiara have graded work in networking"
    assert all((a["score"] is not None) == expected["scores"] for a in graded)
    badges = {b["course"] for b in seen["badges"]}
    assert badges == ({NET} & expected["courses"] if target == "chiara" else set())


@pytest.mark.parametrize("viewer", EVERYONE)
def test_members_edit_only_their_own_profile(members, profiles, viewer):
    for target in ("luca", "chiara"):
        r = api(members[viewer], "PATCH", f"/members/{target}", json={"headline": f"written by {viewer}"})
        assert r.status_code == (200 if viewer == target else 403), (viewer, target, r.text)
        if viewer == target:
            api(members[viewer], "PATCH", f"/members/{target}", json={"headline": profiles[target]["headline"]})
    assert view(members["giulia"], "luca")["headline"] == profiles["luca"]["headline"]


def test_directory_searches_what_the_viewer_may_see(members, profiles):
    def names(member, **filters):
        r = api(member, "GET", "/members", params=filters)
        assert r.status_code == 200, r.text
        return {m["username"] for m in r.json()["members"]}

    luca, elena, chiara, giulia = (members[n] for n in ("luca", "elena", "chiara", "giulia"))
    assert names(elena, skill="pandas") == {"luca"}
    assert names(luca, skill="networkx") == set(), "elena shows herself to course peers only"
    assert names(chiara, skill="networkx") == {"elena"}
    assert "chiara" not in names(luca) and "chiara" not in names(elena)
    assert "chiara" in names(giulia, skill="python"), "admins see everyone"
    assert names(elena, city="Torino") == set(), "a private field is not searchable by others"
    assert names(giulia, city="Torino") == {"luca"}
    assert names(elena, course=DM) >= {"luca"} and "chiara" not in names(elena, course=DM)
    assert names(elena, q="growth") == {"luca"}
    page = elena.http.get(f"{elena.hub.url}{SERVICE}/", params={"skill": "pandas"})
    assert page.status_code == 200 and "/members/luca" in page.text and "Milano" not in page.text


def test_html_in_user_text_is_neutralised(members, profiles):
    luca, elena = members["luca"], members["elena"]
    attack = {
        "display_name": '<img src=x onerror="alert(1)">',
        "bio": "**Ciao** <script>alert('bio')</script> [click](javascript:alert(2)) <a href=\"https://ok.example\" onclick=\"x()\">ok</a>",
        "skills": ["<svg onload=alert(3)>"],
    }
    assert api(luca, "PATCH", "/members/luca", json=attack).status_code == 200
    try:
        seen = view(elena, "luca")
        assert "<strong>Ciao</strong>" in seen["bio_html"]
        for bad in ("<script", "javascript:", "onclick", "onerror"):
            assert bad not in seen["bio_html"]
        page = elena.http.get(f"{elena.hub.url}{SERVICE}/members/luca")
        assert page.status_code == 200
        for bad in ("<script>alert", "<img src=x", "<svg onload", "javascript:alert", 'onclick="x()"'):
            assert bad not in page.text, bad
        assert "&lt;img src=x onerror=" in page.text and "&lt;svg onload=alert(3)&gt;" in page.text
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        directory = elena.http.get(f"{elena.hub.url}{SERVICE}/")
        assert "<img src=x" not in directory.text and "<svg onload" not in directory.text
    finally:
        api(luca, "PATCH", "/members/luca",
            json={"display_name": profiles["luca"]["display_name"], "bio": "", "skills": profiles["luca"]["skills"]})


def test_cookie_writes_need_the_xsrf_token(members, profiles):
    luca = members["luca"]
    page = luca.http.get(f"{luca.hub.url}{SERVICE}/members/luca/edit")  # signs in to the service through the hub
    assert page.status_code == 200
    url = f"{luca.hub.url}{SERVICE}/api/members/luca"
    assert luca.http.get(url).status_code == 200, "reading with the cookie needs no token"
    assert luca.http.patch(url, json={"headline": "forged"}).status_code == 403
    xsrf = luca.http.cookies.get("_xsrf", path=f"{SERVICE}/")
    assert xsrf
    assert luca.http.patch(url, json={"headline": "forged"}, headers={"X-XSRFToken": "not-the-token"}).status_code == 403
    r = luca.http.patch(url, json={"headline": "Growth marketer, Torino"}, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 200 and r.json()["headline"] == "Growth marketer, Torino"
    # the HTML form: the same rule
    form = f"{luca.hub.url}{SERVICE}/members/luca/edit"
    assert luca.http.post(form, data={"headline": "forged", "visibility": "community"}).status_code == 403
    token = page.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
    data = {"_xsrf": token, "display_name": profiles["luca"]["display_name"], "headline": profiles["luca"]["headline"],
            "skills": ", ".join(profiles["luca"]["skills"]), "interests": ", ".join(profiles["luca"]["interests"]),
            "city": "Torino", "private_fields": ["city"], "visibility": "community", "leaderboard": "on"}
    r = luca.http.post(form, data=data)
    assert r.status_code == 200 and r.url.endswith(f"{SERVICE}/members/luca")
    assert "forged" not in json.dumps(view(members["giulia"], "luca"))
    assert view(luca, "luca")["headline"] == profiles["luca"]["headline"]


# progress, linked automatically


def open_lesson(member, path: str) -> None:
    """Open a lesson as JupyterLab does: read it, then start its kernel session."""
    assert member.server("GET", f"/api/contents/{path}").status_code == 200
    r = member.server("POST", "/api/sessions", json={"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text


def test_progress_appears_after_a_learner_opens_a_lesson(members, profiles, hub_courses):
    luca = members["luca"]
    luca.start_server()
    lessons = load_course(hub_courses / DM).lessons
    first, second = f"{DM}/{lessons[0]}", f"{DM}/{lessons[1]}"
    # the file browser reads every notebook of a folder it lists: that opens none of them
    assert luca.server("GET", f"/api/contents/{DM}").status_code == 200
    open_lesson(luca, first)
    seen = eventually(luca, "luca", lambda v: v["courses"][DM]["lessons"][lessons[0]]["opened"], "the lesson to show as opened")
    assert not seen["courses"][DM]["lessons"][lessons[0]]["completed"]
    assert not seen["courses"][DM]["lessons"][lessons[-1]]["opened"], "listed, not opened"
    assert seen["courses"][DM]["last_activity"]

    # a second lesson in JupyterLab's way: a session with a kernel, cells run, the notebook saved
    session = luca.server("POST", "/api/sessions", json={"path": second, "type": "notebook", "name": "",
                                                          "kernel": {"name": "python3"}}).json()
    try:
        time.sleep(1.5)  # the extension subscribes to the new kernel's output
        for code in ("x = 6", "x * 7"):
            run_in_kernel(luca, session["kernel"]["id"], code)
        notebook = luca.server("GET", f"/api/contents/{second}").json()["content"]
        for i, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "code":
                cell["execution_count"] = i + 1
        r = luca.server("PUT", f"/api/contents/{second}", json={"type": "notebook", "format": "json", "content": notebook})
        assert r.status_code == 200, r.text
    finally:
        luca.server("DELETE", f"/api/sessions/{session['id']}")
    seen = eventually(luca, "luca", lambda v: v["courses"][DM]["lessons"][lessons[1]].get("completed"),
                      "the lesson to show as completed")
    lesson = seen["courses"][DM]["lessons"][lessons[1]]
    assert lesson["executions"] >= 2 and lesson["cells_run"] == lesson["cells_total"] > 0
    assert seen["courses"][DM]["completion"] > 0
    # other members' views follow, within what they may see
    assert view(members["elena"], "luca")["courses"][DM]["lessons"][lessons[1]] == {"opened": True, "completed": True}


def test_scores_appear_within_seconds_of_autograding(platform, members, graded_elena):
    name = graded_elena["name"]
    assert graded_elena["submitted"]["courses"][NET]["assignments"][name]["score"] is None
    mine = graded_elena["view"]["courses"][NET]["assignments"][name]
    assert mine["status"] == "autograded", "the written answers still wait for the instructor"
    assert graded_elena["seconds"] < 10
    with Gradebook(gradebook_url(platform.state_dir, NET, platform.env.get("LEVA_GRADEBOOK_URL")), course_id=NET) as gb:
        submission = gb.find_submission(name, "elena")
        assert mine["score"] == pytest.approx(submission.score) and submission.score > 0
        assert mine["max_score"] == pytest.approx(submission.max_score)
    # the instructor grades the written answers in the formgrader: the score is final
    sara = members["sara"]
    submitted = ok(formgrader(sara, "GET", f"/submitted_notebooks/{name}/{name}", course=NET))
    mine_id = next(s["id"] for s in submitted if s["student"] == "elena")
    for grade in ok(formgrader(sara, "GET", "/grades", params={"submission_id": mine_id}, course=NET)):
        if grade["needs_manual_grade"]:
            ok(formgrader(sara, "PUT", f"/grade/{grade['id']}", json={"manual_score": grade["max_score"]}, course=NET))
    final = eventually(members["elena"], "elena", lambda v: v["courses"][NET]["assignments"][name]["status"] == "graded",
                       "the manual grades to show")
    assert final["courses"][NET]["assignments"][name]["score"] == pytest.approx(mine["max_score"]), "full marks"


# instructors, admins, leaderboards, suggestions


def test_course_dashboards_for_instructors_and_admins(members, profiles, graded_elena, chiara_badge):
    marco, sara, luca, giulia = (members[n] for n in ("marco", "sara", "luca", "giulia"))
    assert api(marco, "GET", f"/courses/{NET}/learners").status_code == 403
    assert api(luca, "GET", f"/courses/{DM}/learners").status_code == 403
    assert api(sara, "GET", f"/courses/{DM}/learners").status_code == 403, "sara learns digital-marketing"
    dm = api(marco, "GET", f"/courses/{DM}/learners").json()
    assert {r["username"] for r in dm["learners"]} == {"luca", "chiara", "sara"}
    assert "sara" in dm["at_risk"], "no activity at all"
    assert next(r for r in dm["learners"] if r["username"] == "sara")["risk_reasons"] == ["no activity recorded"]
    net = api(sara, "GET", f"/courses/{NET}/learners").json()
    elena = next(r for r in net["learners"] if r["username"] == "elena")
    assert elena["assignments"][graded_elena["name"]]["score"] is not None
    chiara = next(r for r in net["learners"] if r["username"] == "chiara")
    assert chiara["display_name"] == "", "a private profile's name stays private, even to instructors"
    scores = api(sara, "GET", f"/courses/{NET}/scores").json()["assignments"]
    first = next(a for a in scores if a["name"] == graded_elena["name"])
    assert first["graded"] == 2 and sum(first["buckets"]) == 2
    assert api(giulia, "GET", f"/courses/{NET}/learners").status_code == 200
    assert api(giulia, "GET", f"/courses/{DM}/scores").status_code == 200
    page = sara.http.get(f"{sara.hub.url}{SERVICE}/courses/{NET}")
    assert page.status_code == 200 and '<svg class="histogram"' in page.text and 'id="learners"' in page.text
    page = members["elena"].http.get(f"{sara.hub.url}{SERVICE}/courses/{NET}")
    assert page.status_code == 200 and 'id="learners"' not in page.text, "learners see the leaderboard only"


def test_leaderboards_list_only_those_who_opted_in(members, profiles, graded_elena, chiara_badge):
    board = api(members["chiara"], "GET", f"/courses/{NET}/leaderboard").json()["leaderboard"]
    assert [r["username"] for r in board] == ["elena"], "chiara is private, elena opted in"
    assert board[0]["rank"] == 1 and board[0]["score"] > 0
    dm = api(members["marco"], "GET", f"/courses/{DM}/leaderboard").json()["leaderboard"]
    assert [r["username"] for r in dm] == ["luca"]
    assert api(members["elena"], "GET", f"/courses/{DM}/leaderboard").status_code == 403
    assert api(members["giulia"], "GET", f"/courses/{DM}/leaderboard").status_code == 200


def test_suggestions_name_members_who_passed(members, profiles, chiara_badge, hub_courses):
    elena, chiara = members["elena"], members["chiara"]
    lesson = load_course(hub_courses / NET).lessons[0]
    elena.start_server()
    open_lesson(elena, f"{NET}/{lesson}")
    eventually(elena, "elena", lambda v: v["courses"][NET]["lessons"][lesson]["opened"], "elena's lesson to show")

    def helpers():
        found = api(elena, "GET", "/members/elena/suggestions").json()["suggestions"]
        return {m["username"] for s in found if s["name"] == lesson for m in s["members"]}

    assert helpers() == set(), "chiara passed it, but her profile is private"
    assert api(chiara, "PATCH", "/members/chiara", json={"visibility": "peers"}).status_code == 200
    try:
        assert helpers() == {"chiara"}
        page = elena.http.get(f"{elena.hub.url}{SERVICE}/members/elena")
        assert 'id="suggestions"' in page.text and "/members/chiara" in page.text
    finally:
        assert api(chiara, "PATCH", "/members/chiara", json={"visibility": "private"}).status_code == 200
    assert helpers() == set()
    assert api(chiara, "GET", "/members/elena/suggestions").status_code == 403


# badges


def _b58decode(text: str) -> bytes:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = 0
    for char in text:
        number = number * 58 + alphabet.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body  # each leading "1" is a zero byte


def verify_independently(credential: dict) -> None:
    """eddsa-jcs-2022 checked from the specification alone (W3C VC Data Integrity EdDSA), with `cryptography`."""
    proof = dict(credential["proof"])
    value = proof.pop("proofValue")
    document = {k: v for k, v in credential.items() if k != "proof"}
    proof["@context"] = document["@context"]
    jcs = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()  # noqa: E731
    data = hashlib.sha256(jcs(proof)).digest() + hashlib.sha256(jcs(document)).digest()
    did = proof["verificationMethod"].split("#")[0]
    assert did == credential["issuer"]["id"]
    key = _b58decode(did.removeprefix("did:key:z"))
    assert key[:2] == b"\xed\x01"
    Ed25519PublicKey.from_public_bytes(key[2:]).verify(_b58decode(value[1:]), data)


def test_badge_is_issued_verifies_and_tampering_fails(members, chiara_badge, hub_courses):
    badge = chiara_badge
    assert badge["course"] == NET and badge["name"] == load_course(hub_courses / NET).badge.name
    download = requests.get(badge["credential"], params={"download": "1"})  # no sign-in: anyone holding the link
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    credential = download.json()
    assert {"VerifiableCredential", "OpenBadgeCredential"} <= set(credential["type"])
    assert credential["credentialSubject"]["id"].endswith(f"{SERVICE}/members/chiara")
    assert credential["credentialSubject"]["achievement"]["criteria"]["narrative"]
    graded = [e for e in credential["evidence"] if e["genre"] == "Graded assignment"]
    assert len(graded) == 3 and all("nbgrader submission" in e["description"] for e in graded)
    assert all(e["id"].startswith(badge["page"]) for e in credential["evidence"])
    assert credential["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    verify_independently(credential)

    assert requests.get(badge["verify"]).json()["verified"] is True
    verify = f"{members['luca'].hub.url}{SERVICE}/api/badges/verify"
    assert requests.post(verify, json=credential).json()["verified"] is True
    issuer = requests.get(f"{members['luca'].hub.url}{SERVICE}/api/issuer").json()
    assert issuer["id"] == credential["issuer"]["id"]

    for change in (
        lambda c: c["evidence"][0].update(narrative="Scored 15 of 15 points."),
        lambda c: c["credentialSubject"].update(id=c["credentialSubject"]["id"].replace("chiara", "luca")),
        lambda c: c.update(validFrom="2020-01-01T00:00:00Z"),
    ):
        tampered = copy.deepcopy(credential)
        change(tampered)
        result = requests.post(verify, json=tampered).json()
        assert result["verified"] is False and "changed after signing" in result["errors"][0]
        with pytest.raises(InvalidSignature):
            verify_independently(tampered)
    forged = copy.deepcopy(credential)
    forged["proof"]["proofValue"] = "z" + "1" * 20
    assert requests.post(verify, json=forged).json()["verified"] is False

    page = requests.get(badge["page"])
    assert page.status_code == 200 and "Verified" in page.text and 'id="a1-network-graph-centrality"' in page.text
    # badges show on the profile for those who may see its course
    assert [b["id"] for b in view(members["sara"], "chiara")["badges"]] == [badge["id"]]
    assert view(members["marco"], "chiara")["badges"] == []


# durability


def _queued(platform, username: str) -> int:
    queue = platform.state_dir / "homes" / username / ".leva" / "progress-queue.sqlite"
    with sqlite3.connect(queue) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def test_service_restart_loses_nothing(platform, members, profiles, chiara_badge, hub_courses):
    luca, giulia = members["luca"], members["giulia"]
    luca.start_server()
    before = {name: view(giulia, name) for name in ("luca", "elena", "chiara")}
    service = giulia.hub_api("GET", "/services/community").json()
    os.kill(service["pid"], signal.SIGTERM)
    wait_for(lambda: api(luca, "GET", "/members/luca").status_code != 200, 20, "the service to stop")

    # while it is down, luca opens a lesson: his server keeps the event and retries
    lesson = load_course(hub_courses / DM).lessons[2]
    open_lesson(luca, f"{DM}/{lesson}")
    wait_for(lambda: _queued(platform, "luca") >= 1, 20, "the event to wait in luca's queue")

    # the hub starts the service again (it checks its services every 30 s)
    wait_for(lambda: api(luca, "GET", "/members/luca").status_code == 200, 90, "the hub to restart the service", interval=1)
    assert giulia.hub_api("GET", "/services/community").json()["pid"] != service["pid"]
    after = eventually(luca, "luca", lambda v: v["courses"][DM]["lessons"][lesson]["opened"],
                       "the queued event to arrive", timeout=40)
    wait_for(lambda: _queued(platform, "luca") == 0, 20, "luca's queue to empty")
    for name, old in before.items():
        new = view(giulia, name)
        if name == "luca":
            new["courses"][DM]["lessons"][lesson] = old["courses"][DM]["lessons"][lesson]
            new["courses"][DM]["last_activity"] = old["courses"][DM]["last_activity"]
            new["courses"][DM]["completion"] = old["courses"][DM]["completion"]
        assert new == old, f"{name}'s profile, progress or badges changed across the restart"
    assert after["headline"] == profiles["luca"]["headline"]


def test_data_lives_in_the_configured_database(platform, profiles):
    url = platform.env.get("LEVA_COMMUNITY_DB_URL")
    if url:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db:
            rows = db.execute("SELECT headline FROM profiles WHERE username = 'luca'").fetchall()
        assert not (platform.state_dir / "community" / "community.sqlite").exists()
    else:
        with sqlite3.connect(platform.state_dir / "community" / "community.sqlite") as db:
            rows = db.execute("SELECT headline FROM profiles WHERE username = 'luca'").fetchall()
    assert rows == [(profiles["luca"]["headline"],)]
