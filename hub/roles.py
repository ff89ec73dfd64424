"""JupyterHub RBAC roles: each kind of member holds only the scopes it needs.

- learners: the default ``user`` role (``self``: their own server and tokens);
- instructors of a course (group ``formgrade-<course>``): list its learners, see who they
  are and when they were last active, nothing of other courses;
- admins: JupyterHub's ``admin`` role, from the roster's ``admin`` rows;
- the idle culler: list servers and stop idle ones.
"""

from __future__ import annotations

from .roster import instructor_group, learner_group


def course_roles(course_ids) -> list[dict]:
    roles = []
    for course in course_ids:
        learners = learner_group(course)
        roles.append(
            {
                "name": f"instructor-{course}",
                "description": f"Instructors of {course}: read its learners and their activity",
                "scopes": [
                    f"read:groups!group={learners}",
                    f"list:users!group={learners}",
                    f"read:users:name!group={learners}",
                    f"read:users:activity!group={learners}",
                    f"read:users:groups!group={learners}",
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
