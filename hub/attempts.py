"""What a learner's code tries against other members and the answers, and how each attempt ends.

The attempts run inside a learner's own process: a kernel of their server in the
tests (``tests/test_isolation.py``), or a process given their account and limits
by ``leva security matrix``. The targets (paths, the other learner's account,
the limits) are chosen beforehand by root and handed over as JSON.

Each attempt ends in one outcome:

- ``denied``: the system refused (no permission);
- ``contained``: it ran into a limit (processes, memory, CPU);
- ``ALLOWED``: it worked, which is a hole;
- ``n/a``: nothing to try on this deployment (no such target);
- for the controls, which must work for the others to mean anything,
  ``works`` or ``BROKEN``.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DENIED, CONTAINED, ALLOWED, NA, WORKS, BROKEN = "denied", "contained", "ALLOWED", "n/a", "works", "BROKEN"
FAILURES = {ALLOWED, BROKEN}
MiB = 1024 * 1024


@dataclass
class Result:
    attempt: str
    outcome: str
    detail: str = ""


class Skip(Exception):
    """Nothing to try: the target does not exist here."""


def _read(path: str) -> str:
    """Read a file or list a folder; what was read, shortened."""
    if not path:
        raise Skip("no target")
    if os.path.isdir(path):
        return f"listed {len(os.listdir(path))} entries"
    with open(path, "rb") as f:
        return f"read {len(f.read(4096))} bytes"


def _file_attempt(name: str, paths: list[str]) -> Result:
    """Denied only if every target is denied; one that opens is a hole."""
    paths = [p for p in paths if p]
    if not paths:
        return Result(name, NA, "no such target here")
    denied, missing = [], []
    for path in paths:
        try:
            done = _read(path)
        except PermissionError:
            denied.append(path)
        except (FileNotFoundError, NotADirectoryError, Skip):
            missing.append(path)
        else:
            return Result(name, ALLOWED, f"{path}: {done}")
    if not denied:
        return Result(name, NA, f"not found: {', '.join(missing)}")
    return Result(name, DENIED, f"{len(denied)} paths refused" + (f", {len(missing)} absent" if missing else ""))


def _write_attempt(name: str, folder: str, entry: str, make_dir: bool = False) -> Result:
    if not folder:
        return Result(name, NA, "no such target here")
    path = os.path.join(folder, entry)
    try:
        if make_dir:
            os.mkdir(path)
        else:
            with open(path, "x") as f:
                f.write("planted by a learner\n")
    except PermissionError:
        return Result(name, DENIED, folder)
    except FileNotFoundError:
        return Result(name, NA, f"not found: {folder}")
    try:
        os.rmdir(path) if make_dir else os.unlink(path)
    except OSError:
        pass
    return Result(name, ALLOWED, f"created {path}")


def _processes_of(uid: int | None) -> list[int]:
    if uid is None:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def token_of_other(uid: int | None) -> Result:
    name = "read another learner's server token (/proc/<pid>/environ)"
    pids = _processes_of(uid)
    if not pids:
        return Result(name, NA, "the other learner runs nothing")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"JUPYTERHUB_API_TOKEN" in f.read():
                    return Result(name, ALLOWED, f"pid {pid}")
        except (PermissionError, ProcessLookupError, FileNotFoundError):
            continue
    return Result(name, DENIED, f"{len(pids)} processes")


def signal_other(uid: int | None) -> Result:
    name = "signal another learner's processes"
    pids = _processes_of(uid)
    if not pids:
        return Result(name, NA, "the other learner runs nothing")
    for pid in pids:
        try:
            os.kill(pid, 0)  # the permission check of any signal, without the harm
        except PermissionError:
            continue
        except ProcessLookupError:
            continue
        return Result(name, ALLOWED, f"pid {pid}")
    return Result(name, DENIED, f"{len(pids)} processes")


def fork_bomb(process_limit: int) -> Result:
    """Fork until refused, at most twice the limit; every child is a sleeping ``sleep``, killed at the end."""
    name = "fork bomb"
    children, refused = [], None
    try:
        for _ in range(2 * process_limit + 50):
            try:
                pid = os.fork()
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    refused = len(children)
                    break
                raise
            if pid == 0:
                try:
                    os.execv("/bin/sleep", ["sleep", "120"])
                finally:
                    os._exit(0)
            children.append(pid)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    if refused is None:
        return Result(name, ALLOWED, f"{len(children)} processes started")
    return Result(name, CONTAINED, f"fork refused (EAGAIN) after {refused} processes")


def memory_hog(memory_limit: int) -> Result:
    """Fill memory 64 MiB at a time, to 256 MiB past the limit."""
    name = "memory hog"
    if not memory_limit:
        return Result(name, NA, "no memory limit configured")
    chunks = []
    try:
        while len(chunks) * 64 * MiB < memory_limit + 256 * MiB:
            chunks.append(b"\x01" * (64 * MiB))
    except MemoryError:
        return Result(name, CONTAINED, f"MemoryError after {len(chunks) * 64} MiB")
    finally:
        chunks.clear()
    return Result(name, ALLOWED, f"{len(chunks) * 64} MiB filled")


def _cgroup_cpu() -> bool:
    """Whether this process sits in a Leva control group with a CPU cap."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "/leva/" in path + "/" and (controllers == "" or "cpu" in controllers.split(",")):
            return True
    return False


