"""Members isolated from each other: a system account per member, with limits.

With ``LEVA_ISOLATION=users`` (see SECURITY.md) the hub runs as root, as The
Littlest JupyterHub does, and:

- each member's server runs as their own system account ``jupyter-<username>``
  (created at their first start: no password, no login shell), in a private
  home ``$LEVA_STATE_DIR/homes/<username>`` (mode 0700, theirs);
- the account joins, for that server only, the system group ``leva-<course>``
  of each course it learns: the group that may reach the course's exchange;
- everything the account runs is capped: per process by resource limits
  (address space, processes), per member by a control group (CPU, memory,
  processes) where the host has one (:mod:`hub.cgroups`);
- lessons are delivered by a process running as the member, so the hub never
  writes as root into a folder a member controls;
- learners' submissions are graded as a second account, ``grading-<username>``,
  that owns nothing and belongs to no course (:mod:`hub.learner_kernels`).

What is readable by whom under the state dir is :mod:`hub.permissions`.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import grp
import hashlib
import json
import logging
import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from traitlets import Integer, default

from .cgroups import MemberCgroup
from .lessons import SKIP_DIRS, SyncReport
from .roster import learner_group
from .spawner import LevaSpawner

log = logging.getLogger(__name__)

ACCOUNT_PREFIX = "jupyter-"
GRADING_PREFIX = "grading-"
GROUP_PREFIX = "leva-"
NOLOGIN = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
MAX_NAME = 32  # the longest user or group name useradd accepts
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_.-]*$")
GiB = 1024**3


# ---------------------------------------------------------------------------
# Accounts and groups
# ---------------------------------------------------------------------------


def system_name(name: str, prefix: str) -> str:
    """A valid system name for a hub name: ``<prefix><name>``, hashed when too long or unusual."""
    candidate = f"{prefix}{name}"
    if len(candidate) <= MAX_NAME and _SAFE_NAME.match(candidate):
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9_.-]", "-", name.lower())[: MAX_NAME - len(prefix) - 9]
    return f"{prefix}{readable}-{digest}"


def account_name(username: str) -> str:
    """The system account of a member's server, named as The Littlest JupyterHub names them."""
    return system_name(username, ACCOUNT_PREFIX)


def grading_account_name(username: str) -> str:
    """The system account that runs a member's submissions when they are graded."""
    return system_name(username, GRADING_PREFIX)


def course_group(course_id: str) -> str:
    """The system group of a course's learners: the only accounts that may reach its exchange."""
    return system_name(course_id, GROUP_PREFIX)


# useradd and groupadd lock /etc/passwd and /etc/group and fail when another holds the lock:
# serialise within the process, retry against other processes (a formgrader creating a grading account)
_tools = threading.Lock()


def _run_tool(*args: str) -> None:
    for attempt in range(20):
        with _tools:
            result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "lock" not in result.stderr:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        time.sleep(0.1 * (attempt + 1))
    raise RuntimeError(f"{' '.join(args)}: the account files stayed locked: {result.stderr.strip()}")


def ensure_group(name: str) -> int:
    """The gid of a system group, created when missing."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    try:
        _run_tool("groupadd", "--system", name)
    except RuntimeError:
        try:  # created meanwhile by another process
            return grp.getgrnam(name).gr_gid
        except KeyError:
            raise
    return grp.getgrnam(name).gr_gid


def ensure_account(name: str, home: str | os.PathLike, comment: str) -> pwd.struct_passwd:
    """A locked system account with its own group, no login shell and the given home; created when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        _run_tool(
            "useradd", "--no-create-home", "--home-dir", str(home), "--shell", NOLOGIN,
            "--user-group", "--comment", comment[:60], name,
        )
    except RuntimeError:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise
    log.info("Created system account %s (%s)", name, comment)
    return pwd.getpwnam(name)


