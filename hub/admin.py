"""Administering members of the running platform: rosters, enrolments, roles, leavers.

Every operation goes through the hub's REST API (so it takes effect at once,
without a restart), the member store and the course gradebooks.  Roster imports
are planned first as a list of changes: a dry run prints the plan, a real run
applies it, and a second run of the same roster plans nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .courses import Course
from .grading import gradebook_url
from .hubapi import HubAPI
from .members import MemberStore
from .roster import COURSE_ROLES, Member, course_of_group, instructor_group, learner_group


@dataclass(frozen=True)
class Change:
    username: str
    action: str  # create, admin, join, leave, info, student
    target: str = ""

    def __str__(self) -> str:
        return f"{self.username}: {self.action} {self.target}".rstrip()


def course_groups(user: dict) -> set[str]:
    return {g for g in user.get("groups", []) if course_of_group(g)}


def enrolment_group(course: str, course_role: str) -> str:
    return (instructor_group if course_role == "instructor" else learner_group)(course)


@dataclass
class Administration:
    api: HubAPI
    store: MemberStore
    courses: dict[str, Course]
    state_dir: object
    gradebook_template: str | None = None
    # the community service's hook (hub.community.member_data.MemberData): profiles of new, leaving, returning members
    community: object | None = None
    _students: dict = field(default_factory=dict, repr=False)

    # gradebooks

    def gradebook(self, course: str):
        from nbgrader.api import Gradebook

        return Gradebook(gradebook_url(self.state_dir, course, self.gradebook_template), course_id=course)

    def students(self, course: str) -> set[str]:
        if course not in self._students:
            with self.gradebook(course) as gb:
                self._students[course] = {s.id for s in gb.students}
        return self._students[course]

    def add_students(self, course: str, members: list[Member]) -> None:
        with self.gradebook(course) as gb:
            for m in members:
                first, _, last = m.full_name.partition(" ")
                gb.update_or_create_student(m.username, first_name=first, last_name=last, email=m.email or None)
        self._students.setdefault(course, set()).update(m.username for m in members)

    # rosters

    def plan(self, members: list[Member]) -> list[Change]:
        """What importing these roster members would change."""
        users = self.api.users()
        records = self.store.all()
        changes = []
        for m in members:
            user = users.get(m.username)
            if user is None:
                changes.append(Change(m.username, "create"))
            if bool(user and user["admin"]) != (m.role == "admin"):
                changes.append(Change(m.username, "admin", "on" if m.role == "admin" else "off"))
            have = course_groups(user) if user else set()
            want = set(m.groups)
            changes += [Change(m.username, "join", g) for g in sorted(want - have)]
            changes += [Change(m.username, "leave", g) for g in sorted(have - want)]
            record = records.get(m.username)
            if record is None or (record.full_name, record.email) != (m.full_name, m.email):
                changes.append(Change(m.username, "info", f"{m.full_name} <{m.email}>"))
            for course in m.courses_as("learner"):
                if m.username not in self.students(course):
                    changes.append(Change(m.username, "student", course))
        return changes

    def apply(self, changes: list[Change], members: list[Member]) -> None:
        by_name = {m.username: m for m in members}
        created = [c.username for c in changes if c.action == "create"]
        self.api.create_users(created)
        if created and self.community is not None:
            # so that new members show in the community directory under their name
            self.community.ensure_profiles({name: by_name[name].full_name for name in created})
        for c in changes:
            if c.action == "admin":
                self.api.set_admin(c.username, c.target == "on")
        self.store.update_many(
            {c.username: {"full_name": by_name[c.username].full_name, "email": by_name[c.username].email}
             for c in changes if c.action == "info"}
        )
        for action, call in (("join", self.api.add_to_group), ("leave", self.api.remove_from_group)):
            grouped: dict[str, list[str]] = {}
            for c in changes:
                if c.action == action:
                    grouped.setdefault(c.target, []).append(c.username)
            for group, names in sorted(grouped.items()):
                if action == "join":
                    self.api.ensure_group(group)
                call(group, names)
        per_course: dict[str, list[Member]] = {}
        for c in changes:
            if c.action == "student":
                per_course.setdefault(c.target, []).append(by_name[c.username])
        for course, learners in per_course.items():
            self.add_students(course, learners)

    def export(self) -> list[Member]:
        """The platform's members as roster rows (export, then import, changes nothing)."""
        records = self.store.all()
        members = []
        for name, user in sorted(self.api.users().items()):
            enrolments = []
            for group in sorted(course_groups(user)):
                course = course_of_group(group)
                enrolments.append((course, "instructor" if group == instructor_group(course) else "learner"))
            teaches = any(role == "instructor" for _, role in enrolments)
            role = "admin" if user["admin"] else "instructor" if teaches else "learner"
            record = records.get(name)
            members.append(
                Member(name, (record.full_name if record else "") or name, record.email if record else "", role, tuple(enrolments))
            )
        return members

    # one member at a time

    def require(self, username: str) -> dict:
        user = self.api.user(username)
        if user is None:
            raise KeyError(f"no member {username!r}")
        return user

    def enrol(self, username: str, course: str, course_role: str = "learner") -> list[Change]:
        if course not in self.courses:
            raise KeyError(f"no course {course!r}; the courses are {', '.join(self.courses)}")
        if course_role not in COURSE_ROLES:
            raise ValueError(f"a course role is one of {', '.join(COURSE_ROLES)}")
        user = self.require(username)
        group = enrolment_group(course, course_role)
        other = enrolment_group(course, "learner" if course_role == "instructor" else "instructor")
        changes = []
        if group not in user["groups"]:
            self.api.ensure_group(group)
            self.api.add_to_group(group, [username])
            changes.append(Change(username, "join", group))
        if other in user["groups"]:
            self.api.remove_from_group(other, [username])
            changes.append(Change(username, "leave", other))
        if course_role == "learner" and username not in self.students(course):
            record = self.store.get(username)
            member = Member(username, (record.full_name if record else "") or username, record.email if record else "", "learner", ())
            self.add_students(course, [member])
            changes.append(Change(username, "student", course))
        return changes

    def unenrol(self, username: str, course: str) -> list[Change]:
        """Leave the course's groups; grades and work stay for the records."""
        user = self.require(username)
        groups = [g for g in (learner_group(course), instructor_group(course)) if g in user["groups"]]
        for group in groups:
            self.api.remove_from_group(group, [username])
        return [Change(username, "leave", g) for g in groups]

    def set_role(self, username: str, role: str) -> list[Change]:
        """admin: hub admin rights; learner / instructor: no admin rights, and that role in all their courses."""
        user = self.require(username)
        changes = []
        if user["admin"] != (role == "admin"):
            self.api.set_admin(username, role == "admin")
            changes.append(Change(username, "admin", "on" if role == "admin" else "off"))
        if role in COURSE_ROLES:
            for group in sorted(course_groups(user)):
                changes += self.enrol(username, course_of_group(group), role)
        return changes

    def deactivate(self, username: str) -> list[Change]:
        """A leaver: server stopped, tokens revoked, sign-in blocked; grades and work kept."""
        self.require(username)
        self.store.update(username, active=False)
        self.api.stop_server(username)
        revoked = self.api.revoke_tokens(username)
        changes = [Change(username, "deactivated"), Change(username, "server stopped"), Change(username, "tokens revoked", str(revoked))]
        if self.community is not None and self.community.set_hidden(username, True):
            changes.append(Change(username, "profile hidden"))
        return changes

    def reactivate(self, username: str) -> list[Change]:
        self.require(username)
        self.store.update(username, active=True)
        changes = [Change(username, "reactivated")]
        if self.community is not None and self.community.set_hidden(username, False):
            changes.append(Change(username, "profile shown"))
        return changes
