"""The JSON API under ``/services/community/api/``; ``openapi.yaml`` describes it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tornado import web

from .base import JSONHandler
from .models import Badge
from .profiles import ProfileError, update_profile
from .progress import EventError, record_events
from .views import course_learners, directory, leaderboard, member_view, score_distribution, suggestions

OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"
FILTERS = ("skill", "interest", "language", "course", "city", "q")


class MembersHandler(JSONHandler):
    async def get(self):
        access = await self.access()
        filters = {key: self.get_argument(key, "").strip() for key in FILTERS}
        with self.community.session() as db:
            members = await directory(self.community, db, access, filters)
        self.write_json({"members": members, "filters": {k: v for k, v in filters.items() if v}})


class MemberHandler(JSONHandler):
    async def get(self, username):
        access = await self.access()
        target = await self.person(username)
        with self.community.session() as db:
            view = member_view(self.community, db, access, target, self.community.profile(db, username))
        if view is None:
            # the same answer as for nobody: a private profile does not reveal that it exists
            raise web.HTTPError(404, f"No member {username}")
        self.write_json(view)

    async def patch(self, username):
        access = await self.access()
        target = await self.person(username)
        if not access.can_edit(target):
            raise web.HTTPError(403, "Members edit only their own profile")
        data = self.json_body()
        with self.community.session() as db:
            try:
                profile = update_profile(db, username, data)
            except ProfileError as e:
                raise web.HTTPError(400, str(e)) from None
            view = member_view(self.community, db, access, target, profile)
        self.write_json(view)


class SuggestionsHandler(JSONHandler):
    async def get(self, username):
        access = await self.access()
        if access.viewer.name != username:
            raise web.HTTPError(403, "Suggestions are for oneself")
        with self.community.session() as db:
            found = await suggestions(self.community, db, access)
        self.write_json({"suggestions": found})


class EventsHandler(JSONHandler):
    """Lesson events from the member's own server (or any client of theirs)."""

    async def post(self):
        access = await self.access()
        body = self.json_body()
        if not isinstance(body, dict):
            raise web.HTTPError(400, "Send {\"events\": [...]}")
        with self.community.session() as db:
            try:
                result = record_events(db, access.viewer, body.get("events"), self.community.catalogue)
            except EventError as e:
                db.rollback()
                raise web.HTTPError(400, str(e)) from None
            db.flush()
            self.community.issuer.award(db, self.community.catalogue, {(access.viewer.name, c) for c in result.courses})
            db.commit()
        self.write_json(result.as_dict())


class CourseHandler(JSONHandler):
    async def course_and_learners(self, course_id, allowed):
        access = await self.access()
        course = self.course(course_id)
        if not allowed(access, course_id):
            raise web.HTTPError(403, f"Only {course_id}'s instructors and admins see this")
        return access, course, await self.community.people.learners_of(course_id)


class CourseLearnersHandler(CourseHandler):
    async def get(self, course_id):
        access, course, learners = await self.course_and_learners(course_id, lambda a, c: a.sees_dashboard(c))
        with self.community.session() as db:
            self.write_json(course_learners(self.community, db, access, course, learners))


class CourseScoresHandler(CourseHandler):
    async def get(self, course_id):
        access, course, learners = await self.course_and_learners(course_id, lambda a, c: a.sees_dashboard(c))
        with self.community.session() as db:
            self.write_json(score_distribution(db, course, learners))


class LeaderboardHandler(CourseHandler):
    async def get(self, course_id):
        access, course, learners = await self.course_and_learners(course_id, lambda a, c: a.sees_leaderboard(c))
        with self.community.session() as db:
            rows = leaderboard(self.community, db, access, course, learners)
        self.write_json({"course": course_id, "leaderboard": rows})


# Public: a badge is shown to whoever holds its link, and anyone may verify one.


class IssuerHandler(JSONHandler):
    def get(self):
        self.write_json(self.community.issuer.profile())


class BadgeHandler(JSONHandler):
    def get(self, badge_id):
        with self.community.session() as db:
            badge = db.get(Badge, badge_id)
        if badge is None:
            raise web.HTTPError(404, "No such badge")
        self.set_header("Content-Type", "application/ld+json; charset=UTF-8")
        if self.get_argument("download", None) is not None:
            self.set_header("Content-Disposition", f'attachment; filename="leva-{badge.course_id}-{badge.username}.json"')
        self.finish(badge.credential)


class BadgeVerifyHandler(JSONHandler):
    def get(self, badge_id):
        with self.community.session() as db:
            badge = db.get(Badge, badge_id)
            if badge is None:
                raise web.HTTPError(404, "No such badge")
            self.write_json(self.community.issuer.verify(db, json.loads(badge.credential)))


class VerifyHandler(JSONHandler):
    """POST a credential (the downloaded JSON) to have it checked."""

    def post(self):
        credential = self.json_body()
        if not isinstance(credential, dict):
            raise web.HTTPError(400, "Send the credential's JSON")
        with self.community.session() as db:
            self.write_json(self.community.issuer.verify(db, credential))


class OpenAPIHandler(JSONHandler):
    _spec = None

    def get(self):
        if OpenAPIHandler._spec is None:
            OpenAPIHandler._spec = yaml.safe_load(OPENAPI.read_text())
        spec = dict(OpenAPIHandler._spec)
        spec["servers"] = [{"url": f"{self.community.issuer.base_url}api"}]
        self.write_json(spec)


def api_handlers(prefix: str) -> list:
    api = f"{prefix}api/"
    name = r"([^/]+)"
    return [
        (f"{api}openapi.json", OpenAPIHandler),
        (f"{api}members", MembersHandler),
        (f"{api}members/{name}", MemberHandler),
        (f"{api}members/{name}/suggestions", SuggestionsHandler),
        (f"{api}events", EventsHandler),
        (f"{api}courses/{name}/learners", CourseLearnersHandler),
        (f"{api}courses/{name}/scores", CourseScoresHandler),
        (f"{api}courses/{name}/leaderboard", LeaderboardHandler),
        (f"{api}issuer", IssuerHandler),
        (f"{api}badges/verify", VerifyHandler),
        (f"{api}badges/{name}", BadgeHandler),
        (f"{api}badges/{name}/verify", BadgeVerifyHandler),
    ]
