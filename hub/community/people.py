"""Who the hub's members are: their admin flag and the courses they learn and teach.

The hub is the one source of these facts (groups ``nbgrader-<course>`` and
``formgrade-<course>``, the admin role); the service reads them with its own
token (``list:users``, ``read:users``) and keeps a copy refreshed every few
seconds, so access decisions follow the hub without asking it on every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httputil import url_concat

from ..roster import instructor_group, learner_group

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Person:
    name: str
    admin: bool = False
    learns: frozenset[str] = frozenset()
    teaches: frozenset[str] = frozenset()
    # the hub's time of their last activity (ISO), for the administration pages; not a right
    last_activity: str | None = field(default=None, compare=False)

    @property
    def courses(self) -> frozenset[str]:
        return self.learns | self.teaches

    @classmethod
    def from_hub(cls, model: dict) -> "Person":
        groups = set(model.get("groups") or ())
        learns = {g[len(learner_group("")):] for g in groups if g.startswith(learner_group(""))}
        teaches = {g[len(instructor_group("")):] for g in groups if g.startswith(instructor_group(""))}
        return cls(
            model["name"], bool(model.get("admin")), frozenset(learns), frozenset(teaches), model.get("last_activity")
        )


class HubPeople:
    """A copy of the hub's users, refreshed at most every ``max_age`` seconds."""

    def __init__(self, api_url: str | None = None, token: str | None = None, max_age: float = 10.0):
        self.api_url = (api_url or os.environ.get("JUPYTERHUB_API_URL", "")).rstrip("/")
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.max_age = max_age
        self._people: dict[str, Person] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def _fetch_all(self) -> dict[str, Person]:
        client = AsyncHTTPClient()
        people, offset = {}, 0
        while True:
            url = url_concat(f"{self.api_url}/users", {"offset": offset, "limit": 200})
            request = HTTPRequest(
                url,
                headers={"Authorization": f"token {self.token}", "Accept": "application/jupyterhub-pagination+json"},
                request_timeout=20,
            )
            body = json.loads((await client.fetch(request)).body)
            for model in body["items"]:
                people[model["name"]] = Person.from_hub(model)
            following = (body.get("_pagination") or {}).get("next")
            if not following:
                return people
            offset = following["offset"]

    async def fetch(self, name: str) -> Person | None:
        """One member as the hub has them now, bypassing the copy (for decisions that must be current)."""
        request = HTTPRequest(
            f"{self.api_url}/users/{quote(name, safe='')}", headers={"Authorization": f"token {self.token}"},
            request_timeout=20,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 404:
            self._people.pop(name, None)
            return None
        response.rethrow()
        person = Person.from_hub(json.loads(response.body))
        self._people[name] = person
        return person

    async def refresh(self, force: bool = False) -> dict[str, Person]:
        async with self._lock:
            if force or time.monotonic() - self._fetched > self.max_age:
                try:
                    self._people = await self._fetch_all()
                    self._fetched = time.monotonic()
                except Exception as e:  # the hub restarting: keep the last copy
                    log.warning("Could not list the hub's users: %s", e)
                    if not self._people:
                        raise
        return self._people

    async def all(self) -> dict[str, Person]:
        return await self.refresh()

    async def get(self, name: str) -> Person | None:
        people = await self.refresh()
        if name not in people and time.monotonic() - self._fetched > 1:
            # a member added since the last refresh
            people = await self.refresh(force=True)
        return people.get(name)

    async def learners_of(self, course: str) -> list[Person]:
        return sorted((p for p in (await self.all()).values() if course in p.learns), key=lambda p: p.name)
