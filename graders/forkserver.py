"""The process ``leva grade``'s workers are forked from.

It imports the grading engine (nbgrader, nbconvert, SQLAlchemy: seconds of
CPU) once; each worker is a fork of it.  Started as soon as the command
starts, it imports while the command imports the same for itself.  This
module imports nothing heavy, so that it can be used first.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver

PRELOAD = ["graders.autograde"]


def context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context whose processes are forks of the grading forkserver."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start() -> None:
    """Start the forkserver now, without waiting for its imports."""
    context()
    multiprocessing.forkserver.ensure_running()
