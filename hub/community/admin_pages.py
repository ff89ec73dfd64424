"""The administration pages: the hub's members, and what ``leva member ...`` does to them.

- ``admin/members``: every member with their name, role, enrolments, last
  activity (the hub's) and whether they are deactivated; searched, filtered and
  paged on the server, so a page stays small with thousands of members.
- ``admin/members/<username>``: one member, and the actions of the command
  line: enrol in a course (as learner or instructor), unenrol, change role,
  deactivate, reactivate, and a new password (generated, shown once). Each
  action calls the same :class:`hub.admin.Administration` method as ``leva``
  (a new password: the member store, as ``leva member set-password``), and the
  page lists what it changed.

Who: hub admins only (:meth:`.access.Access.administers`), asked of the hub at
every request rather than of the copy of members the other pages use, so a
revoked admin loses the pages at once; anyone else gets 403. Actions are POSTs
whose form carries the ``_xsrf`` token: without it HubOAuth ignores the cookie
and the request is refused.

With what authority: the service does these things as the ``leva-admin``
service, with the token the hub keeps in ``<state dir>/leva-admin-token``.
That is the trust of the ``leva`` command: the hub runs this service as its
own system user, the one account that may read the token, and the service uses
it only for a viewer the hub has just confirmed as an admin. Its own token
stays read-only.
"""

from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from tornado import web

from ..admin import Administration, Change
from ..hubapi import HubAPI, HubError, admin_token
from ..members import MemberStore, generate_password
from ..roster import COURSE_ROLES, ROLES
from ..settings import Settings, load_settings
from .access import Access
from .member_data import MemberData
from .pages import PageHandler
from .people import Person
from .state import Community

PAGE_SIZE = 50
STATUSES = ("active", "deactivated")


def role_of(person: Person) -> str:
    """The roster's role: admin, else instructor if they teach a course, else learner."""
    return "admin" if person.admin else "instructor" if person.teaches else "learner"


def enrolments(person: Person) -> list[tuple[str, str]]:
    return sorted([(c, "learner") for c in person.learns] + [(c, "instructor") for c in person.teaches])


class MemberAdmin:
    """What the pages administer with: the hub as ``leva-admin``, the member store, the community hook."""

    def __init__(self, community: Community, settings: Settings | None = None):
        self.community = community
        self.settings = settings or load_settings()
        self._api: HubAPI | None = None
        self._store: MemberStore | None = None
        # one action at a time, off the event loop (the hub API client and the databases block)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="member-admin")

    @property
    def api(self) -> HubAPI:
        if self._api is None:
            url = os.environ.get("JUPYTERHUB_API_URL") or f"http://127.0.0.1:{self.settings.port}/hub/api"
            self._api = HubAPI(url, admin_token(self.settings.state_dir))
        return self._api

    @property
    def store(self) -> MemberStore:
        if self._store is None:
            self._store = MemberStore(self.settings.members_db_url)
        return self._store

    def administration(self) -> Administration:
        # a new one for each action: it caches gradebook students, which `leva` may change meanwhile
        return Administration(
            api=self.api,
            store=self.store,
            courses=self.community.catalogue,
            state_dir=self.settings.state_dir,
            gradebook_template=self.settings.gradebook_url,
            community=MemberData(sessions=self.community.sessions),
        )

    async def run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)


def _matches(row: dict, q: str) -> bool:
    q = q.casefold()
    return any(q in (row[key] or "").casefold() for key in ("username", "full_name", "email"))


def member_rows(people: dict[str, Person], records: dict, filters: dict) -> list[dict]:
    """The members that pass every filter (q: username, name or e-mail; role; course; status), by username."""
    rows = []
    for name in sorted(people):
        person, record = people[name], records.get(name)
        row = {
            "username": name,
            "full_name": record.full_name if record else "",
            "email": record.email if record else "",
            "role": role_of(person),
            "enrolments": enrolments(person),
            "last_activity": person.last_activity,
            "active": bool(record.active) if record else True,  # no record: added in /hub/admin, never deactivated
        }
        if filters.get("q") and not _matches(row, filters["q"]):
            continue
        if filters.get("role") and row["role"] != filters["role"]:
            continue
        if filters.get("course") and filters["course"] not in person.courses:
            continue
        if filters.get("status") and row["active"] != (filters["status"] == "active"):
            continue
        rows.append(row)
    return rows


