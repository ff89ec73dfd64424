"""Control groups: one per member, capping the CPU, memory and processes of everything they run.

Resource limits (``setrlimit``) bound each process; a control group bounds the
member as a whole, whatever they start: a server, ten kernels, a shell loop.
Both layouts of Linux are handled:

- cgroup v2 (the unified hierarchy, ``/sys/fs/cgroup/cgroup.controllers``):
  ``leva/<account>/`` with ``cpu.max``, ``memory.max``, ``pids.max``;
- cgroup v1 (one mount per controller, as on older or hybrid hosts):
  ``<controller>/leva/<account>/`` with ``cpu.cfs_quota_us``,
  ``memory.limit_in_bytes``, ``pids.max``.

Where neither is writable (an unprivileged container), nothing is created and
callers fall back to resource limits alone; :func:`controllers` says what is
enforced, so the deployment can tell the operator.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PARENT = "leva"
CPU_PERIOD_US = 100_000
V1_FILES = {"cpu": "cpu.cfs_quota_us", "memory": "memory.limit_in_bytes", "pids": "pids.max"}


def _write(path: Path, value) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


def _v2_controllers() -> set[str]:
    try:
        return set((ROOT / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def _v1_mount(controller: str) -> Path | None:
    base = ROOT / controller
    return base if (base / "cgroup.procs").exists() else None


def controllers() -> set[str]:
    """The controllers (``cpu``, ``memory``, ``pids``) this host lets the hub use; empty when none."""
    wanted = {"cpu", "memory", "pids"}
    if os.geteuid() != 0:
        return set()
    v2 = _v2_controllers() & wanted
    if v2:
        return v2 if os.access(ROOT / "cgroup.subtree_control", os.W_OK) else set()
    return {c for c in wanted if (m := _v1_mount(c)) and os.access(m, os.W_OK)}


@dataclass
class MemberCgroup:
    """The control group of one account: create with limits, join from a child, kill and remove."""

    name: str
    cpus: float | None = None          # cores, e.g. 1.0
    memory: int | None = None          # bytes
    pids: int | None = None            # tasks (processes and threads)

    @property
    def v2(self) -> bool:
        return bool(_v2_controllers())

    @property
    def dirs(self) -> list[Path]:
        """The group's folders that exist (one in v2, one per controller in v1), also after a hub restart."""
        if self.v2:
            candidates = [ROOT / PARENT / self.name]
        else:
            candidates = [ROOT / c / PARENT / self.name for c in sorted(V1_FILES)]
        return [d for d in candidates if d.is_dir()]

    def create(self) -> set[str]:
        """Create the group and write its limits; return the controllers that now enforce them."""
        available = controllers()
        if not available:
            return set()
        if self.v2:
            return self._create_v2(available)
        return self._create_v1(available)

    def _create_v2(self, available: set[str]) -> set[str]:
        parent = ROOT / PARENT
        parent.mkdir(exist_ok=True)
        enable = " ".join(f"+{c}" for c in sorted(available))
        for level in (ROOT, parent):
            try:
                _write(level / "cgroup.subtree_control", enable)
            except OSError as e:  # a controller held by a process of that level: use what is left
                log.warning("cgroup controllers %s not enabled in %s: %s", enable, level, e)
        group = parent / self.name
        group.mkdir(exist_ok=True)
        enforced = set()
        for controller, path, value in (
            ("cpu", "cpu.max", self.cpus and f"{int(self.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}"),
            ("memory", "memory.max", self.memory),
            ("memory", "memory.swap.max", self.memory and 0),
            ("pids", "pids.max", self.pids),
        ):
            if value is None or value is False or controller not in available or not (group / path).exists():
                continue
            _write(group / path, value)
            enforced.add(controller)
        return enforced

    def _create_v1(self, available: set[str]) -> set[str]:
        enforced = set()
        limits = {"cpu": self.cpus and int(self.cpus * CPU_PERIOD_US), "memory": self.memory, "pids": self.pids}
        for controller in sorted(available):
            group = ROOT / controller / PARENT / self.name
            group.mkdir(parents=True, exist_ok=True)
            value = limits[controller]
            if not value:
                continue
            if controller == "cpu":
                _write(group / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(group / V1_FILES[controller], value)
            enforced.add(controller)
        return enforced

    def procs_files(self) -> list[str]:
        """What a child writes its pid to, before it drops its rights (see :meth:`join`)."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    @staticmethod
    def join(procs_files: list[str]) -> None:
        """Move the calling process into the group; safe between fork and exec."""
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids_inside(self) -> set[int]:
        found = set()
        for group in self.dirs:
            try:
                found.update(int(p) for p in (group / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return found

    def kill(self, timeout: float = 5) -> None:
        """Kill every process left in the group (a server's stray children, a fork bomb)."""
        for group in self.dirs:
            if (group / "cgroup.kill").exists():
                try:
                    _write(group / "cgroup.kill", 1)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        while (pids := self.pids_inside()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        """Kill what is left and remove the group."""
        self.kill()
        for group in self.dirs:
            try:
                group.rmdir()
            except OSError as e:
                log.warning("cgroup %s not removed: %s", group, e)
