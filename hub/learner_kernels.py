"""nbgrader's autograde with the learner's rights, not root's (isolated mode).

A course's formgrader runs as root, and nbgrader's ``Execute`` preprocessor
starts one kernel per submitted notebook. Configured by :mod:`hub.permissions`
(``c.Autograde.autograde_preprocessors``), that kernel here:

- runs as ``grading-<learner>``: an account that owns nothing and belongs to no
  course group, so the submission can read no more than its learner could.
  It is not the learner's own ``jupyter-<learner>``, whose running server could
  otherwise attach to the kernel grading it (signals, ptrace, its connection
  file) and change its marks;
- starts in a private copy of the submission's folder without its notebooks
  (the notebook being graded holds the hidden tests again), with that copy as
  its home and an environment of a few variables: none of the formgrader's
  tokens;
- has :data:`GRADING_LIMITS`, CPU seconds included (a grading kernel is short-lived),
  and no network where the host allows network namespaces: nothing it reads or
  runs (the hidden tests pass through it) goes out over the network, and no
  local service is in reach; the grader talks to it over sockets in its sandbox;
- leaves nothing behind: its copy is removed and whatever it started is killed.

:func:`hub.isolation.demote` is the same step for any other grader
(``leva grade`` and its sandbox), see SECURITY.md.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from .isolation import (
    GiB, Limits, chown_tree, demote, ensure_account, grading_account_name, kill_processes, network_namespaces,
)

MiB = 1024**2
GRADING_LIMITS = Limits(memory=2 * GiB, processes=64, cpu_seconds=600, open_files=1024, file_size=256 * MiB)
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "NBGRADER_EXECUTION", "VIRTUAL_ENV")


class GradingSandbox:
    """A private folder for one grading kernel: ``work/`` (its cwd) and its home, owned by the grading account."""

    def __init__(self, student: str, source: str | os.PathLike):
        name = grading_account_name(student)
        self.account = ensure_account(name, "/nonexistent", f"Leva grading of {student}")
        self.home = Path(tempfile.mkdtemp(prefix="leva-grading-"))
        self.work = self.home / "work"
        shutil.copytree(
            source, self.work, symlinks=True,
            ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"),
        )
        (self.home / "tmp").mkdir()
        chown_tree(self.home, self.account.pw_uid, self.account.pw_gid)

    def env(self, inherited) -> dict[str, str]:
        env = {k: inherited[k] for k in ENV_KEEP if k in inherited}
        env.update(
            HOME=str(self.home), TMPDIR=str(self.home / "tmp"), USER=self.account.pw_name,
            LOGNAME=self.account.pw_name, MPLBACKEND="agg",
        )
        return env

    def remove(self) -> None:
        kill_processes(self.account.pw_uid)
        shutil.rmtree(self.home, ignore_errors=True)


class LearnerKernelManager(AsyncKernelManager):
    """A kernel of one learner's submission, run by their grading account in a sandbox."""

    student = Unicode("", help="The hub username whose submission this kernel runs.")

    sandbox = None

    async def _async_pre_start_kernel(self, **kw):
        if not self.student:
            raise RuntimeError("a grading kernel needs the learner it grades")
        source = kw.get("cwd") or os.getcwd()
        self.sandbox = await asyncio.to_thread(GradingSandbox, self.student, source)
        # the kernel reads its connection file: inside the sandbox, not root's runtime folder
        self.connection_file = str(self.sandbox.home / "kernel.json")
        if network_namespaces():
            # no network for the kernel, so the grader talks to it over sockets in the sandbox
            self.transport, self.ip, self.cache_ports = "ipc", str(self.sandbox.home / "ipc"), False
        kw["cwd"] = str(self.sandbox.work)
        kw["env"] = self.sandbox.env(kw.get("env") or os.environ)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        account = self.sandbox.account
        os.lchown(self.connection_file, account.pw_uid, account.pw_gid)
        kw["preexec_fn"] = demote(account.pw_name, GRADING_LIMITS, home=str(self.sandbox.work),
                                  network=not network_namespaces())
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.remove)
            self.sandbox = None


class LearnerExecute(Execute):
    """nbgrader's Execute, with each notebook's kernel run as the learner who submitted it."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = LearnerKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._student = resources["nbgrader"]["student"]
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.student = self._student
        return km


def autograde_preprocessors() -> list:
    """nbgrader's autograde steps, with :class:`LearnerExecute` in place of ``Execute``."""
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [LearnerExecute if step is Execute else step for step in default]


def learner_account(student: str) -> pwd.struct_passwd:
    """The grading account of a learner, created when missing (for graders outside nbgrader)."""
    return ensure_account(grading_account_name(student), "/nonexistent", f"Leva grading of {student}")
