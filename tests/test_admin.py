"""Administering the community from the `leva` command, against a real hub."""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat

import pytest
import requests
from nbgrader.api import Gradebook

from hub.courses import load_course
from hub.grading import gradebook_url
from hub.roster import COLUMNS
from tests.hubtools import DEMO_PASSWORD, PROJECT, Member, RunningHub, action, formgrader, ok, wait_for

COURSES = ("digital-marketing", "networking")


@pytest.fixture(scope="module")
def admin_hub(tmp_path_factory, hub_courses):
    """A hub of its own: these tests add a thousand members and deactivate some."""
    hub = RunningHub(
        tmp_path_factory.mktemp("admin") / "var", hub_courses, PROJECT / "hub" / "demo" / "roster.csv",
        extra_args=["--LevaAuthenticator.auth_refresh_age=1"],
    )
    hub.start()
    yield hub
    hub.stop()


def leva(hub: RunningHub, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "leva"), *args], env=hub.env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def big_roster(path: Path, size: int) -> list[dict]:
    rng = random.Random(7)
    first = ["Giulia", "Marco", "Sara", "Luca", "Elena", "Chiara", "Paolo", "Anna", "Davide", "Marta"]
    last = ["Rossi", "Bianchi", "Esposito", "Ferrari", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno"]
    rows = []
    for i in range(size):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        role = "admin" if i % 250 == 0 else "instructor" if i % 50 == 0 else "learner"
        courses = rng.sample(COURSES, rng.randint(1, 2))
        if role == "instructor" and i % 100 == 0:
            courses = [courses[0], f"{COURSES[1] if courses[0] == COURSES[0] else COURSES[0]}:learner"]
        rows.append({"username": f"member{i:04d}", "full_name": name, "email": f"member{i:04d}@leva.example",
                     "role": role, "courses": ";".join(courses)})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_a_thousand_member_roster_imports_once(admin_hub, tmp_path):
    roster = tmp_path / "roster.csv"
    rows = big_roster(roster, 1000)

    dry = leva(admin_hub, "roster", "import", str(roster), "--dry-run")
    assert "would member0001: create" in dry.stdout
    assert admin_hub_user(admin_hub, "member0001") is None, "a dry run changes nothing"

    started = time.monotonic()
    first = leva(admin_hub, "roster", "import", str(roster))
    assert "1000 members read, 0 lines skipped" in first.stderr
    assert time.monotonic() - started < 300
    again = leva(admin_hub, "roster", "import", str(roster))
    assert again.stdout == "" and "changed: 0" in again.stderr, again.stdout[:500]

    # the members are real: groups, admin rights, gradebook students, a first password
    admin = Member(admin_hub, "giulia")
    admin.sign_in(DEMO_PASSWORD)
    user = admin.hub_api("GET", "/users/member0050").json()
    assert "formgrade-" + rows[50]["courses"].split(";")[0].split(":")[0] in user["groups"]
    assert admin.hub_api("GET", "/users/member0000").json()["admin"] is True
    learner = next(r for r in rows if r["role"] == "learner" and r["courses"] == COURSES[1])
    with Gradebook(gradebook_url(admin_hub.state_dir, COURSES[1], None), course_id=COURSES[1]) as gb:
        assert learner["username"] in {s.id for s in gb.students}


def admin_hub_user(hub, name):
    admin = Member(hub, "giulia")
    admin.sign_in(DEMO_PASSWORD)
    r = admin.hub_api("GET", f"/users/{name}")
    return r.json() if r.status_code == 200 else None


def test_export_then_import_changes_nothing(admin_hub, tmp_path):
    exported = leva(admin_hub, "roster", "export").stdout
    assert exported.splitlines()[0] == ",".join(COLUMNS)
    assert "sara,Sara Conti,sara.conti@leva.example,instructor,networking;digital-marketing:learner" in exported
    (tmp_path / "export.csv").write_text(exported)
    result = leva(admin_hub, "roster", "import", str(tmp_path / "export.csv"))
    assert result.stdout == "" and "changed: 0" in result.stderr


def test_bad_lines_are_reported_and_the_good_ones_applied(admin_hub, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        ",".join(COLUMNS) + "\n"
        "nadia,Nadia Galli,nadia@leva.example,learner,networking\n"
        "broken line without enough fields\n"
        "omar,Omar Sala,omar@leva.example,learner,cooking\n"
        "pia,Pia Neri,pia@leva.example,instructor,digital-marketing\n"
    )
    result = leva(admin_hub, "roster", "import", str(roster), "--passwords", str(tmp_path / "passwords.csv"), check=False)
    assert result.returncode == 1
    assert "line 3: expected 5 fields" in result.stderr
    assert "line 4: course 'cooking' is not in the course catalogue" in result.stderr
    assert admin_hub_user(admin_hub, "nadia")["groups"] == ["nbgrader-networking"]
    assert admin_hub_user(admin_hub, "pia")["groups"] == ["formgrade-digital-marketing"]
    assert admin_hub_user(admin_hub, "omar") is None
    # the new members' first passwords, for the admin to hand out
    passwords = dict(csv.reader((tmp_path / "passwords.csv").open()))
    assert set(passwords) == {"username", "nadia", "pia"}
    assert (tmp_path / "passwords.csv").stat().st_mode & 0o077 == 0
    admin_hub.login("nadia", passwords["nadia"])


def test_enrol_unenrol_and_change_role(admin_hub):
    leva(admin_hub, "member", "enrol", "elena", "digital-marketing")
    assert set(admin_hub_user(admin_hub, "elena")["groups"]) == {"nbgrader-networking", "nbgrader-digital-marketing"}
    with Gradebook(gradebook_url(admin_hub.state_dir, "digital-marketing", None), course_id="digital-marketing") as gb:
        assert "elena" in {s.id for s in gb.students}
    elena = admin_hub.login("elena")
    elena.start_server()
    names = {i["name"] for i in elena.server("GET", "/api/contents/").json()["content"]}
    assert "digital-marketing" in names, "the new course's lessons arrive at the next server start"

    leva(admin_hub, "member", "unenrol", "elena", "digital-marketing")
    assert admin_hub_user(admin_hub, "elena")["groups"] == ["nbgrader-networking"]
    leva(admin_hub, "member", "role", "elena", "instructor")
    assert admin_hub_user(admin_hub, "elena")["groups"] == ["formgrade-networking"]
    leva(admin_hub, "member", "role", "elena", "learner")
    assert admin_hub_user(admin_hub, "elena")["groups"] == ["nbgrader-networking"]
    missing = leva(admin_hub, "member", "enrol", "elena", "cooking", check=False)
    assert missing.returncode == 1 and "no course 'cooking'" in missing.stderr


def test_deactivate_and_reactivate_a_leaver(admin_hub):
    luca = admin_hub.login("luca")
    luca.start_server()
    token = luca.token
    home = admin_hub.state_dir / "homes" / "luca"
    before = sorted(p.relative_to(home) for p in home.rglob("*.ipynb"))

    result = leva(admin_hub, "member", "deactivate", "luca")
    assert "luca: deactivated" in result.stdout and "luca: profile hidden" in result.stdout
    wait_for(lambda: not admin_hub_user(admin_hub, "luca")["servers"], 60, "luca's server to stop")
    api = requests.get(f"{admin_hub.url}/hub/api/user", headers={"Authorization": f"token {token}"})
    assert api.status_code == 403, "his tokens are revoked"
    time.sleep(1.5)  # the hub re-checks open sessions after auth_refresh_age
    assert "/hub/login" in luca.http.get(f"{admin_hub.url}/hub/home").url, "his open session has ended"
    assert Member(admin_hub, "luca").sign_in(DEMO_PASSWORD, follow=False).status_code == 403
    assert sorted(p.relative_to(home) for p in home.rglob("*.ipynb")) == before, "his work is kept"

    assert "luca: profile shown" in leva(admin_hub, "member", "reactivate", "luca").stdout
    admin_hub.login("luca")


def test_backup_while_running_then_restore(admin_hub, tmp_path):
    note = admin_hub.state_dir / "homes" / "luca" / "my-notes.md"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("Appunti: CAC = spesa / nuovi clienti\n")
    users_before = admin_hub_user(admin_hub, "member0999")
    archive = tmp_path / "backup.tar.gz"

    # taken while members keep signing in (the hub writes its database meanwhile)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(lambda: [admin_hub.login("chiara") for _ in range(5)])
        result = leva(admin_hub, "backup", str(archive))
        busy.result()
    assert "SQLite" in result.stdout and archive.stat().st_mode & 0o077 == 0
    refused = leva(admin_hub, "restore", str(archive), check=False)
    assert refused.returncode == 1 and "stop it before restoring" in refused.stderr

    admin_hub.stop()
    shutil.rmtree(admin_hub.state_dir / "homes")
    (admin_hub.state_dir / "members.sqlite").unlink()
    leva(admin_hub, "restore", str(archive))
    admin_hub.start()

    assert note.read_text() == "Appunti: CAC = spesa / nuovi clienti\n"
    assert admin_hub_user(admin_hub, "member0999") == users_before
    admin_hub.login("chiara")


def test_personal_data_export_and_erase(admin_hub, hub_courses, tmp_path):
    course = "digital-marketing"
    roster = tmp_path / "roster.csv"
    roster.write_text(",".join(COLUMNS) + "\nzaira,Zaira Quintavalle,zaira.quintavalle@leva.example,learner,digital-marketing\n")
    leva(admin_hub, "roster", "import", str(roster), "--passwords", str(tmp_path / "passwords.csv"))
    password = dict(csv.reader((tmp_path / "passwords.csv").open()))["zaira"]

    # she learns: a note in her home, an assignment submitted, graded, feedback fetched
    zaira = admin_hub.login("zaira", password)
    zaira.start_server()
    name = load_course(hub_courses / course).assignments[0].name
    ok(action(zaira, "fetch", course, name))
    solution = nbformat.read(hub_courses / course / "source" / name / f"{name}.ipynb", as_version=4)
    assert zaira.server("PUT", f"/api/contents/{course}/{name}/{name}.ipynb",
                        json={"type": "notebook", "format": "json", "content": solution}).ok
    ok(action(zaira, "submit", course, name))
    marco = admin_hub.login("marco")
    ok(formgrader(marco, "POST", f"/assignment/{name}/collect"))
    ok(formgrader(marco, "POST", f"/submission/{name}/zaira/autograde"))
    ok(formgrader(marco, "POST", f"/assignment/{name}/generate_feedback"))
    ok(formgrader(marco, "POST", f"/assignment/{name}/release_feedback"))
    ok(action(zaira, "fetch_feedback", course, name))
    with Gradebook(gradebook_url(admin_hub.state_dir, course, None), course_id=course) as gb:
        score = gb.find_submission(name, "zaira").score
        average = gb.average_assignment_score(name)
    giulia = admin_hub.login("giulia")
    wait_for(lambda: community_api(giulia, "GET", "/members/zaira").json()["courses"][course]["assignments"][name]["score"]
             is not None, 30, "the community service to read her grade")

    # export: everything held on her
    archive = tmp_path / "zaira.zip"
    leva(admin_hub, "member", "export", "zaira", "-o", str(archive))
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        member = json.loads(z.read("member.json"))
        grades = json.loads(z.read("gradebooks.json"))
        community = json.loads(z.read("community.json"))
    assert member["email"] == "zaira.quintavalle@leva.example" and "nbgrader-digital-marketing" in member["hub"]["groups"]
    assert grades[course]["submissions"][0]["score"] == score
    assert any(n.startswith(f"files/home/{course}/{name}/") for n in names)
    assert any(n.startswith(f"files/courses/{course}/submitted/") for n in names)
    assert any(n.startswith(f"files/courses/{course}/feedback/") for n in names)
    assert any(n.startswith(f"files/exchange/{course}/feedback/") for n in names)
    assert community["profile"]["display_name"] == "Zaira Quintavalle", "the roster import gave her a profile"
    assert [(r["assignment"], r["score"]) for r in community["assignment_results"]] == [(name, score)]

    # erase: nothing of her is left anywhere in the state; the course's statistics stay
    erased = leva(admin_hub, "member", "erase", "zaira", "--yes")
    assert "hub: server stopped, user, groups and tokens deleted" in erased.stdout
    assert "community: deleted profile (1)" in erased.stdout
    found = [str(p) for p in admin_hub.state_dir.rglob("*")
             if p.is_file() and any(w in p.read_bytes() for w in (b"zaira", b"Quintavalle"))]
    found += [str(p) for p in admin_hub.state_dir.rglob("*zaira*")]
    assert not found, f"personal data left in {found}"
    community_db = admin_hub.state_dir / "community" / "community.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{community_db}?mode=ro", uri=True)) as db:
        for table in ("profiles", "profile_tags", "lesson_progress", "progress_events", "assignment_results", "badges"):
            assert db.execute(f"SELECT count(*) FROM {table} WHERE username = 'zaira'").fetchone() == (0,), table
    with Gradebook(gradebook_url(admin_hub.state_dir, course, None), course_id=course) as gb:
        assert gb.average_assignment_score(name) == average
        assert "zaira" not in {s.id for s in gb.students}
    assert admin_hub_user(admin_hub, "zaira") is None
    assert Member(admin_hub, "zaira").sign_in(password, follow=False).status_code == 403


