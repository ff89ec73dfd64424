"""Fresh, fenced kernels for grading, started in milliseconds.

Starting a Python kernel the usual way (a new interpreter importing ipykernel,
IPython and then the course's libraries) costs about a second of CPU, most of
what autograding a small notebook costs.  Here a *kernel factory* process
imports all of that once and then forks one kernel per notebook: each kernel
is a new process with a pristine copy of the factory's memory, used for one
notebook and then killed, so nothing of one learner's code can reach
another's.  The factory never runs learners' code itself.

Each kernel, before the first cell of a submission runs:

* leads its own session and process group, so the grader kills it and
  anything it started in one go; it dies with the factory;
* runs in a private copy of the submission's folder (not inside the course
  folder, so relative paths reach neither hidden tests, solutions, other
  submissions nor the gradebook), with a scrubbed environment;
* has resource limits: address space (memory cap), CPU time, file size,
  open files, processes (ineffective for root: see the README);
* has no network (its own empty network namespace where the system allows
  it, and the guard refuses sockets);
* has the guard of :mod:`graders.guard` up.

The grader talks to a kernel over IPC sockets in a private control folder,
as jupyter_client would, through :class:`SandboxKernelManager`.

Run as ``python -m graders.sandbox SPEC`` this module *is* the kernel
factory (see :func:`factory_main`).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import fcntl
import importlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

MiB = 1024 * 1024
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031

#: Imported by the factory before it forks: the kernel itself.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
                  "ipykernel.comm", "IPython", "IPython.core.ultratb", "jupyter_client.session", "graders.guard")

#: Imported too when the notebooks import matplotlib (the kernels' inline backend; a second of CPU).
PLOTTING_MODULES = ("matplotlib_inline.backend_inline",)

#: Variables every kernel gets; the factory's own environment is not passed on.
KERNEL_ENVIRONMENT = {
    "LANG": "C.UTF-8",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "NBGRADER_EXECUTION": "autograde",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}

#: Files below a grading root's home folder that hold credentials.
CREDENTIAL_FILES = (".pgpass", ".ssh", ".netrc", ".jupyter", ".git-credentials", ".config", ".aws")


@dataclass
class Limits:
    """What one submission may use."""

    cell_timeout: float = 30.0          # seconds per cell, then the cell is interrupted (nbgrader's Execute.timeout)
    submission_timeout: float = 300.0   # wall-clock seconds for the whole submission, then it fails
    memory_mb: int = 2048               # address space of the kernel (RLIMIT_AS)
    cpu_seconds: int = 0                # CPU seconds of the kernel (RLIMIT_CPU); 0: the submission timeout
    file_mb: int = 64                   # largest file the notebook may write (RLIMIT_FSIZE)
    open_files: int = 256               # RLIMIT_NOFILE
    processes: int = 64                 # RLIMIT_NPROC (not enforced for root)
    output_mb: float = 16.0             # outputs one notebook may produce, then it fails
    notebook_mb: float = 32.0           # largest submitted notebook file accepted

    def rlimits(self) -> dict[int, int]:
        cpu = int(self.cpu_seconds or self.submission_timeout) + 1
        return {
            resource.RLIMIT_AS: self.memory_mb * MiB,
            resource.RLIMIT_CPU: cpu,
            resource.RLIMIT_FSIZE: self.file_mb * MiB,
            resource.RLIMIT_NOFILE: self.open_files,
            resource.RLIMIT_NPROC: self.processes,
            resource.RLIMIT_CORE: 0,
        }


@dataclass
class FactorySpec:
    """Everything the kernel factory needs, handed over as one JSON file."""

    run_root: str                       # private folder of this grading run
    preload: list[str]                  # modules to import before forking (the course's libraries)
    protected: list[str]                # folders kernels may not read (course, state, catalogue, run root)
    readable: list[str] = field(default_factory=list)  # exceptions below ``protected``
    limits: dict = field(default_factory=dict)
    network: bool = False               # leave kernels the machine's network

    @property
    def mpl_dir(self) -> str:
        return os.path.join(self.run_root, "mpl")


# ---------------------------------------------------------------------------
# The factory process
# ---------------------------------------------------------------------------


def _libc():
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def _preload(spec: FactorySpec) -> list[str]:
    """Import the kernel and the course's libraries; return the packages that imported."""
    os.environ.update(KERNEL_ENVIRONMENT)
    os.environ["MPLCONFIGDIR"] = spec.mpl_dir
    os.makedirs(spec.mpl_dir, exist_ok=True)
    loaded = []
    plotting = PLOTTING_MODULES if "matplotlib" in spec.preload else ()
    for name in (*KERNEL_MODULES, *plotting, *spec.preload):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a library a notebook names but the machine lacks: the notebook will say
            continue
        if name in spec.preload:
            loaded.append(name)
    if "matplotlib" in sys.modules:
        try:  # build matplotlib's font cache now, while the factory may still write it
            importlib.import_module("matplotlib.pyplot")
            importlib.import_module("matplotlib.font_manager").findfont("DejaVu Sans")
        except Exception:  # noqa: BLE001
            pass
    _warm_tracebacks()
    return loaded