def remove_account(name: str) -> None:
    """Delete a system account and its own group (their files stay)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    kill_processes(pwd.getpwnam(name).pw_uid)
    _run_tool("userdel", name)
    try:
        grp.getgrnam(name)
        _run_tool("groupdel", name)
    except KeyError:
        pass


def forget_member(username: str) -> None:
    """Remove a member's system accounts (server and grading), killing what they run; files stay.

    For erasing a member: their home and submissions are the caller's to delete.
    """
    for name in (account_name(username), grading_account_name(username)):
        remove_account(name)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a folder tree to an account without following links (a link there is never root's to follow)."""
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def ensure_home(account: pwd.struct_passwd, home: Path) -> None:
    """The member's private home: theirs, mode 0700, inside a folder only root writes."""
    if home.is_symlink():
        raise RuntimeError(f"{home} is a link; a home must be a plain folder")
    if not home.exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        home.mkdir(mode=0o700)
        os.chown(home, account.pw_uid, account.pw_gid)
    else:
        owner = home.stat().st_uid
        if owner == 0:
            # a home the demo made (everything ran as root then): the member's from now on
            chown_tree(home, account.pw_uid, account.pw_gid)
        elif owner != account.pw_uid:
            raise RuntimeError(f"{home} belongs to uid {owner}, not to {account.pw_name}")
    os.chmod(home, 0o700)


def kill_processes(uid: int) -> int:
    """SIGKILL every process whose real or effective user is ``uid``; return how many."""
    if uid == 0:
        raise ValueError("refusing to kill root's processes")
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:3]
        except (OSError, StopIteration):
            continue
        if str(uid) in uids:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