# the administration page of the community service

SERVICE = "/services/community"


def community_api(member: Member, method: str, path: str, **kwargs) -> requests.Response:
    return member.http.request(
        method, f"{member.hub.url}{SERVICE}/api{path}", headers={"Authorization": f"token {member.token}"}, **kwargs
    )


def community_page(member: Member, path: str, **kwargs) -> requests.Response:
    """A page of the service in the member's browser (signed in to it through the hub)."""
    return member.http.get(f"{member.hub.url}{SERVICE}{path}", **kwargs)


def xsrf_of(page: requests.Response) -> str:
    return page.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]


def directory_names(member: Member) -> set[str]:
    return {m["username"] for m in community_api(member, "GET", "/members").json()["members"]}


def test_admin_page_lists_members_and_acts_as_the_cli_does(admin_hub):
    giulia, luca, marco, chiara, elena = (admin_hub.login(n) for n in ("giulia", "luca", "marco", "chiara", "elena"))
    assert community_api(elena, "PATCH", "/members/elena", json={"visibility": "community"}).status_code == 200
    assert "elena" in directory_names(chiara)

    # the list: name, role, enrolments, last activity from the hub; paged for thousands of members
    def luca_row():
        page = community_page(giulia, "/admin/members", params={"q": "bianchi"})
        assert page.status_code == 200, page.text[:300]
        row = page.text.split('id="member-luca"', 1)[1].split("</tr>", 1)[0]
        return row if " UTC" in row else None

    row = wait_for(luca_row, 30, "luca's last activity in the list")
    assert "Luca Bianchi" in row and "digital-marketing: learner" in row and ">learner<" in row
    everyone = community_page(giulia, "/admin/members")
    assert 'id="admin-members"' in everyone.text, "the service's pages link admins to it"
    if admin_hub_user(admin_hub, "member0999"):  # after the thousand-member import: the server sends a page
        first = re.findall(r'id="member-([^"]+)"', everyone.text)
        second = re.findall(r'id="member-([^"]+)"', community_page(giulia, "/admin/members", params={"page": "2"}).text)
        assert len(first) == len(second) == 50 and first[-1] < second[0] and 'id="next"' in everyone.text
        admins = community_page(giulia, "/admin/members", params={"role": "admin"}).text
        assert 'id="member-member0250"' in admins and 'id="member-giulia"' in admins and 'id="member-luca"' not in admins

    # admins only
    for member in (luca, marco):
        assert community_page(member, "/admin/members").status_code == 403
        assert community_page(member, "/admin/members/elena").status_code == 403
        assert 'id="admin-members"' not in community_page(member, "/").text
    own = xsrf_of(community_page(luca, "/members/luca/edit"))
    forged = luca.http.post(f"{admin_hub.url}{SERVICE}/admin/members/elena", data={"_xsrf": own, "action": "deactivate"})
    assert forged.status_code == 403

    url = f"{admin_hub.url}{SERVICE}/admin/members/elena"
    token = xsrf_of(community_page(giulia, "/admin/members/elena"))

    def act(**data) -> requests.Response:
        r = giulia.http.post(url, data={"_xsrf": token, **data})
        assert r.status_code == 200, r.text[:500]
        return r

    def groups() -> set[str]:
        return set(admin_hub_user(admin_hub, "elena")["groups"])

    # enrol, change role, unenrol: the CLI's changes, reported on the page
    assert "elena: join nbgrader-digital-marketing" in act(action="enrol", course="digital-marketing", **{"as": "learner"}).text
    assert groups() == {"nbgrader-networking", "nbgrader-digital-marketing"}
    assert "elena: join formgrade-networking" in act(action="role", role="instructor").text
    assert groups() == {"formgrade-networking", "formgrade-digital-marketing"}
    act(action="role", role="learner")
    assert "elena: leave nbgrader-digital-marketing" in act(action="unenrol", course="digital-marketing").text
    assert groups() == {"nbgrader-networking"}
    bad = giulia.http.post(url, data={"_xsrf": token, "action": "enrol", "course": "cooking"})
    assert bad.status_code == 400 and "no course &#39;cooking&#39;" in bad.text
    mine = giulia.http.post(f"{admin_hub.url}{SERVICE}/admin/members/giulia", data={"_xsrf": token, "action": "deactivate"})
    assert mine.status_code == 400, "an admin does not lock themselves out from the page"

    # deactivate: sign-in blocked, the profile hidden from all but admins
    page = act(action="deactivate")
    assert "elena: deactivated" in page.text and "elena: profile hidden" in page.text
    assert Member(admin_hub, "elena").sign_in(DEMO_PASSWORD, follow=False).status_code == 403
    assert community_api(chiara, "GET", "/members/elena").status_code == 404
    assert "elena" not in directory_names(chiara)
    assert "/members/elena" not in community_page(chiara, "/").text
    assert community_page(chiara, "/members/elena").status_code == 404
    assert community_api(giulia, "GET", "/members/elena").json()["hidden"] is True
    assert "elena" in directory_names(giulia)
    assert 'id="member-elena"' in community_page(giulia, "/admin/members", params={"status": "deactivated"}).text

    # a write without the XSRF token is refused
    assert giulia.http.post(url, data={"action": "reactivate"}).status_code == 403
    assert giulia.http.post(url, data={"action": "reactivate", "_xsrf": "forged"}).status_code == 403
    assert community_api(giulia, "GET", "/members/elena").json()["hidden"] is True

    # reactivate, and a new password shown once
    page = act(action="reactivate")
    assert "elena: reactivated" in page.text and "elena: profile shown" in page.text
    assert "elena" in directory_names(chiara)
    assert community_api(chiara, "GET", "/members/elena").status_code == 200
    password = act(action="password").text.split('id="password"', 1)[1].split("<code>", 1)[1].split("</code>", 1)[0]
    admin_hub.login("elena", password)
