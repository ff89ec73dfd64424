"""Watch a member's lessons and report progress to the community service.

What is observed, all inside the member's own server:

- a lesson notebook loaded or saved: jupyter_server's ``contents_service``
  events; on a save the notebook on disk tells how many code cells have run;
- cells run in a lesson's kernel: the kernel's ``execute_input`` broadcasts on
  IOPub, attributed to the notebook of the kernel's session.

A lesson is a notebook that the hub delivered (listed in
``~/.leva/lessons/<course>.json`` by :mod:`hub.lessons`); nothing about other
files leaves the server. Events go to the durable :class:`ProgressQueue` first
and are sent from there with the server's own token, which can reach the
community service and nothing else of other members.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable
from zmq.eventloop.zmqstream import ZMQStream

from .queue import ProgressQueue

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_EVENTS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
OPEN_SESSION_WAIT = 3  # seconds JupyterLab takes to start a notebook's session after reading it
OPENED_AGAIN_AFTER = 300  # seconds: JupyterLab re-reads an open notebook before every save


class ProgressReporter(LoggingConfigurable):
    service_url = Unicode(
        config=True, help="The community service's URL, ending in /services/community/ (LEVA_COMMUNITY_URL)."
    )

    @default("service_url")
    def _service_url(self):
        return os.environ.get("LEVA_COMMUNITY_URL", "")

    home = Unicode(config=True, help="The member's home: lessons are below it, and the queue in its .leva/.")

    queue_file = Unicode(config=True, help="The durable queue of events not yet acknowledged by the service.")

    @default("queue_file")
    def _queue_file(self):
        return str(Path(self.home) / ".leva" / "progress-queue.sqlite")

    flush_interval = Float(2.0, config=True, help="Seconds between two sends while the service answers.")
    max_backoff = Float(10.0, config=True, help="Longest wait between two tries while the service does not answer.")
    batch_size = Integer(100, config=True, help="Events sent in one request at most.")

    def __init__(self, serverapp, **kwargs):
        super().__init__(parent=serverapp, home=kwargs.pop("home", serverapp.root_dir), **kwargs)
        self.serverapp = serverapp
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.queue = ProgressQueue(Path(self.queue_file))
        self._streams: dict[str, ZMQStream] = {}
        self._kernel_paths: dict[str, str] = {}
        self._opened: dict[str, float] = {}
        self._manifests: dict[str, tuple[float, set[str]]] = {}
        self._task = None

    # which notebooks are lessons

    def is_lesson(self, path: str) -> bool:
        parts = path.strip("/").split("/", 1)
        if len(parts) != 2 or not parts[1].endswith(".ipynb"):
            return False
        course, rel = parts
        manifest = Path(self.home) / ".leva" / "lessons" / f"{course}.json"
        try:
            mtime = manifest.stat().st_mtime
        except OSError:
            return False
        cached = self._manifests.get(course)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, set(json.loads(manifest.read_text())))
            except (OSError, ValueError):
                return False
            self._manifests[course] = cached
        return rel in cached[1]

    def cells_run(self, path: str) -> tuple[int, int]:
        """How many of the notebook's code cells have run, and how many there are."""
        try:
            notebook = json.loads((Path(self.home) / path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0, 0
        code = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code" and "".join(c.get("source", "")).strip()]
        return sum(1 for c in code if c.get("execution_count") is not None), len(code)

    # observers

    async def on_contents(self, logger, schema_id, data) -> None:
        path = data.get("path", "")
        if not self.is_lesson(path):
            return
        if data.get("action") == "get":
            if time.monotonic() - self._opened.get(path, -OPENED_AGAIN_AFTER) >= OPENED_AGAIN_AFTER:
                # Listing a folder reads every notebook in it too; only a notebook opened in
                # JupyterLab gets a kernel session, within moments of being read.
                await asyncio.sleep(OPEN_SESSION_WAIT)
                if await self.serverapp.session_manager.session_exists(path=path):
                    self._opened[path] = time.monotonic()
                    self.queue.opened(path)
        elif data.get("action") == "save":
            self.queue.saved(path, *self.cells_run(path))

    async def on_kernel(self, logger, schema_id, data) -> None:
        kernel_id = data.get("kernel_id")
        if not kernel_id or data.get("status") != "success":
            return
        if data.get("action") in ("start", "restart"):
            self.watch_kernel(kernel_id)
        elif data.get("action") == "shutdown":
            self.unwatch_kernel(kernel_id)

    def watch_kernel(self, kernel_id: str) -> None:
        if kernel_id in self._streams:
            return
        try:
            kernel = self.serverapp.kernel_manager.get_kernel(kernel_id)
            stream = kernel.connect_iopub()  # jupyter_server's managers give a ZMQStream already
            if not isinstance(stream, ZMQStream):
                stream = ZMQStream(stream)
        except Exception as e:
            self.log.debug("Cannot watch kernel %s: %s", kernel_id, e)
            return

        def on_message(frames):
            try:
                _, frames = kernel.session.feed_identities(frames)
                message = kernel.session.deserialize(frames, content=False)
            except Exception:
                return
            if message["header"].get("msg_type") == "execute_input":
                asyncio.ensure_future(self.executed(kernel_id))

        stream.on_recv(on_message)
        self._streams[kernel_id] = stream

    def unwatch_kernel(self, kernel_id: str) -> None:
        stream = self._streams.pop(kernel_id, None)
        self._kernel_paths.pop(kernel_id, None)
        if stream is not None:
            stream.close()

    async def executed(self, kernel_id: str) -> None:
        path = self._kernel_paths.get(kernel_id)
        if path is None:
            for session in await self.serverapp.session_manager.list_sessions():
                if session.get("kernel", {}).get("id") == kernel_id:
                    path = self._kernel_paths[kernel_id] = session.get("path", "")
                    break
        if path and self.is_lesson(path):
            self.queue.executed(path)

    def sweep_kernels(self) -> None:
        """Kernels started before the listener, or gone without a shutdown event."""
        running = set(self.serverapp.kernel_manager.list_kernel_ids())
        for kernel_id in running - set(self._streams):
            self.watch_kernel(kernel_id)
        for kernel_id in set(self._streams) - running:
            self.unwatch_kernel(kernel_id)
        self._kernel_paths.clear()  # sessions may have been renamed or moved

    # sending

    async def flush(self) -> bool:
        """Send what waits; False when the service did not take it (the events stay queued)."""
        client = AsyncHTTPClient()
        while True:
            batch = self.queue.take(self.batch_size)
            if not batch:
                return True
            rowids = [rowid for rowid, _ in batch]
            request = HTTPRequest(
                self.service_url.rstrip("/") + "/api/events",
                method="POST",
                headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                body=json.dumps({"events": [event for _, event in batch]}),
                request_timeout=15,
                follow_redirects=False,
            )
            try:
                await client.fetch(request)
            except HTTPClientError as e:
                if e.code == 400:
                    # malformed for this service: sending it again cannot help
                    self.log.warning("Community service refused %d progress events: %s", len(batch), e)
                    self.queue.done(rowids)
                    continue
                self.queue.retry(rowids)
                self.log.info("Community service unavailable (%s); %d events kept", e, len(self.queue))
                return False
            except Exception as e:
                self.queue.retry(rowids)
                self.log.info("Community service unreachable (%s); %d events kept", e, len(self.queue))
                return False
            self.queue.done(rowids)

    async def run(self) -> None:
        delay = self.flush_interval
        while True:
            await asyncio.sleep(delay)
            try:
                self.sweep_kernels()
                sent = await self.flush()
            except Exception:
                self.log.exception("Progress report failed")
                sent = False
            delay = self.flush_interval if sent else min(delay * 2, self.max_backoff)

    def start(self) -> None:
        if not self.service_url or not self.token:
            self.log.warning("Lesson progress is not reported: LEVA_COMMUNITY_URL or JUPYTERHUB_API_TOKEN unset")
            return
        events = self.serverapp.event_logger
        events.add_listener(schema_id=CONTENTS_EVENTS, listener=self.on_contents)
        events.add_listener(schema_id=KERNEL_EVENTS, listener=self.on_kernel)
        self._task = asyncio.ensure_future(self.run())
        self.log.info("Reporting lesson progress to %s (queue %s)", self.service_url, self.queue_file)
