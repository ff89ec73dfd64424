"""Members isolated from each other and from the answers (LEVA_ISOLATION=users), on a real hub.

The hub runs as root and creates a system account per member, so these tests
need root (CI runs as root; elsewhere they are skipped). The members have names
unique to the run, and their accounts are deleted at the end.

Everything a learner tries runs in a real kernel of their own server, through
the hub: ``hub.attempts`` is what they try, ``hub.isolation_report`` picks the
targets as ``leva security matrix`` does.
"""

from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

from hub.attempts import ALLOWED, CONTAINED, DENIED, FAILURES, NA, WORKS, Result, matrix
from hub.courses import courses_dir, load_course, load_courses
from hub.grading import course_root, exchange_root
from hub.isolation import account_name, course_group, grading_account_name, network_namespaces, remove_account
from hub.isolation_report import _enrolments, targets_for
from hub.permissions import _blocked
from hub.settings import load_settings
from tests.hubtools import PROJECT, RunningHub, action, formgrader, ok

if os.geteuid() != 0:
    if os.environ.get("CI"):
        pytest.fail("CI runs as root so that the isolated mode can be tested", allow_module_level=True)
    pytest.skip("the isolated mode creates system accounts: run as root", allow_module_level=True)

COURSE, OTHER = "digital-marketing", "networking"
RUN = uuid.uuid4().hex[:5]
ANA, BEA, CARLO, DORA = (f"{name}{RUN}" for name in ("ana", "bea", "carlo", "dora"))
MEMBERS = (ANA, BEA, CARLO, DORA)
GiB = 1024**3
LIMITS = {"memory_limit": GiB, "process_limit": 128, "cpu_limit": 0.5}


@pytest.fixture(scope="module")
def traversable():
    """Members run this environment's Python: open the folders on its way that others may not pass (and close them again)."""
    changed = {}
    for path in (Path(os.path.realpath(sys.executable)).parent, Path(sys.executable).parent, PROJECT / "hub"):
        while folder := _blocked(path):
            changed.setdefault(folder, folder.stat().st_mode)
            os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) | stat.S_IXOTH)
    yield
    for folder, mode in changed.items():
        os.chmod(folder, stat.S_IMODE(mode))


