"""What the service's handlers share: the hub's sign-in (HubOAuth) and the viewer's access.

A request is authenticated by an API token (``Authorization: token ...``) or by
the service's OAuth cookie. JupyterHub's HubOAuth ignores the cookie on a
write (POST, PATCH) that lacks the XSRF token, so a foreign page cannot make a
member's browser change their profile.
"""

from __future__ import annotations

import json

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from .access import Access
from .people import Person
from .state import Community


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    viewer_access: Access | None = None

    @property
    def community(self) -> Community:
        return self.settings["community"]

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    async def access(self) -> Access:
        """The signed-in member's rights; 403 for anyone else (services included)."""
        user = self.current_user
        if not user or user.get("kind", "user") != "user":
            self.forbidden()
        person = await self.community.people.get(user["name"])
        self.viewer_access = Access(person or Person(user["name"]))  # pages show admins their links
        return self.viewer_access

    def forbidden(self):
        raise web.HTTPError(403, "Sign in to the hub first (a write with the cookie needs the _xsrf token)")

    async def person(self, username: str) -> Person:
        person = await self.community.people.get(username)
        if person is None:
            raise web.HTTPError(404, f"No member {username}")
        return person

    def course(self, course_id: str):
        course = self.community.catalogue.get(course_id)
        if course is None:
            raise web.HTTPError(404, f"No course {course_id}")
        return course


class JSONHandler(BaseHandler):
    """API handlers: JSON in and out, 403 instead of a redirect to the sign-in page."""

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def get_login_url(self):
        self.forbidden()

    def json_body(self):
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "The body is not JSON") from None

    def write_json(self, data, status: int = 200):
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code, **kwargs):
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], web.HTTPError) and exc_info[1].log_message:
            message = exc_info[1].log_message % exc_info[1].args if exc_info[1].args else exc_info[1].log_message
        self.finish(json.dumps({"status": status_code, "message": message}))
