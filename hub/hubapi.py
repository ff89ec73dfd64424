"""The ``leva`` command's way into the running hub: its REST API, as the ``leva-admin`` service.

The service is an admin of the hub: administering members includes granting
admin rights, which JupyterHub reserves to admins.  Its token is made once and
kept in the state dir, readable by the hub's own system user only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import requests

SERVICE = "leva-admin"


def admin_token(state_dir: Path) -> str:
    path = state_dir / "leva-admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def admin_service(state_dir: Path) -> dict:
    return {"name": SERVICE, "api_token": admin_token(state_dir), "admin": True}


class HubError(RuntimeError):
    pass


class HubAPI:
    """A small client of the hub's REST API."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    @classmethod
    def from_settings(cls, settings) -> "HubAPI":
        return cls(f"http://127.0.0.1:{settings.port}/hub/api", admin_token(settings.state_dir))

    def call(self, method: str, path: str, ok=(200, 201, 204), **kwargs):
        try:
            r = self.http.request(method, f"{self.url}{path}", timeout=60, **kwargs)
        except requests.ConnectionError:
            raise HubError(f"the hub does not answer at {self.url}; start it (make run) first") from None
        if r.status_code not in ok:
            raise HubError(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    def users(self) -> dict[str, dict]:
        """Every user, by name (following the API's pagination)."""
        users, offset = {}, 0
        headers = {"Accept": "application/jupyterhub-pagination+json"}
        while True:
            page = self.call("GET", "/users", params={"offset": offset, "limit": 200}, headers=headers)
            users.update({u["name"]: u for u in page["items"]})
            offset = (page["_pagination"].get("next") or {}).get("offset")
            if not offset:
                return users

    def user(self, name: str) -> dict | None:
        return self.call("GET", f"/users/{name}", ok=(200, 404)) if name else None

    def create_users(self, names: list[str]) -> None:
        if names:
            self.call("POST", "/users", json={"usernames": names})

    def set_admin(self, name: str, admin: bool) -> None:
        self.call("PATCH", f"/users/{name}", json={"admin": admin})

    def ensure_group(self, group: str) -> None:
        self.call("POST", f"/groups/{group}", ok=(201, 409))  # 409: it exists already

    def add_to_group(self, group: str, names: list[str]) -> None:
        if names:
            self.call("POST", f"/groups/{group}/users", json={"users": names})

    def remove_from_group(self, group: str, names: list[str]) -> None:
        if names:
            self.call("DELETE", f"/groups/{group}/users", json={"users": names})

    def stop_server(self, name: str) -> None:
        self.call("DELETE", f"/users/{name}/server", ok=(202, 204, 400, 404))

    def revoke_tokens(self, name: str) -> int:
        tokens = self.call("GET", f"/users/{name}/tokens")
        for token in tokens.get("api_tokens", []):
            self.call("DELETE", f"/users/{name}/tokens/{token['id']}", ok=(204, 404))
        return len(tokens.get("api_tokens", []))

    def delete_user(self, name: str) -> None:
        self.call("DELETE", f"/users/{name}", ok=(204, 404))
