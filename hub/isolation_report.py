"""``leva security matrix``: try, as a learner, everything a learner must not do; print what happened.

Run as root on the machine of a deployment that has started at least once. It
picks a learner and another learner of one of their courses (or takes them from
``--learner`` and ``--other``), lets root choose the targets (the other's home,
submission and processes, the sources and hidden tests, the gradebooks, the
community database, the hub's secrets, another course's exchange), then runs
:mod:`hub.attempts` in a process that is that learner as their server is: their
account, their course groups, their limits and a control group like theirs.

In the demo (``LEVA_ISOLATION=none``) members' servers run as the hub's own
user, so the attempts run as that user too, and succeed: the matrix shows why
the demo is for one machine and trusted members.

Exits 1 when any attempt was allowed (or a control broke), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from .attempts import FAILURES, Result, matrix
from .courses import load_courses
from .grading import course_root, exchange_root
from .settings import load_settings

HIDDEN_MARK = "BEGIN HIDDEN TESTS"


def _enrolments(settings) -> dict[str, set[str]]:
    """Each learner's courses, from the hub's database (what admins changed since the roster)."""
    from jupyterhub import orm

    from .roster import learner_group

    prefix = learner_group("")
    db = orm.new_session_factory(settings.hub_db_url)()
    try:
        learners: dict[str, set[str]] = {}
        for group in db.query(orm.Group):
            if group.name.startswith(prefix):
                for user in group.users:
                    learners.setdefault(user.name, set()).add(group.name[len(prefix):])
        return learners
    finally:
        db.close()


def choose_learners(enrolments: dict[str, set[str]], learner=None, other=None) -> tuple[str, str]:
    """A learner with a course they do not take if possible, and another learner of one of their courses."""
    names = sorted(enrolments)
    if learner is None:
        everything = set().union(*enrolments.values()) if enrolments else set()
        candidates = [n for n in names if enrolments[n] != everything] or names
        learner = next((n for n in candidates if any(enrolments[n] & enrolments[o] for o in names if o != n)),
                       candidates[0] if candidates else None)
    if other is None:
        others = [n for n in names if n != learner]
        other = next((n for n in others if enrolments.get(learner, set()) & enrolments[n]), others[0] if others else None)
    if not learner or not other:
        raise LookupError("the matrix needs two learners in the hub (start the hub once with a roster)")
    return learner, other


def _first_file(folder: Path) -> list[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            return [str(folder), os.path.join(dirpath, name)]
    return [str(folder)]


def targets_for(settings, courses, enrolments, learner: str, other: str, limits: dict) -> dict:
    """What the learner will try to reach; chosen by root, which can see it all."""
    state = settings.state_dir
    mine = enrolments.get(learner, set())
    shared = sorted(mine & enrolments.get(other, set())) or sorted(mine)
    foreign = sorted(set(courses) - mine)
    exchange = exchange_root(state)

    sources, hidden = [], []
    for course in courses.values():
        notebooks = sorted(course.source_dir.rglob("*.ipynb")) if course.source_dir.is_dir() else []
        sources += [str(course.source_dir)] + [str(n) for n in notebooks[:1]]
        for notebook in notebooks:
            if HIDDEN_MARK in notebook.read_text(errors="replace"):
                rel = notebook.relative_to(course.source_dir)
                hidden += [str(notebook), str(course_root(state, course.id) / "source" / rel)]
                break

    submission = []
    for course_id in shared:
        inbound = exchange / course_id / "inbound"
        mine_there = sorted(inbound.glob(f"{other}+*")) if inbound.is_dir() else []
        submission += [str(inbound)] + [p for s in mine_there[:1] for p in _first_file(s)]

    try:
        other_uid = pwd.getpwnam(_account(settings, other)).pw_uid
    except KeyError:
        other_uid = None
    return {
        "learner": learner,
        "own_home": str(settings.homes_dir / learner),
        "other_home": _first_file(settings.homes_dir / other),
        "catalogue_sources": sources,
        "hidden_tests": hidden,
        "gradebooks": [str(course_root(state, c) / name) for c in courses
                       for name in ("gradebook.db", "nbgrader_config.py")],
        "community": [str(state / "community"), str(state / "community" / "community.sqlite")],
        "hub_secrets": [str(state / name) for name in ("jupyterhub.sqlite", "members.sqlite",
                        "jupyterhub_cookie_secret", "leva-admin-token", "demo-password")],
        "other_submission": submission,
        "other_course_exchange": [str(exchange / c / "outbound") for c in foreign],
        "other_inbound": str(exchange / foreign[0] / "inbound") if foreign else "",
        "exchange_root": str(exchange),
        "other_uid": other_uid,
        **limits,
    }


def _account(settings, username: str) -> str:
    from .isolation import account_name

    return account_name(username) if settings.isolation == "users" else pwd.getpwuid(os.geteuid()).pw_name


def default_limits() -> dict:
    """The members' limits of :class:`hub.isolation.IsolatedSpawner` (its defaults)."""
    from .isolation import IsolatedSpawner

    traits = IsolatedSpawner.class_traits()
    return {
        "memory_limit": int(traits["mem_limit"].default() or 2 * 1024**3),
        "process_limit": int(traits["process_limit"].default()),
        "cpu_limit": float(traits["cpu_limit"].default() or 1.0),
    }


