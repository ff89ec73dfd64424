"""JupyterHub RBAC roles: each kind of member holds only the scopes it needs.

- every member: the default ``user`` role, redefined here (``self``: their own
  server and tokens; and the ``community`` service, their profile and progress);
- instructors of a course (group ``formgrade-<course>``): list its learners,
  see their groups and activity, open the course's formgrader; nothing of
  other courses;
- admins: JupyterHub's ``admin`` role, from the roster's ``admin`` rows;
- the idle culler: list servers and stop idle ones;
- the community service: read members, their groups and admin flag
  (``hub/community/service.py``).
"""

from __future__ import annotations

from .roster import instructor_group, learner_group

# What a member's server may do with its own token: its owner's groups (nbgrader's
# course list) and the course services its owner may see; always cut down to
# what the owner holds.
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    "read:users:name!user",
    "read:users:groups!user",
    "list:services",
    "read:services",
    # the progress extension reports lesson progress to the community service
    "access:services!service=community",
]

# Every member: themselves, and the community service (profiles, progress, badges).
USER_ROLE = {
    "name": "user",
    "description": "Every member: their own server and tokens, and the community service",
    "scopes": [
        "self",
        "access:services!service=community",
        "list:services!service=community",
        "read:services!service=community",
    ],
}


def course_roles(course_ids) -> list[dict]:
    roles = []
    for course in course_ids:
        roles.append(
            {
                "name": f"instructor-{course}",
                "description": f"Instructors of {course}: its learners, their activity, its formgrader",
                "scopes": [
                    f"read:groups!group={learner_group(course)}",
                    f"list:users!group={learner_group(course)}",
                    f"read:users:name!group={learner_group(course)}",
                    f"read:users:groups!group={learner_group(course)}",
                    f"read:users:activity!group={learner_group(course)}",
                    f"access:services!service={course}",
                    f"list:services!service={course}",
                    f"read:services!service={course}",
                ],
                "groups": [instructor_group(course)],
            }
        )
    return roles


IDLE_CULLER_ROLE = {
    "name": "idle-culler",
    "description": "Stop servers that have been idle too long",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}
