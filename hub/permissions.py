"""Who may read and write what when members run as their own accounts (``LEVA_ISOLATION=users``).

Applied at every start of the hub, so a state dir made by the demo, or changed
by hand, is put right before any member's server starts:

==============================  ====================  =====  ==================================================
path                            owner                 mode   why
==============================  ====================  =====  ==================================================
``$LEVA_STATE_DIR``             root                  0711   members pass through to their home and the
                                                             exchange; nobody lists it
its other entries (databases,   root                  0600   the hub's alone: hub and member databases,
secrets, tokens)                                      0700   cookie secret, admin token, demo password
``homes/``                      root                  0711   each home is its member's, 0700
``courses/<id>/``               root                  0700   nbgrader's course folder: sources (a link to the
                                                             catalogue), submissions, gradebook, feedback
``community/``                  root                  0700   the community database
``exchange/``                   root                  0755   nobody but root creates a course's exchange
``exchange/<id>/``              root:leva-<id>        0750   only the course's learners reach it
``exchange/<id>/outbound/``     root                  0755   released assignments
``exchange/<id>/inbound/``      root:leva-<id>        3733   learners drop submissions in and list nothing;
                                                             sticky, so nobody renames another's
``exchange/<id>/feedback/``     root                  0711   feedback files are named by a hash only their
                                                             learner can compute
catalogue course folders        (unchanged)           go-rwx solutions and hidden tests
==============================  ====================  =====  ==================================================

The hub and what it starts as root (proxy, formgraders, community service)
run with umask 077: whatever they create later is private unless made shared
on purpose, as nbgrader does for released assignments.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .courses import PROJECT_ROOT
from .grading import JUPYTER_CONFIG, course_root, exchange_root
from .isolation import course_group, ensure_group

log = logging.getLogger(__name__)

SHARED = {"homes", "exchange"}  # the state dir's entries members may reach

# Appended to each course's nbgrader_config.py in isolated mode.
ISOLATED_COURSE_CONFIG = '''
# Isolated mode (LEVA_ISOLATION=users), added by hub.permissions:
# submissions run as their learner's grading account, never as root,
from hub.learner_kernels import autograde_preprocessors  # noqa: E402
c.Autograde.autograde_preprocessors = autograde_preprocessors()
# the exchange keeps the modes the hub gives it, feedback stays readable under umask 077,
# and a submission counts only if its learner's account made it.
c.ExchangeFactory.release_assignment = "hub.exchange.LockedRootReleaseAssignment"
c.ExchangeFactory.release_feedback = "hub.exchange.ReadableReleaseFeedback"
c.ExchangeFactory.collect = "hub.exchange.OwnerCheckedCollect"
'''


def _blocked(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that other accounts may not pass through."""
    for folder in reversed([path, *path.parents]):
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return None  # made later, by root, with the right modes
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return folder
    return None


def preflight(settings) -> str | None:
    """Why isolated mode cannot start here, or None (and then the hub's umask is 077)."""
    if os.geteuid() != 0:
        return (
            "LEVA_ISOLATION=users runs each member's server as their own system account, "
            "which only root can do: start the hub as root (sudo make run-isolated)"
        )
    missing = [tool for tool in ("useradd", "groupadd", "userdel") if not shutil.which(tool)]
    if missing:
        return f"LEVA_ISOLATION=users needs {', '.join(missing)} (Debian package `passwd`)"
    # members' servers run this environment's Python and import the `hub` package of the checkout
    needed = [Path(sys.executable).parent, Path(os.path.realpath(sys.executable)).parent,
              PROJECT_ROOT / "hub", JUPYTER_CONFIG, settings.state_dir]
    for path in needed:
        folder = _blocked(path)
        if folder:
            return (
                f"members' servers run as their own accounts and cannot pass through {folder} "
                f"(mode {stat.S_IMODE(folder.stat().st_mode):o}): `chmod o+x {folder}`, "
                f"or keep the checkout and LEVA_STATE_DIR on a path others may pass through"
            )
    probe = subprocess.run(
        [sys.executable, "-c", "import hub.isolation, hub.lessons, jupyterhub.singleuser, nbgrader.exchange"],
        user=65534, group=65534, extra_groups=[], cwd="/", capture_output=True, text=True, timeout=120,
        env={"PATH": os.defpath, "HOME": "/nonexistent", "LANG": "C.UTF-8"},
    )
    if probe.returncode != 0:
        return (
            "members' servers run as their own accounts, and an unprivileged account cannot run "
            f"{sys.executable} with the platform's packages: make the checkout and its .venv readable "
            f"by others (chmod -R o+rX). The error was:\n{probe.stderr.strip()[-800:]}"
        )
    os.umask(0o077)  # from here on, what the hub and its root services create is private unless shared on purpose
    return None


def _private(path: Path) -> None:
    """Root's alone: files 0600, folders 0700 (not below: a closed folder closes what it holds)."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return
    if st.st_uid != 0:
        os.lchown(path, 0, 0)
    os.chmod(path, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)


def _set(path: Path, mode: int, gid: int = 0) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def lock_down(settings, courses) -> None:
    """Give the state dir and the catalogue the modes of the table above."""
    state = settings.state_dir
    _set(state, 0o711)
    (state / "community").mkdir(exist_ok=True)
    for entry in state.iterdir():
        if entry.name not in SHARED:
            _private(entry)
    _set(settings.homes_dir, 0o711)
    exchange = exchange_root(state)
    _set(exchange, 0o755)
    for course in courses.values():
        _private(course_root(state, course.id))
        gid = ensure_group(course_group(course.id))
        _set(exchange / course.id, 0o750, gid)
        _set(exchange / course.id / "outbound", 0o755)
        _set(exchange / course.id / "inbound", 0o3733, gid)
        _set(exchange / course.id / "feedback", 0o711)
        config = course_root(state, course.id) / "nbgrader_config.py"
        if config.exists() and ISOLATED_COURSE_CONFIG not in config.read_text():
            with open(config, "a") as f:
                f.write(ISOLATED_COURSE_CONFIG)
        # the catalogue holds the solutions and hidden tests; lessons reach members by hub.isolation
        mode = stat.S_IMODE(course.path.stat().st_mode)
        if mode & 0o077:
            os.chmod(course.path, mode & 0o700)
    # anything else in the exchange (made before the hub was isolated) is nobody's business
    for entry in exchange.iterdir():
        if entry.name not in courses:
            _private(entry)
    log.info("State dir %s and catalogue %s locked down for isolated members", state, settings.courses_dir)
