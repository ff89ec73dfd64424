"""Leva's hub side: authenticator, spawner, lesson delivery, roster, grading services and the ``leva`` command."""

import os
import sys

# nbgrader's Gradebook runs the `alembic` command of this environment: keep the
# environment's commands findable when a program was started by its full path.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_bin, os.environ.get("PATH", "")])
