"""Administering the community from the `leva` command, against a real hub."""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from nbgrader.api import Gradebook

from hub.grading import gradebook_url
from hub.roster import COLUMNS
from tests.hubtools import DEMO_PASSWORD, PROJECT, Member, RunningHub, wait_for

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
    assert "luca: deactivated" in result.stdout
    wait_for(lambda: not admin_hub_user(admin_hub, "luca")["servers"], 60, "luca's server to stop")
    api = requests.get(f"{admin_hub.url}/hub/api/user", headers={"Authorization": f"token {token}"})
    assert api.status_code == 403, "his tokens are revoked"
    time.sleep(1.5)  # the hub re-checks open sessions after auth_refresh_age
    assert "/hub/login" in luca.http.get(f"{admin_hub.url}/hub/home").url, "his open session has ended"
    assert Member(admin_hub, "luca").sign_in(DEMO_PASSWORD, follow=False).status_code == 403
    assert sorted(p.relative_to(home) for p in home.rglob("*.ipynb")) == before, "his work is kept"

    leva(admin_hub, "member", "reactivate", "luca")
    admin_hub.login("luca")