class AdminPage(PageHandler):
    @property
    def admin(self) -> MemberAdmin:
        return self.settings["member_admin"]

    async def admin_access(self) -> Access:
        """The viewer's rights, fresh from the hub; 403 unless they are a hub admin."""
        user = self.current_user
        if not user or user.get("kind", "user") != "user":
            raise web.HTTPError(403, "Only the hub's admins administer members")
        person = await self.community.people.fetch(user["name"])
        self.viewer_access = Access(person or Person(user["name"]))
        if not self.viewer_access.administers():
            raise web.HTTPError(403, "Only the hub's admins administer members")
        return self.viewer_access


class MembersAdminPage(AdminPage):
    @web.authenticated
    async def get(self):
        await self.admin_access()
        filters = {key: self.get_argument(key, "").strip() for key in ("q", "role", "course", "status")}
        try:
            page = max(1, int(self.get_argument("page", "1")))
        except ValueError:
            page = 1
        people = await self.community.people.all()
        records = await self.admin.run(self.admin.store.all)
        rows = member_rows(people, records, filters)
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        page = min(page, pages)
        query = {k: v for k, v in filters.items() if v}
        self.render_page(
            "admin_members.html", rows=rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], total=len(rows),
            everyone=len(people), page=page, pages=pages, filters=filters, roles=ROLES, statuses=STATUSES,
            courses=sorted(self.community.catalogue),
            page_url=lambda n: f"{self.settings['prefix']}admin/members?{urlencode({**query, 'page': n})}",
        )


# an action's name -> how it runs: (Administration, username, form) -> list of changes
ACTIONS = {
    "enrol": lambda admin, name, form: admin.enrol(name, form("course"), form("as", "learner")),
    "unenrol": lambda admin, name, form: admin.unenrol(name, form("course")),
    "role": lambda admin, name, form: admin.set_role(name, form("role")),
    "deactivate": lambda admin, name, form: admin.deactivate(name),
    "reactivate": lambda admin, name, form: admin.reactivate(name),
}


class MemberAdminPage(AdminPage):
    async def _member(self, username: str) -> Person:
        person = await self.community.people.fetch(username)
        if person is None:
            raise web.HTTPError(404, f"No member {username}")
        return person

    async def _render(self, person: Person, status: int = 200, **result):
        record = await self.admin.run(self.admin.store.get, person.name)
        self.render_page(
            "admin_member.html", status=status, member=person, record=record, role=role_of(person),
            enrolments=enrolments(person), active=bool(record.active) if record else True, roles=ROLES,
            course_roles=COURSE_ROLES, courses=[self.community.catalogue[c] for c in sorted(self.community.catalogue)],
            changes=result.get("changes"), error=result.get("error"), password=result.get("password"),
        )

    @web.authenticated
    async def get(self, username):
        await self.admin_access()
        await self._render(await self._member(username))

    @web.authenticated
    async def post(self, username):
        access = await self.admin_access()
        person = await self._member(username)
        action = self.get_body_argument("action", "")
        form = lambda key, default="": self.get_body_argument(key, default).strip()  # noqa: E731
        if action == "password":
            password = generate_password()
            await self.admin.run(self.admin.store.set_password, username, password)
            return await self._render(person, changes=[f"{username}: password set"], password=password)
        if action not in ACTIONS:
            return await self._render(person, 400, error=f"Unknown action {action!r}")
        if action == "role" and form("role") not in ROLES:
            return await self._render(person, 400, error=f"A role is one of {', '.join(ROLES)}")
        if access.is_self(person) and (action == "deactivate" or (action == "role" and form("role") != "admin")):
            # the page would lock its own admin out; another admin, or `leva`, can do it
            return await self._render(person, 400, error="You cannot deactivate yourself or drop your own admin role here")
        try:
            changes: list[Change] = await self.admin.run(ACTIONS[action], self.admin.administration(), username, form)
        except (KeyError, ValueError) as e:
            return await self._render(person, 400, error=str(e.args[0]))
        except HubError as e:
            return await self._render(person, 502, error=str(e))
        person = await self._member(username)  # as the hub has them now
        await self._render(person, changes=[str(c) for c in changes] or ["nothing to change"])


def admin_handlers(prefix: str) -> list:
    return [
        (f"{prefix}admin/members", MembersAdminPage),
        (f"{prefix}admin/members/([^/]+)", MemberAdminPage),
    ]