def _warm_tracebacks() -> None:
    """Show one traceback the way a kernel does, so that kernels inherit what it costs the first time.

    A kernel's first traceback fills :mod:`inspect`'s file-to-module caches
    (a ``realpath`` for every loaded module, pandas' hundreds included) and
    loads the syntax highlighter; every failing test shows one.
    """
    from IPython.core.ultratb import AutoFormattedTB

    try:
        exec(compile("def warm_up():\n    raise ValueError('warm-up')\nwarm_up()", "<leva-warm-up>", "exec"), {})
    except ValueError:
        try:
            AutoFormattedTB(mode="Context").structured_traceback(*sys.exc_info())
        except Exception:  # noqa: BLE001 - only a head start
            pass


def _close_fds(keep: set[int]) -> None:
    start = 3
    for fd in sorted(keep | {1 << 20}):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1


def _kernel_env(work_dir: str, ctrl_dir: str, mpl_dir: str) -> dict[str, str]:
    env = dict(KERNEL_ENVIRONMENT)
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=work_dir,
        TMPDIR=os.path.join(work_dir, ".tmp"),
        IPYTHONDIR=os.path.join(ctrl_dir, "ipython"),
        MPLCONFIGDIR=mpl_dir,
    )
    return env


def _isolate(spec: FactorySpec, limits: Limits, libc) -> None:
    """Process-level isolation of a freshly forked kernel."""
    os.setsid()
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if not spec.network:
            libc.unshare(CLONE_NEWNET)  # best effort: without the right to, the guard's socket ban remains
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file too large fails the write instead of the kernel
    for which, value in limits.rlimits().items():
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _run_kernel(spec: FactorySpec, baseline, work_dir: str, ctrl_dir: str, config_fd: int, libc) -> None:
    """In the forked child: become a fenced kernel and serve until killed."""
    limits = Limits(**spec.limits)
    devnull = os.open(os.devnull, os.O_RDWR)
    log = os.open(os.path.join(ctrl_dir, "kernel.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out_fd = os.open(os.path.join(ctrl_dir, "guard.out"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for target, source in ((0, devnull), (1, devnull), (2, log)):
        os.dup2(source, target)
    _close_fds({config_fd, out_fd})
    _isolate(spec, limits, libc)

    os.environ.clear()
    os.environ.update(_kernel_env(work_dir, ctrl_dir, spec.mpl_dir))
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    tempfile.tempdir = None
    os.chdir(work_dir)
    # installed libraries come first: a learner's numpy.py next to the notebook cannot replace numpy
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd(), spec.run_root)] + [work_dir]
    sys.dont_write_bytecode = True
    _reseed()

    from ipykernel.kernelapp import IPKernelApp

    from graders import guard

    app = IPKernelApp.instance()
    app.initialize(["-f", os.path.join(ctrl_dir, "kernel.json"), "--HistoryManager.hist_file=:memory:",
                    "--IPKernelApp.quiet=True"])
    # IPython formats each error's traceback a second time, to keep for %history: a grading kernel never
    # shows it, and a failing test's traceback is the slowest thing a kernel does
    app.kernel.shell._format_exception_for_storage = _exception_for_history

    def put_guard_up() -> None:
        try:
            guard.install(baseline, shell=app.kernel.shell, work_dir=work_dir, protected=spec.protected,
                          readable=[*spec.readable, spec.mpl_dir], config_fd=config_fd, out_fd=out_fd)
        except BaseException:  # noqa: BLE001 - no guard, no grading
            import traceback

            traceback.print_exc()
            os._exit(71)

    # the guard goes up in the kernel's running loop, before it reads any message: the loop,
    # its threads and its sockets exist by then, and no cell can have run
    from tornado.ioloop import IOLoop

    IOLoop.current().add_callback(put_guard_up)
    app.start()
    os._exit(0)