# ---------------------------------------------------------------------------
# Limits and dropping rights
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Resource limits of every process an account runs (0: no limit)."""

    memory: int = 2 * GiB       # RLIMIT_AS: a process that asks for more gets MemoryError
    processes: int = 256        # RLIMIT_NPROC: processes and threads of the account, all together
    cpu_seconds: int = 0        # RLIMIT_CPU: total CPU time of a process, then SIGXCPU; for short-lived work
    open_files: int = 4096      # RLIMIT_NOFILE
    file_size: int = 0          # RLIMIT_FSIZE: the largest file a process may write

    def rlimits(self) -> dict[int, int]:
        wanted = {
            resource.RLIMIT_AS: self.memory,
            resource.RLIMIT_NPROC: self.processes,
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_NOFILE: self.open_files,
            resource.RLIMIT_FSIZE: self.file_size,
            resource.RLIMIT_CORE: 0,
        }
        return {which: value for which, value in wanted.items() if value or which == resource.RLIMIT_CORE}


CLONE_NEWNET = 0x40000000


@functools.cache
def network_namespaces() -> bool:
    """Whether this host lets root give a process a network of its own (and nothing else)."""
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def demote(account: str, limits: Limits = Limits(), groups=(), cgroup_procs=(), home=None, umask: int = 0o077,
           network: bool = True):
    """A ``preexec_fn`` that turns a child of root into ``account``, with ``limits``, before it runs anything.

    In order: join the control group (which needs root), leave the machine's
    network if ``network`` is False (an empty network namespace: not even
    loopback), set the limits, take the account's group and the given
    supplementary ``groups`` (and no others), then the account's uid, for good.
    Everything is looked up here, in the parent, so the child runs no lookups
    between fork and exec.
    """
    entry = pwd.getpwnam(account)
    uid, gid = entry.pw_uid, entry.pw_gid
    if uid == 0:
        raise ValueError("demote() is for unprivileged accounts")
    gids = sorted({gid, *groups})
    rlimits = limits.rlimits()
    procs = list(cgroup_procs)
    libc = None if network else ctypes.CDLL(None, use_errno=True)

    def preexec():
        MemberCgroup.join(procs)
        if libc is not None and libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "no network namespace")
        for which, value in rlimits.items():
            resource.setrlimit(which, (value, value))
        os.setgroups(gids)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.geteuid() == 0 or os.getegid() == 0:
            raise PermissionError("rights not dropped")
        os.umask(umask)
        if home:
            try:
                os.chdir(home)
            except OSError:
                pass

    return preexec


def drop_to(account: str, limits: Limits = Limits()) -> None:
    """Turn the calling process itself into ``account``, with ``limits`` (a command that starts as root)."""
    demote(account, limits)()


# ---------------------------------------------------------------------------
# The spawner
# ---------------------------------------------------------------------------


def learner_courses(user) -> list[str]:
    """The courses a hub user learns (not teaches), from their ``nbgrader-<course>`` groups."""
    prefix = learner_group("")
    return sorted(g.name[len(prefix):] for g in user.groups if g.name.startswith(prefix))


class IsolatedSpawner(LevaSpawner):
    """A member's server as their own system account, with their lessons and limits.

    Uses JupyterHub's ``mem_limit`` and ``cpu_limit`` (enforced here, unlike in
    ``LocalProcessSpawner``) and adds ``process_limit``.
    """

    process_limit = Integer(
        256,
        config=True,
        help="""Processes and threads a member may run at once, all their servers and kernels together
        (RLIMIT_NPROC of their account, and pids.max of their control group). A JupyterLab server
        uses about 10, each kernel 10 to 30.""",
    )

    lesson_timeout = Integer(
        120, config=True, help="Seconds the delivery of a course's lessons may take before it is abandoned."
    )

    @default("mem_limit")
    def _default_mem_limit(self):
        # the address space of each process (RLIMIT_AS) and, with a control group, the member's total
        return 2 * GiB

    @default("cpu_limit")
    def _default_cpu_limit(self):
        # cores, with a control group; without one the CPU is shared with no cap (see SECURITY.md)
        return 1.0

    @default("args")
    def _default_args(self):
        return []  # members' servers never run as root

    @property
    def account(self) -> str:
        return account_name(self.user.name)

    @property
    def limits(self) -> Limits:
        return Limits(memory=int(self.mem_limit or 0), processes=self.process_limit)

    def cgroup(self) -> MemberCgroup:
        return MemberCgroup(self.account, cpus=self.cpu_limit, memory=self.mem_limit, pids=self.process_limit)

    async def start(self):
        courses = learner_courses(self.user)  # read here: the hub's database is not for other threads
        await asyncio.to_thread(self.prepare_account, courses)
        return await super().start()

    def prepare_account(self, courses: list[str]) -> None:
        entry = ensure_account(self.account, self.home_dir, f"Leva member {self.user.name}")
        leftovers = kill_processes(entry.pw_uid)  # of a server that died without being stopped
        if leftovers:
            self.log.warning("Killed %d processes %s left running", leftovers, self.account)
        ensure_home(entry, Path(self.home_dir))
        self._groups = [ensure_group(course_group(c)) for c in courses]
        cgroup = self.cgroup()
        cgroup.remove()
        enforced = cgroup.create()
        self._cgroup_procs = cgroup.procs_files()
        self.log.info(
            "%s runs as %s, groups %s, limits %s; control group: %s",
            self.user.name, self.account, [course_group(c) for c in courses], self.limits,
            ", ".join(sorted(enforced)) or "none on this host",
        )

    def make_preexec_fn(self, name):
        return demote(
            self.account, self.limits, groups=getattr(self, "_groups", ()),
            cgroup_procs=getattr(self, "_cgroup_procs", ()), home=self.home_dir,
        )

    def user_env(self, env):
        env.update(USER=self.account, LOGNAME=self.account, HOME=self.home_dir, SHELL="/bin/bash")
        return env

    def sync_course(self, course_id: str, lessons_dir: Path, home: Path) -> SyncReport:
        """Merge a course's lessons into the home as the member, from a copy only they may read."""
        entry = pwd.getpwnam(self.account)
        with staged_lessons(lessons_dir, entry.pw_gid) as staged:
            result = subprocess.run(
                [sys.executable, "-m", "hub.lessons", course_id, str(staged), str(home)],
                user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], umask=0o077, cwd=str(home),
                env={"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"},
                capture_output=True, text=True, timeout=self.lesson_timeout,
            )
        if result.returncode != 0:
            raise RuntimeError(f"lessons of {course_id} not delivered: {result.stderr.strip()[-500:]}")
        return SyncReport(**json.loads(result.stdout))

    async def stop(self, now=False):
        await super().stop(now=now)
        await asyncio.to_thread(self.release_account)

    def release_account(self) -> None:
        """After the server: nothing of the member keeps running, and their control group goes."""
        self.cgroup().remove()
        try:
            uid = pwd.getpwnam(self.account).pw_uid
        except KeyError:
            return
        leftovers = kill_processes(uid)
        if leftovers:
            self.log.info("Killed %d processes %s left running", leftovers, self.account)


class staged_lessons:
    """A copy of a course's lessons owned by root and readable by one group: the member's own.

    The catalogue itself stays root-only (it holds the solutions), and the member's
    delivery process can read this copy but not change it.
    """

    def __init__(self, lessons_dir: Path, gid: int):
        self.lessons_dir = lessons_dir
        self.gid = gid

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix="leva-lessons-"))
        target = self.tmp / "lessons"
        shutil.copytree(self.lessons_dir, target, ignore=shutil.ignore_patterns(*SKIP_DIRS), symlinks=False)
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            os.chown(dirpath, 0, self.gid)
            os.chmod(dirpath, 0o750)
            for name in filenames:
                path = os.path.join(dirpath, name)
                os.chown(path, 0, self.gid)
                os.chmod(path, 0o640)
        return target

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
