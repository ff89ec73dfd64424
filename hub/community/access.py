"""Who may see and change what: every authorisation rule of the service, here and nowhere else.

- A member reads and edits their own profile, all of it.
- Admins read everything (and edit nothing but their own profile).
- Others see a profile by its visibility: ``community`` (every member),
  ``peers`` (members who share a course with its owner, as learner or
  instructor) or ``private`` (nobody). Fields the owner marked private are
  never shown to them.
- Progress: those who see a profile see completion and assignment status of
  the owner's courses (``community``) or of the courses they share
  (``peers``); scores only the owner, admins and the course's instructors see.
  Instructors see their courses' learners' progress whatever the visibility,
  but nothing of a private profile beyond it.
- Course dashboards (all learners' progress, score distributions, learners at
  risk): the course's instructors and admins.
- Leaderboards: the course's members and admins see them; they list only
  learners who opted in and whose profile is not private.
- A deactivated member's profile is hidden until they are reactivated: only
  admins see it, its progress and badges; it is in nobody else's directory,
  on no leaderboard and in no suggestion. Their course's instructors still
  find their results, without name, on the course dashboard, as in the
  formgrader. Views pass :func:`audience` where a rule takes a visibility.
- The administration pages (``admin/``): hub admins only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .people import Person

PROFILE_FIELDS = ("display_name", "headline", "bio", "skills", "interests", "languages", "links", "city")
# fields a member may keep to themselves on an otherwise visible profile
HIDEABLE_FIELDS = ("bio", "interests", "languages", "links", "city")

NONE, PROGRESS, SCORES = 0, 1, 2  # how much of a course's progress a viewer sees
HIDDEN = "hidden"  # the audience of a deactivated member's profile: admins only


def audience(profile) -> str:
    """Who a profile is for: its visibility, or ``HIDDEN`` while its member is deactivated."""
    return HIDDEN if getattr(profile, "hidden", False) else profile.visibility


@dataclass(frozen=True)
class Access:
    viewer: Person

    def is_self(self, target: Person) -> bool:
        return self.viewer.name == target.name

    def can_edit(self, target: Person) -> bool:
        return self.is_self(target)

    def teaches(self, target: Person) -> frozenset[str]:
        """The courses the viewer teaches and the target learns."""
        return self.viewer.teaches & target.learns

    def shares_course(self, target: Person) -> bool:
        return bool(self.viewer.courses & target.courses)

    def sees_profile(self, target: Person, visibility: str) -> bool:
        if self.viewer.admin:
            return True
        if visibility == HIDDEN:
            return False
        if self.is_self(target):
            return True
        if visibility == "community":
            return True
        if visibility == "peers":
            return self.shares_course(target)
        return False

    def visible_fields(self, target: Person, visibility: str, private_fields) -> tuple[str, ...]:
        if self.viewer.admin or (self.is_self(target) and visibility != HIDDEN):
            return PROFILE_FIELDS
        if not self.sees_profile(target, visibility):
            return ()
        hidden = set(private_fields or ()) & set(HIDEABLE_FIELDS)
        return tuple(f for f in PROFILE_FIELDS if f not in hidden)

    def course_level(self, target: Person, visibility: str, course: str) -> int:
        """How much of the target's progress in a course of theirs the viewer sees."""
        if course not in target.learns:
            return NONE
        if self.viewer.admin:
            return SCORES
        if visibility == HIDDEN:
            return NONE
        if self.is_self(target) or course in self.viewer.teaches:
            return SCORES
        if not self.sees_profile(target, visibility):
            return NONE
        if visibility == "community" or course in self.viewer.courses:
            return PROGRESS
        return NONE

    def sees_settings(self, target: Person) -> bool:
        """Visibility, private fields and the leaderboard choice: the owner's business."""
        return self.is_self(target) or self.viewer.admin

    def sees_badges(self, target: Person, visibility: str, course: str) -> bool:
        return self.course_level(target, visibility, course) > NONE

    def sees_dashboard(self, course: str) -> bool:
        return self.viewer.admin or course in self.viewer.teaches

    def sees_leaderboard(self, course: str) -> bool:
        return self.viewer.admin or course in self.viewer.courses

    def on_leaderboard(self, target: Person, visibility: str, opted_in: bool, course: str) -> bool:
        return opted_in and visibility != "private" and course in target.learns and self.sees_profile(target, visibility)

    def may_suggest(self, helper: Person, visibility: str, course: str) -> bool:
        """Whether a member who passed something may be suggested to the viewer as a helper."""
        return (
            not self.is_self(helper)
            and visibility not in ("private", HIDDEN)
            and course in helper.learns
            and self.sees_profile(helper, visibility)
        )

    def may_report_progress(self, target: Person) -> bool:
        return self.is_self(target)

    def administers(self) -> bool:
        """The administration pages: members, enrolments, roles, leavers."""
        return self.viewer.admin
