"""The HTML pages: the directory, profiles and their edit form, course pages, badges.

Pages show the same views as the API (:mod:`.views`); Jinja2 escapes every
value, and the only HTML written by members that is shown as HTML is the
sanitised bio.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from tornado import web

from .access import HIDEABLE_FIELDS
from .base import BaseHandler
from .models import VISIBILITIES, Badge, Profile
from .profiles import ProfileError, update_profile
from .views import course_learners, directory, leaderboard, member_view, score_distribution, suggestions

TEMPLATES = Path(__file__).resolve().parent / "templates"


def when(value: str | None) -> str:
    """An ISO time of the API as people read it: ``2026-11-24 07:34 UTC``."""
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def template_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True))
    env.filters["when"] = when
    return env


class PageHandler(BaseHandler):
    def forbidden(self):
        # a page asks the hub to sign the member in, then comes back
        self.redirect(self.get_login_url())
        raise web.Finish()

    def render_page(self, name: str, status: int = 200, **context):
        user = self.current_user
        template = self.settings["jinja"].get_template(name)
        self.set_status(status)
        self.finish(
            template.render(
                prefix=self.settings["prefix"],
                hub_prefix=self.hub_auth.hub_prefix,
                user=user["name"] if user else None,
                xsrf=self.xsrf_token.decode() if user else "",
                is_admin=bool(self.viewer_access and self.viewer_access.administers()),
                **context,
            )
        )

    def write_error(self, status_code, **kwargs):
        message = self._reason
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.render_page("error.html", status=status_code, code=status_code, message=message)


class DirectoryPage(PageHandler):
    @web.authenticated
    async def get(self):
        access = await self.access()
        filters = {k: self.get_argument(k, "").strip() for k in ("skill", "interest", "course", "city", "q")}
        with self.community.session() as db:
            members = await directory(self.community, db, access, filters)
        course_ids = sorted(self.community.catalogue) if access.viewer.admin else sorted(access.viewer.courses)
        self.render_page(
            "directory.html", members=members, filters=filters, me=access.viewer,
            courses=[self.community.catalogue[c] for c in course_ids if c in self.community.catalogue],
        )


class ProfilePage(PageHandler):
    @web.authenticated
    async def get(self, username):
        access = await self.access()
        target = await self.person(username)
        with self.community.session() as db:
            view = member_view(self.community, db, access, target, self.community.profile(db, username))
            found = await suggestions(self.community, db, access) if access.is_self(target) else []
        if view is None:
            raise web.HTTPError(404, f"No member {username}")
        self.render_page(
            "profile.html", member=view, mine=access.can_edit(target), suggestions=found,
            catalogue=self.community.catalogue,
        )


def _form_to_patch(form) -> dict:
    """The edit form's fields as the API's PATCH body."""
    links = []
    for line in form.get("links", "").splitlines():
        label, _, url = line.rpartition("|") if "|" in line else ("", "", line)
        if url.strip():
            links.append({"label": label.strip(), "url": url.strip()})
    return {
        "display_name": form.get("display_name", ""),
        "headline": form.get("headline", ""),
        "bio": form.get("bio", ""),
        "city": form.get("city", ""),
        "skills": form.get("skills", ""),
        "interests": form.get("interests", ""),
        "languages": form.get("languages", ""),
        "links": links,
        "visibility": form.get("visibility", "peers"),
        "private_fields": form.getlist("private_fields"),
        "leaderboard": form.get("leaderboard") == "on",
    }


class _Form:
    def __init__(self, handler: web.RequestHandler):
        self.handler = handler

    def get(self, name, default=""):
        return self.handler.get_body_argument(name, default)

    def getlist(self, name):
        return self.handler.get_body_arguments(name)


class EditPage(PageHandler):
    def _render(self, profile: Profile, error: str = "", status: int = 200):
        self.render_page(
            "edit.html", status=status, profile=profile, error=error, visibilities=VISIBILITIES,
            hideable=HIDEABLE_FIELDS,
        )

    async def _own(self, username):
        access = await self.access()
        target = await self.person(username)
        if not access.can_edit(target):
            raise web.HTTPError(403, "Members edit only their own profile")
        return access, target

    @web.authenticated
    async def get(self, username):
        await self._own(username)
        with self.community.session() as db:
            self._render(self.community.profile(db, username))

    @web.authenticated
    async def post(self, username):
        await self._own(username)
        with self.community.session() as db:
            try:
                update_profile(db, username, _form_to_patch(_Form(self)))
            except ProfileError as e:
                return self._render(self.community.profile(db, username), error=str(e), status=400)
        self.redirect(f"{self.settings['prefix']}members/{username}")


def histogram_svg(buckets: list[int], width: int = 300, height: int = 90) -> Markup:
    """A small bar chart of a score distribution, drawn on the server: no script needed."""
    top = max(buckets) or 1
    bar = width / len(buckets)
    parts = [f'<svg class="histogram" viewBox="0 0 {width} {height + 16}" width="{width}" role="img">']
    for i, count in enumerate(buckets):
        h = (height - 12) * count / top
        x = i * bar
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - h:.1f}" width="{bar - 4:.1f}" height="{h:.1f}" fill="#f37626">'
            f"<title>{i * 10}-{i * 10 + 10}%: {count}</title></rect>"
        )
        if count:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - h - 2:.1f}" font-size="10" text-anchor="middle">{count}</text>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height + 12}" font-size="9" text-anchor="middle">{i * 10}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


class CoursePage(PageHandler):
    @web.authenticated
    async def get(self, course_id):
        access = await self.access()
        course = self.course(course_id)
        if not access.sees_leaderboard(course_id):
            raise web.HTTPError(403, f"Only members of {course_id} see its page")
        learners = await self.community.people.learners_of(course_id)
        with self.community.session() as db:
            board = leaderboard(self.community, db, access, course, learners)
            dashboard = scores = None
            if access.sees_dashboard(course_id):
                dashboard = course_learners(self.community, db, access, course, learners)
                scores = score_distribution(db, course, learners)
        self.render_page(
            "course.html", course=course, leaderboard=board, dashboard=dashboard, scores=scores,
            histogram=histogram_svg,
        )


class BadgePage(PageHandler):
    """A badge, its evidence and whether it verifies: public, for whoever holds the link."""

    def get(self, badge_id):
        with self.community.session() as db:
            badge = db.get(Badge, badge_id)
            if badge is None:
                raise web.HTTPError(404, "No such badge")
            credential = json.loads(badge.credential)
            result = self.community.issuer.verify(db, credential)
        self.render_page("badge.html", badge=badge, credential=credential, result=result)


def page_handlers(prefix: str) -> list:
    name = r"([^/]+)"
    return [
        (prefix, DirectoryPage),
        (f"{prefix}members/{name}", ProfilePage),
        (f"{prefix}members/{name}/edit", EditPage),
        (f"{prefix}courses/{name}", CoursePage),
        (f"{prefix}badges/{name}", BadgePage),
    ]