def run_as_learner(settings, learner: str, courses_taken, targets: dict) -> list[Result]:
    """Run the attempts in a process that is the learner as their server is (isolated mode)."""
    from .cgroups import MemberCgroup
    from .isolation import Limits, account_name, course_group, demote, ensure_account, ensure_group

    account = account_name(learner)
    home = settings.homes_dir / learner
    ensure_account(account, home, f"Leva member {learner}")
    groups = [ensure_group(course_group(c)) for c in sorted(courses_taken)]
    cgroup = MemberCgroup(f"{account}-matrix", cpus=targets["cpu_limit"], memory=targets["memory_limit"],
                          pids=targets["process_limit"])
    cgroup.create()
    try:
        preexec = demote(account, Limits(memory=targets["memory_limit"], processes=targets["process_limit"]),
                         groups=groups, cgroup_procs=cgroup.procs_files(),
                         home=str(home) if home.is_dir() else None)
        return _run_probe(targets, preexec_fn=preexec, cwd="/")
    finally:
        cgroup.remove()


def _run_probe(targets: dict, **popen) -> list[Result]:
    result = subprocess.run(
        [sys.executable, "-m", "hub.attempts"], input=json.dumps(targets), capture_output=True, text=True,
        timeout=600, env={"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": targets["own_home"]}, **popen,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the attempts did not run: {result.stderr.strip()[-1500:]}")
    return [Result(**r) for r in json.loads(result.stdout)]


def report(learner=None, other=None, limits: dict | None = None, out=sys.stdout) -> int:
    settings = load_settings()
    if os.geteuid() != 0:
        print("leva: the matrix acts as a learner's account, which only root can: run it with sudo", file=sys.stderr)
        return 2
    if not Path(settings.hub_db_url.removeprefix("sqlite:///")).exists():
        print(f"leva: no hub state in {settings.state_dir}; start the hub once first", file=sys.stderr)
        return 2
    courses = load_courses(settings.courses_dir)
    enrolments = _enrolments(settings)
    try:
        learner, other = choose_learners(enrolments, learner, other)
    except LookupError as e:
        print(f"leva: {e}", file=sys.stderr)
        return 2
    limits = {**default_limits(), **(limits or {})}
    targets = targets_for(settings, courses, enrolments, learner, other, limits)
    if settings.isolation == "users":
        results = run_as_learner(settings, learner, enrolments.get(learner, set()), targets)
        who = f"as {learner} (account {_account(settings, learner)}), against {other}"
    else:
        results = _run_probe(targets)
        who = (f"as {learner} in the demo (LEVA_ISOLATION=none): members' servers run as "
               f"{_account(settings, learner)}, the hub's own user")
    print(matrix(results, title=f"Isolation matrix, {who}:"), file=out)
    return 1 if any(r.outcome in FAILURES for r in results) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.isolation_report", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return from_args(args)


def add_arguments(parser) -> None:
    parser.add_argument("--learner", help="the learner who tries (default: one chosen from the hub)")
    parser.add_argument("--other", help="the learner whose work they try to reach (default: a classmate)")
    parser.add_argument("--memory", type=int, help="members' memory limit in bytes (default: the spawner's)")
    parser.add_argument("--processes", type=int, help="members' process limit (default: the spawner's)")
    parser.add_argument("--cpus", type=float, help="members' CPU cap in cores (default: the spawner's)")


def from_args(args) -> int:
    limits = {k: v for k, v in (("memory_limit", args.memory), ("process_limit", args.processes),
                                ("cpu_limit", args.cpus)) if v}
    return report(args.learner, args.other, limits)


if __name__ == "__main__":
    raise SystemExit(main())