@pytest.fixture(scope="module")
def isolated(traversable):
    base = Path(tempfile.mkdtemp(prefix="leva-isolation-"))
    os.chmod(base, 0o755)  # the state dir below must be reachable by members' accounts
    catalogue = base / "catalogue"
    shutil.copytree(courses_dir(), catalogue, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    roster = base / "roster.csv"
    roster.write_text(
        "username,full_name,email,role,courses\n"
        f"{ANA},Ana Test,ana@leva.example,learner,{COURSE}\n"
        f"{BEA},Bea Test,bea@leva.example,learner,{COURSE}\n"
        f"{CARLO},Carlo Test,carlo@leva.example,learner,{OTHER}\n"
        f"{DORA},Dora Test,dora@leva.example,instructor,{COURSE}\n"
    )
    groups_before = {g.gr_name for g in grp.getgrall()}
    hub = RunningHub(
        state_dir=base / "var", courses_dir=catalogue, roster=roster,
        extra_args=[f"--IsolatedSpawner.mem_limit={LIMITS['memory_limit']}",
                    f"--IsolatedSpawner.process_limit={LIMITS['process_limit']}",
                    f"--IsolatedSpawner.cpu_limit={LIMITS['cpu_limit']}"],
        env={"LEVA_ISOLATION": "users"},
    )
    hub.start(timeout=120)
    yield hub
    hub.stop()
    for name in MEMBERS:
        for account in (account_name(name), grading_account_name(name)):
            remove_account(account)
    for course in (COURSE, OTHER):
        if course_group(course) not in groups_before:
            subprocess.run(["groupdel", course_group(course)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def member(hub, name, start=True):
    m = hub.login(name)
    if start:
        m.start_server()
    return m


@pytest.fixture(scope="module")
def ana(isolated):
    return member(isolated, ANA)


@pytest.fixture(scope="module")
def bea(isolated, hub_first_assignment):
    """A classmate of ana's who has fetched and submitted the first assignment through her server."""
    m = member(isolated, BEA)
    ok(action(m, "fetch", COURSE, hub_first_assignment))
    ok(action(m, "submit", COURSE, hub_first_assignment))
    return m


@pytest.fixture(scope="module")
def carlo(isolated):
    return member(isolated, CARLO)


@pytest.fixture(scope="module")
def hub_first_assignment():
    return load_course(courses_dir() / COURSE).assignments[0].name


def settings_of(hub):
    # the hub's own catalogue: the copy it locked down (LEVA_COURSES_DIR is read from os.environ)
    return dataclasses.replace(load_settings(hub.env), courses_dir=Path(hub.env["LEVA_COURSES_DIR"]))


def test_state_and_catalogue_are_locked_down(isolated):
    state = isolated.state_dir
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    assert modes.pop("homes") == 0o711 and modes.pop("exchange") == 0o755
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
    for course in load_courses(Path(isolated.env["LEVA_COURSES_DIR"])).values():
        assert stat.S_IMODE(course.path.stat().st_mode) & 0o077 == 0, "the catalogue holds the solutions"
        part = exchange_root(state) / course.id
        assert part.stat().st_gid == grp.getgrnam(course_group(course.id)).gr_gid
        assert stat.S_IMODE(part.stat().st_mode) == 0o750
        assert stat.S_IMODE((part / "inbound").stat().st_mode) == 0o3733
        assert "hub.learner_kernels" in (course_root(state, course.id) / "nbgrader_config.py").read_text()


def test_each_member_runs_as_their_own_account(isolated, ana):
    out = json.loads(ana.execute(
        "import os, json, grp, pathlib; home = pathlib.Path.home()\n"
        "print(json.dumps({'uid': os.getuid(), 'groups': sorted(grp.getgrgid(g).gr_name for g in os.getgroups()),"
        " 'home': str(home), 'mode': oct(home.stat().st_mode & 0o777), 'owner': home.stat().st_uid,"
        " 'lessons': sorted(p.name for p in (home / 'digital-marketing').glob('*.ipynb'))}))"
    ))
    account = pwd.getpwnam(account_name(ANA))
    assert out["uid"] == account.pw_uid != 0
    assert out["home"] == str(isolated.state_dir / "homes" / ANA) == account.pw_dir
    assert out["mode"] == "0o700" and out["owner"] == account.pw_uid
    assert course_group(COURSE) in out["groups"] and course_group(OTHER) not in out["groups"]
    assert out["lessons"], "the lessons were delivered into the private home"
    assert account.pw_shell.endswith("nologin")
    assert "frame-ancestors 'none'" in ana.server("GET", "/lab").headers["Content-Security-Policy"]


def run_attempts(hub, learner, other) -> list[Result]:
    settings = settings_of(hub)
    courses = load_courses(settings.courses_dir)
    targets = targets_for(settings, courses, _enrolments(settings), learner.name, other, LIMITS)
    code = f"from hub.attempts import run_json\nprint(run_json({json.dumps(targets)!r}))"
    return [Result(**r) for r in json.loads(learner.execute(code, timeout=180))]


def test_a_learner_reaches_nothing_of_others_and_no_answers(isolated, ana, bea, carlo):
    results = run_attempts(isolated, ana, BEA)
    print("\n" + matrix(results, title=f"Isolation matrix, from {ANA}'s kernel:"))
    outcome = {r.attempt: r.outcome for r in results}
    assert not [r for r in results if r.outcome in FAILURES], matrix(results)
    expected_denied = [
        "read another learner's home", "read a course's sources in the catalogue",
        "read hidden tests (source notebook)", "read a gradebook", "read the community database",
        "read the hub's databases and secrets", "read another learner's submission",
        "read another course's exchange", "write into another course's exchange inbound",
        "plant a course in the exchange root", "read another learner's server token (/proc/<pid>/environ)",
        "signal another learner's processes",
    ]
    assert {a: outcome[a] for a in expected_denied} == {a: DENIED for a in expected_denied}
    assert outcome["control: write and read one's own home"] == WORKS
    assert outcome["fork bomb"] == CONTAINED and outcome["memory hog"] == CONTAINED
    assert outcome["CPU hog (2 busy processes)"] in (CONTAINED, NA)  # NA: a host without cgroups
    # contained, not broken: her server and her classmates' still work
    assert ana.execute("print(6 * 7)").strip() == "42"
    assert bea.execute("print(6 * 7)").strip() == "42"
    assert carlo.execute("print(6 * 7)").strip() == "42"


def test_leva_security_matrix(isolated, ana, bea):
    limits = ["--memory", str(LIMITS["memory_limit"]), "--processes", str(LIMITS["process_limit"]),
              "--cpus", str(LIMITS["cpu_limit"])]
    out = subprocess.run(
        [str(Path(sys.executable).parent / "leva"), "security", "matrix", "--learner", ANA, "--other", BEA, *limits],
        env=isolated.env, capture_output=True, text=True, timeout=300,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 allowed or broken" in out.stdout and ALLOWED not in out.stdout


def test_grading_runs_as_the_learner_and_forged_submissions_are_ignored(isolated, ana, bea, hub_first_assignment):
    name = hub_first_assignment
    state = isolated.state_dir
    catalogue = Path(isolated.env["LEVA_COURSES_DIR"])
    # bea submits the model solution, with a line that reports who runs it and what it can read
    solution = nbformat.read(catalogue / COURSE / "source" / name / f"{name}.ipynb", as_version=4)
    cell = next(c for c in solution.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    gradebook = course_root(state, COURSE) / "gradebook.db"
    cell.source += (
        "\nimport os as _os\nprint('LEVA-UID', _os.getuid())\n"
        f"try:\n    open({str(gradebook)!r}).close()\n    print('LEVA-GRADEBOOK read')\n"
        "except PermissionError:\n    print('LEVA-GRADEBOOK denied')\n"
        "print('LEVA-ENV', sorted(k for k in _os.environ if 'TOKEN' in k or k.startswith('JUPYTERHUB')))\n"
        "import socket as _socket\n"
        f"try:\n    _socket.create_connection(('127.0.0.1', {isolated.port}), timeout=3).close()\n"
        "    print('LEVA-NET open')\nexcept OSError:\n    print('LEVA-NET closed')\n"
    )
    path = f"{COURSE}/{name}/{name}.ipynb"
    r = bea.server("PUT", f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": solution})
    assert r.status_code == 200, r.text
    ok(action(bea, "submit", COURSE, name))
    # then bea makes a later submission herself, with a link to the gradebook in it: root must not follow it
    inbound = exchange_root(state) / COURSE / "inbound"
    genuine = bea.execute(
        "import os, shutil, datetime\n"
        "ts = (datetime.datetime.utcnow() + datetime.timedelta(seconds=30)).strftime('%Y-%m-%d %H:%M:%S.%f UTC')\n"
        f"d = os.path.join({str(inbound)!r}, {BEA + '+' + name + '+'!r} + ts + '+crafted')\n"
        f"os.mkdir(d)\nshutil.copy({path!r}, d)\n"
        "open(os.path.join(d, 'timestamp.txt'), 'w').write(ts)\n"
        f"os.symlink({str(gradebook)!r}, os.path.join(d, 'leak.txt'))\nprint(ts)"
    ).strip()

    # ana drops a later submission in bea's name into their course's inbound (she may write there)
    forged = f"{BEA}+{name}+2099-01-01 00:00:00.000000 UTC+forged"
    ana.execute(
        f"import os\nos.mkdir({str(inbound / forged)!r})\n"
        f"open(os.path.join({str(inbound / forged)!r}, {name + '.ipynb'!r}), 'w').write('{{}}')\n"
        f"open(os.path.join({str(inbound / forged)!r}, 'timestamp.txt'), 'w').write('2099-01-01 00:00:00.000000 UTC')"
    )
    assert (inbound / forged).stat().st_uid == pwd.getpwnam(account_name(ANA)).pw_uid

    dora = member(isolated, DORA, start=False)
    ok(formgrader(dora, "POST", f"/assignment/{name}/collect"))
    submitted = course_root(state, COURSE) / "submitted" / BEA / name
    assert (submitted / "timestamp.txt").read_text().strip() == genuine, "the forged submission was collected"
    assert not (submitted / "leak.txt").exists(), "collect followed a learner's link as root"
    assert "leak.txt is not a plain file" in isolated.log()
    assert f"Not collected: {inbound / forged} names {BEA}" in isolated.log()

    ok(formgrader(dora, "POST", f"/submission/{name}/{BEA}/autograde"))
    graded = nbformat.read(course_root(state, COURSE) / "autograded" / BEA / name / f"{name}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.get("outputs", []))
    grading_uid = pwd.getpwnam(grading_account_name(BEA)).pw_uid
    assert f"LEVA-UID {grading_uid}" in printed, printed[-2000:]
    assert grading_uid not in (0, pwd.getpwnam(account_name(BEA)).pw_uid)
    assert "LEVA-GRADEBOOK denied" in printed
    assert "LEVA-ENV []" in printed, "no hub token reaches a graded submission"
    if network_namespaces():
        assert "LEVA-NET closed" in printed, "a graded submission reached the hub over the network"
    submission = ok(formgrader(dora, "GET", f"/submission/{name}/{BEA}"))
    assert submission["autograded"] and submission["score"] > 0