def _exception_for_history(exception, filename=None, running_compiled_code=False) -> dict:
    return {"ename": type(exception).__name__, "evalue": "", "traceback": []}


def _reseed() -> None:
    """A forked kernel must not share the factory's random streams with its siblings."""
    import random

    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed(int.from_bytes(os.urandom(4), "little"))


class _Factory:
    """The factory's loop: fork kernels on request, hand them their cell list, kill them."""

    def __init__(self, spec: FactorySpec, baseline) -> None:
        self.spec = spec
        self.baseline = baseline
        self.libc = _libc()
        self.config_pipes: dict[int, int] = {}

    def spawn(self, work_dir: str, ctrl_dir: str) -> int:
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4 * MiB)
        except OSError:
            fcntl.fcntl(write_fd, F_SETPIPE_SZ, MiB)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_fd)
                for fd in self.config_pipes.values():
                    os.close(fd)
                _run_kernel(self.spec, self.baseline, work_dir, ctrl_dir, read_fd, self.libc)
            finally:
                os._exit(70)
        os.close(read_fd)
        self.config_pipes[pid] = write_fd
        return pid

    def configure(self, pid: int, data: bytes) -> None:
        fd = self.config_pipes.pop(pid)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def forget(self, pid: int) -> None:
        fd = self.config_pipes.pop(pid, None)
        if fd is not None:
            os.close(fd)
        _killpg(pid)

    def close(self) -> None:
        for pid in list(self.config_pipes):
            self.forget(pid)

    def serve(self, requests, replies) -> None:
        for line in requests:
            request = json.loads(line)
            op, reply = request["op"], {"ok": True}
            try:
                if op == "spawn":
                    reply["pid"] = self.spawn(request["work"], request["ctrl"])
                elif op == "configure":
                    self.configure(request["pid"], base64.b64decode(request["data"]))
                elif op == "forget":
                    self.forget(request["pid"])
            except Exception as e:  # noqa: BLE001 - report to the worker, keep serving
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if request.get("reply", True):
                replies.write(json.dumps(reply) + "\n")
                replies.flush()


