"""A jupyter_server extension in each member's server: lesson progress for the community service.

Enabled in ``hub/jupyter/member/jupyter_server_config.py``; configured with
``c.ProgressReporter.*`` (see :class:`.reporter.ProgressReporter`).
"""

from __future__ import annotations

from .reporter import ProgressReporter


def _jupyter_server_extension_points():
    return [{"module": "hub.progress_extension"}]


def _load_jupyter_server_extension(serverapp):
    serverapp.web_app.settings["leva_progress_reporter"] = ProgressReporter(serverapp)


async def _start_jupyter_server_extension(serverapp):
    # listeners and the sending loop need the server's running event loop
    serverapp.web_app.settings["leva_progress_reporter"].start()
