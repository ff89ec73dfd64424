"""A real JupyterHub for tests, and a member's browser-like session with it.

``RunningHub`` starts ``jupyterhub -f jupyterhub_config.py`` exactly as
``make run`` does, with its own state dir, course copy and free ports.
``Member`` signs in through the login form and talks to the hub and to the
member's own server over HTTP and websockets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import requests
import websocket

PROJECT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "demo-password-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RunningHub:
    """A JupyterHub process with the project's config, on free ports."""

    def __init__(self, state_dir: Path, courses_dir: Path, roster: Path, extra_args=(), env=None):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LEVA_STATE_DIR": str(state_dir),
            "LEVA_COURSES_DIR": str(courses_dir),
            "LEVA_ROSTER": str(roster),
            "LEVA_PORT": str(self.port),
            "LEVA_DEMO_PASSWORD": DEMO_PASSWORD,
            **(env or {}),
        }
        self.args = [
            f"--JupyterHub.hub_port={free_port()}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
            *extra_args,
        ]
        self.log_path = state_dir.parent / f"{state_dir.name}-hub.log"
        self.proc = None

    def start(self, timeout: float = 180) -> None:
        """Start the hub and wait until it answers (its first start also releases assignments
        and starts every service, which takes a while on a busy machine)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(PROJECT / "jupyterhub_config.py"), *self.args],
            cwd=self.state_dir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}; see {self.log_path}:\n{self.log()[-3000:]}")
            try:
                return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_for(up, timeout, "the hub to answer")
        except BaseException:
            self.stop()  # never leave a hub behind that the next test would trip over
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def login(self, username: str, password: str = DEMO_PASSWORD) -> "Member":
        member = Member(self, username)
        response = member.sign_in(password)
        assert response.status_code == 200 and "/hub/login" not in response.url, (
            f"{username} could not sign in: {response.status_code} {response.url}"
        )
        return member


class Member:
    """What a member's browser does: cookies, XSRF tokens, redirects."""

    def __init__(self, hub: RunningHub, username: str):
        self.hub = hub
        self.name = username
        self.http = requests.Session()

    def sign_in(self, password: str, follow: bool = True) -> requests.Response:
        self.http.get(f"{self.hub.url}/hub/login")
        return self.http.post(
            f"{self.hub.url}/hub/login",
            data={"username": self.name, "password": password, "_xsrf": self.http.cookies.get("_xsrf", path="/hub/")},
            allow_redirects=follow,
        )

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-XSRFToken": self.http.cookies.get("_xsrf", path="/hub/") or ""}
        return self.http.request(method, f"{self.hub.url}/hub/api{path}", headers=headers, **kwargs)

    def form(self, path: str, data: dict) -> requests.Response:
        """POST a hub form as the browser does: with the page's XSRF token."""
        data = {**data, "_xsrf": self.http.cookies.get("_xsrf", path="/hub/")}
        return self.http.post(f"{self.hub.url}{path}", data=data)

    # the member's own server

    def start_server(self, timeout: float = 120) -> None:
        r = self.hub_api("POST", f"/users/{self.name}/server")
        assert r.status_code in (201, 202, 400), f"spawn failed: {r.status_code} {r.text}"

        def ready():
            model = self.hub_api("GET", f"/users/{self.name}").json()
            server = model.get("servers", {}).get("")
            return server and server.get("ready")

        wait_for(ready, timeout, f"{self.name}'s server")

    def stop_server(self, timeout: float = 60) -> None:
        self.hub_api("DELETE", f"/users/{self.name}/server")
        wait_for(lambda: not self.hub_api("GET", f"/users/{self.name}").json().get("servers"), timeout, "the server to stop")

    def server(self, method: str, path: str, user: str | None = None, **kwargs) -> requests.Response:
        """A request to a user's server (default: one's own) with one's own API token."""
        headers = {"Authorization": f"token {self.token}"}
        return self.http.request(method, f"{self.hub.url}/user/{user or self.name}{path}", headers=headers, **kwargs)

    @property
    def token(self) -> str:
        """An API token of this member, made through the hub API with the browser session."""
        if not hasattr(self, "_token"):
            r = self.hub_api("POST", f"/users/{self.name}/tokens", json={"note": "tests", "expires_in": 3600})
            assert r.status_code == 201, r.text
            self._token = r.json()["token"]
        return self._token

    def execute(self, code: str, timeout: float = 60) -> str:
        """Run code in a new kernel of one's server; return what it printed or evaluated to."""
        kernel = self.server("POST", "/api/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, kernel.text
        kernel_id = kernel.json()["id"]
        ws_url = urlparse(self.hub.url)._replace(scheme="ws").geturl()
        ws = websocket.create_connection(
            f"{ws_url}/user/{self.name}/api/kernels/{kernel_id}/channels",
            header={"Authorization": f"token {self.token}"},
            timeout=timeout,
        )
        try:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                           "session": uuid.uuid4().hex, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False},
            }))
            output = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind == "execute_result":
                    output.append(content["data"]["text/plain"])
                elif kind == "error":
                    raise AssertionError(f"kernel error: {content['ename']}: {content['evalue']}")
                elif kind == "status" and content["execution_state"] == "idle":
                    return "".join(output)
            raise TimeoutError("no reply from the kernel")
        finally:
            ws.close()
            self.server("DELETE", f"/api/kernels/{kernel_id}")


# nbgrader through the hub: a member's server (assignments) and a course's formgrader service

def formgrader(member: Member, method: str, path: str, course: str = "digital-marketing", **kwargs):
    """A call to a course's formgrader API, with the member's own token."""
    url = f"{member.hub.url}/services/{course}/formgrader/api{path}"
    return member.http.request(method, url, headers={"Authorization": f"token {member.token}"}, **kwargs)


def ok(response):
    assert response.status_code == 200, f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}"
    body = response.json()
    if isinstance(body, dict) and "success" in body:
        assert body["success"], body
    return body


def assignments(member: Member, course: str) -> dict:
    body = ok(member.server("GET", "/assignments", params={"course_id": course}))
    return {a["assignment_id"]: a for a in body["value"]}


def action(member: Member, verb: str, course: str, assignment: str):
    return member.server("POST", f"/assignments/{verb}", data={"course_id": course, "assignment_id": assignment})