def factory_main(spec_file: str) -> None:
    """Entry point of the factory process: read the spec, import, serve requests on stdin."""
    spec = FactorySpec(**json.loads(Path(spec_file).read_text()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when the factory ends
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped by the system
    loaded = _preload(spec)

    from graders import guard

    baseline = guard.prepare(loaded)
    import gc

    gc.collect()
    gc.freeze()  # forked kernels then share the factory's pages instead of copying them
    factory = _Factory(spec, baseline)
    replies = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    try:
        factory.serve(sys.stdin, replies)
    finally:
        factory.close()


def _killpg(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# ---------------------------------------------------------------------------
# The grader's side
# ---------------------------------------------------------------------------


class SandboxKernelManager:
    """What nbclient needs of a kernel manager, for a kernel of the factory.

    nbclient interrupts a cell that runs past its timeout through
    ``interrupt_kernel``; it does not start or stop these kernels.
    """

    kernel_name = "python3"
    ipykernel = True
    owns_kernel = False

    def __init__(self, kernel: SandboxKernel) -> None:
        self.kernel = kernel

    @property
    def has_kernel(self) -> bool:
        return True

    async def interrupt_kernel(self) -> None:
        try:
            os.kill(self.kernel.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    async def is_alive(self) -> bool:
        return self.kernel.alive()

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        self.kernel.kill()

    async def cleanup_resources(self, restart: bool = False) -> None:
        pass


class SandboxKernel:
    """One kernel of the factory: used for one notebook, then killed."""

    def __init__(self, factory: KernelFactory, pid: int | None, home: Path) -> None:
        self.factory = factory
        self._pid = pid
        self.home = home
        self.client = None
        self.km = SandboxKernelManager(self)
        self.failure = ""  # why the grader ended this kernel, when it did

    @property
    def pid(self) -> int:
        """The kernel's process id (the factory's answer is read when first needed)."""
        if self._pid is None:
            self._pid = self.factory.receive()["pid"]
        return self._pid

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def ctrl_dir(self) -> Path:
        return self.home / "ctrl"

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # the factory's children are reaped by the system, but one may be caught in passing
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """CPU time the kernel process has used so far (user and system)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def start_channels(self) -> None:
        """Connect to the kernel's sockets now; they finish connecting while the kernel starts."""
        from jupyter_client.asynchronous import AsyncKernelClient

        client = AsyncKernelClient()
        client.load_connection_file(str(self.ctrl_dir / "kernel.json"))
        client.start_channels()
        client.allow_stdin = False
        self.client = client

    async def connect(self, timeout: float = 30) -> None:
        """Wait until the kernel answers and its output channel is connected.

        jupyter_client's ``wait_for_ready`` waits for 0.2 s of silence on the
        output channel, a fifth of what a small notebook takes to grade; a
        kernel answering ``kernel_info`` with its status on the output
        channel is just as ready.
        """
        import asyncio
        from queue import Empty

        if self.client is None:
            self.start_channels()
        client, deadline = self.client, asyncio.get_running_loop().time() + timeout
        while True:
            if not self.alive():
                raise RuntimeError("the kernel ended while starting")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the kernel did not answer within {timeout:g} s")
            msg_id = client.kernel_info()
            try:
                reply = await client.get_shell_msg(timeout=1)
            except Empty:
                continue
            if reply["parent_header"].get("msg_id") != msg_id:
                continue
            try:
                await client.get_iopub_msg(timeout=0.05)
            except Empty:
                continue  # output channel not connected yet: ask again
            break
        while True:  # drain what the kernel published for the kernel_info requests
            try:
                await client.get_iopub_msg(timeout=0.01)
            except Empty:
                break

    def configure(self, config: dict) -> None:
        """Hand the guard the submission's cells, in order (see :mod:`graders.guard`)."""
        import marshal

        self.factory.request(op="configure", pid=self.pid, data=base64.b64encode(marshal.dumps(config)).decode())

    def guard_report(self) -> list[str]:
        try:
            return (self.ctrl_dir / "guard.out").read_text(errors="replace").splitlines()
        except OSError:
            return []

    def kernel_log(self, limit: int = 2000) -> str:
        try:
            return (self.ctrl_dir / "kernel.log").read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def terminate(self) -> None:
        """Kill the kernel's processes now (safe from another thread)."""
        _killpg(self.pid)

    def kill(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        _killpg(self.pid)
        try:
            self.factory.send(op="forget", pid=self.pid, reply=False)
        except FactoryError:
            pass

    def discard(self) -> None:
        """Kill the kernel and remove its folders (in the background: nobody waits for that)."""
        self.kill()
        _remove_later(self.home)


class FactoryError(RuntimeError):
    """The kernel factory could not be started or stopped answering."""


class KernelFactory:
    """The grader's handle on one kernel factory process.

    ``take()`` returns a kernel that was forked while the previous notebook
    ran, and forks the next one, so a kernel is usually ready when needed.
    """

    def __init__(self, spec: FactorySpec) -> None:
        self.spec = spec
        self.root = Path(spec.run_root)
        self.root.mkdir(parents=True, exist_ok=True)
        spec_file = Path(tempfile.mkstemp(prefix="factory-", suffix=".json", dir=self.root)[1])
        spec_file.write_text(json.dumps(asdict(spec)))
        self.log_path = spec_file.with_suffix(".log")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graders.sandbox", str(spec_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True, cwd=str(self.root), env=_factory_env())
        self.spare: SandboxKernel | None = None
        self.pending = 0

    def send(self, reply: bool = True, **message) -> None:
        """Ask the factory something; its answers come back in order (:meth:`receive`)."""
        if self.process.poll() is not None:
            raise FactoryError(f"the kernel factory ended; see {self.log_path}")
        try:
            self.process.stdin.write(json.dumps({**message, "reply": reply}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise FactoryError(f"the kernel factory stopped answering ({e}); see {self.log_path}") from None
        self.pending += reply

    def receive(self) -> dict:
        try:
            line = self.process.stdout.readline()
        except OSError as e:
            raise FactoryError(f"the kernel factory stopped answering ({e}); see {self.log_path}") from None
        if not line:
            raise FactoryError(f"the kernel factory ended; see {self.log_path}")
        self.pending -= 1
        reply = json.loads(line)
        if not reply.get("ok"):
            raise FactoryError(reply.get("error", "the kernel factory refused"))
        return reply

    def request(self, **message) -> dict:
        if self.spare is not None:
            self.spare.pid  # noqa: B018 - its answer comes first
        self.send(**message)
        return self.receive()

    def spawn(self) -> SandboxKernel:
        from jupyter_client.connect import write_connection_file

        home = Path(tempfile.mkdtemp(prefix="k", dir=self.root))
        (home / "work").mkdir()
        (home / "ctrl").mkdir()
        write_connection_file(str(home / "ctrl" / "kernel.json"), transport="ipc",
                              ip=str(home / "ctrl" / "ipc"), key=secrets.token_hex(16).encode(),
                              kernel_name="python3")
        self.send(op="spawn", work=str(home / "work"), ctrl=str(home / "ctrl"))
        kernel = SandboxKernel(self, None, home)
        kernel.start_channels()
        return kernel

    def take(self) -> SandboxKernel:
        """A kernel for the next notebook: the spare one, forked while the last notebook ran.

        Call :meth:`refill` once the kernel is configured, to fork the next spare.
        """
        if self.spare is None:
            self.spare = self.spawn()
        kernel, self.spare = self.spare, None
        kernel.pid  # noqa: B018 - read the factory's answer before asking again
        return kernel

    def refill(self) -> None:
        if self.spare is None:
            self.spare = self.spawn()

    def close(self) -> None:
        if self.spare is not None:
            self.spare.discard()
            self.spare = None
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _killpg(self.process.pid)
                self.process.wait()


_cleanup_ready = None


def _remove_later(path: Path) -> None:
    """Remove a kernel's folders in a background thread."""
    import queue
    import threading

    global _cleanup_ready
    if _cleanup_ready is None:
        _cleanup_ready = queue.SimpleQueue()

        def work() -> None:
            while True:
                shutil.rmtree(_cleanup_ready.get(), ignore_errors=True)

        threading.Thread(target=work, name="leva-cleanup", daemon=True).start()
    _cleanup_ready.put(path)


def _factory_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(KERNEL_ENVIRONMENT)
    project = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
    return env


def protected_paths(*roots: os.PathLike | str) -> list[str]:
    """Folders a kernel may not read: the ones given (resolved) and credential files of the home folder."""
    paths = {str(Path(root).resolve()) for root in roots if root}
    home = Path.home()
    paths.update(str(home / name) for name in CREDENTIAL_FILES)
    return sorted(paths)


if __name__ == "__main__":
    factory_main(sys.argv[1])