def cpu_hog(cpu_limit: float | None, seconds: float = 2.0) -> Result:
    """Spin two processes for ``seconds``; contained if they got no more than the member's cores."""
    name = "CPU hog (2 busy processes)"
    if not cpu_limit or not _cgroup_cpu():
        return Result(name, NA, "no CPU cap on this host (no cgroup cpu controller)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores = ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) / wall
    outcome = CONTAINED if cores <= cpu_limit * 1.25 + 0.05 else ALLOWED
    return Result(name, outcome, f"{cores:.2f} cores used, cap {cpu_limit:g}")


def control_own_home(home: str) -> Result:
    name = "control: write and read one's own home"
    path = os.path.join(home or os.path.expanduser("~"), ".leva-attempt")
    try:
        Path(path).write_text("mine\n")
        ok = Path(path).read_text() == "mine\n"
        os.unlink(path)
    except OSError as e:
        return Result(name, BROKEN, str(e))
    return Result(name, WORKS if ok else BROKEN, path)


def run(targets: dict) -> list[Result]:
    """Every attempt, against the targets root chose (see ``leva security matrix``)."""
    t = targets
    results = [control_own_home(t.get("own_home", ""))]
    results += [
        _file_attempt("read another learner's home", t.get("other_home", [])),
        _file_attempt("read a course's sources in the catalogue", t.get("catalogue_sources", [])),
        _file_attempt("read hidden tests (source notebook)", t.get("hidden_tests", [])),
        _file_attempt("read a gradebook", t.get("gradebooks", [])),
        _file_attempt("read the community database", t.get("community", [])),
        _file_attempt("read the hub's databases and secrets", t.get("hub_secrets", [])),
        _file_attempt("read another learner's submission", t.get("other_submission", [])),
        _file_attempt("read another course's exchange", t.get("other_course_exchange", [])),
        _write_attempt("write into another course's exchange inbound", t.get("other_inbound", ""),
                       f"{t.get('learner', 'x')}+planted+2000-01-01 00:00:00.000000 UTC", make_dir=True),
        _write_attempt("plant a course in the exchange root", t.get("exchange_root", ""), "planted-course",
                       make_dir=True),
        token_of_other(t.get("other_uid")),
        signal_other(t.get("other_uid")),
        fork_bomb(int(t.get("process_limit") or 256)),
        memory_hog(int(t.get("memory_limit") or 0)),
        cpu_hog(t.get("cpu_limit")),
    ]
    return results


def run_json(targets_json: str) -> str:
    """:func:`run` for a kernel: targets in, results out, both JSON."""
    return json.dumps([asdict(r) for r in run(json.loads(targets_json))])


def matrix(results: list[Result], title: str = "") -> str:
    """The attempts and their outcomes as a text table."""
    width = max(len(r.attempt) for r in results)
    lines = [title] if title else []
    lines.append(f"{'attempt'.ljust(width)}  {'outcome':<9}  detail")
    lines.append(f"{'-' * width}  {'-' * 9}  {'-' * 6}")
    lines += [f"{r.attempt.ljust(width)}  {r.outcome:<9}  {r.detail}" for r in results]
    failures = [r for r in results if r.outcome in FAILURES]
    lines.append(f"{len(results)} attempts, {len(failures)} allowed or broken")
    return "\n".join(lines)


def main() -> int:
    """``python -m hub.attempts``: targets as JSON on stdin, results as JSON on stdout."""
    import sys

    print(run_json(sys.stdin.read()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
