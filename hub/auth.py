"""Members-only sign-in for the hub.

``LevaAuthenticator`` checks a username and password against the member store
(:mod:`hub.members`): Argon2 hashes, a lockout after repeated failures, and
the same answer for an unknown user as for a wrong password.  It adds two pages
to the hub: ``/hub/password`` where members change their own password and
``/hub/password/<user>`` where admins set one (after adding the member in the
hub's admin page).
"""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web
from traitlets import Integer, Unicode, default

from .members import MemberStore, generate_password


class LevaAuthenticator(Authenticator):
    """Username and password, for members listed in the member store."""

    db_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the member store (credentials and failed sign-ins).",
    )
    max_failures = Integer(
        5, config=True, help="Failed sign-ins within `failure_window` that lock a username."
    )
    failure_window = Integer(
        900, config=True, help="Seconds over which failed sign-ins are counted."
    )
    lockout_seconds = Integer(
        300, config=True, help="Seconds a username stays locked once `max_failures` is reached."
    )

    @default("any_allow_config")
    def _default_any_allow_config(self):
        return True  # membership in the member store is the allow list

    @default("db_url")
    def _default_db_url(self):
        return "sqlite:///members.sqlite"

    _store = None

    @property
    def store(self) -> MemberStore:
        if self._store is None:
            self._store = MemberStore(
                self.db_url,
                max_failures=self.max_failures,
                window_seconds=self.failure_window,
                lockout_seconds=self.lockout_seconds,
            )
        return self._store

    async def authenticate(self, handler, data):
        username = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        # Argon2 is deliberately slow: keep it off the hub's event loop.
        if await asyncio.to_thread(self.store.check_password, username, password):
            return username
        if self.store.is_locked(username):
            self.log.warning("Sign-in refused for %r: locked after repeated failures", username[:64])
        return None

    @default("auth_refresh_age")
    def _default_auth_refresh_age(self):
        return 60  # how soon a deactivated member's open sessions end

    def check_allowed(self, username, authentication=None):
        return self.store.is_active(username)

    async def refresh_user(self, user, handler=None):
        """End the sessions of a member who has been deactivated (False forces a new sign-in)."""
        return self.store.is_active(user.name)

    def add_user(self, user):
        """A member added in the admin page: known, but without a password until an admin sets one."""
        if not self.store.exists(user.name):
            self.store.add(user.name)
        return super().add_user(user)

    def delete_user(self, user):
        self.store.remove(user.name)
        return super().delete_user(user)

    def get_handlers(self, app):
        return super().get_handlers(app) + [
            (r"/password", PasswordHandler),
            (r"/password/(?P<user_name>[^/]+)", MemberPasswordHandler),
        ]


class _PasswordPage(BaseHandler):
    async def render_page(self, **ns):
        html = await self.render_template("password.html", **ns)
        self.finish(html)

    @property
    def store(self) -> MemberStore:
        return self.authenticator.store


class PasswordHandler(_PasswordPage):
    """A member changes their own password."""

    @web.authenticated
    async def get(self):
        await self.render_page(target=self.current_user.name, own=True)

    @web.authenticated
    async def post(self):
        name = self.current_user.name
        current = self.get_body_argument("current_password", "")
        new = self.get_body_argument("new_password", "")
        if new != self.get_body_argument("confirm_password", ""):
            return await self.render_page(target=name, own=True, error="The new passwords do not match.")
        if not await asyncio.to_thread(self.store.check_password, name, current):
            self.set_status(403)
            return await self.render_page(target=name, own=True, error="The current password is wrong.")
        try:
            self.store.set_password(name, new)
        except ValueError as e:
            return await self.render_page(target=name, own=True, error=f"{str(e).capitalize()}.")
        await self.render_page(target=name, own=True, message="Your password has been changed.")


class MemberPasswordHandler(_PasswordPage):
    """An admin sets a member's password: typed in, or generated and shown once."""

    @web.authenticated
    @needs_scope("admin:users")
    async def get(self, user_name):
        self._find(user_name)
        await self.render_page(target=user_name, own=False)

    @web.authenticated
    @needs_scope("admin:users")
    async def post(self, user_name):
        self._find(user_name)
        password = self.get_body_argument("new_password", "") or generate_password()
        try:
            self.store.set_password(user_name, password)
        except ValueError as e:
            return await self.render_page(target=user_name, own=False, error=f"{str(e).capitalize()}.")
        self.log.info("Password of %s set by %s", user_name, self.current_user.name)
        await self.render_page(target=user_name, own=False, message="Password set.", new_password=password)

    def _find(self, user_name):
        if self.find_user(user_name) is None:
            raise web.HTTPError(404, "No such member")
