"""The demo spawner: each member's server is a local process with its own home folder.

All servers run as the hub's own system user, so members are not isolated from
each other: fine for the local demo, not for production.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from .courses import CourseError, load_courses
from .lessons import sync_lessons
from .roster import course_of_group, instructor_group


def member_courses(user) -> list[str]:
    """The courses a hub user learns or teaches, from their course groups."""
    return sorted({c for g in user.groups if (c := course_of_group(g.name))})


class LevaSpawner(SimpleLocalProcessSpawner):
    """A local server whose home holds the lessons of the member's courses."""

    courses_dir = Unicode(config=True, help="Folder of the course catalogue (`courses/`).")

    jupyter_config_dir = Unicode(
        config=True,
        help="""Folder of the members' Jupyter configuration: `member/` for everyone,
        `learner/` added for members who teach no course (no course list of formgraders).""",
    )

    home_dir_template = Unicode(
        "/tmp/leva-homes/{username}",
        config=True,
        help="Template of a member's home; {username} is the hub username.",
    )

    @default("cmd")
    def _default_cmd(self):
        # The single-user server of this very environment, wherever PATH points.
        return [str(Path(sys.executable).parent / "jupyterhub-singleuser")]

    @default("args")
    def _default_args(self):
        # jupyter-server refuses root unless told; the demo may run as root.
        return ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []

    def get_env(self):
        env = super().get_env()
        if self.jupyter_config_dir:
            teaches = any(g.name.startswith(instructor_group("")) for g in self.user.groups)
            dirs = ["member"] if teaches else ["member", "learner"]
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(str(Path(self.jupyter_config_dir, d)) for d in dirs)
        return env

    async def start(self):
        await asyncio.to_thread(self.deliver_lessons)
        return await super().start()

    def deliver_lessons(self) -> None:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        try:
            catalogue = load_courses(Path(self.courses_dir) if self.courses_dir else None)
        except CourseError as e:
            self.log.error("Lessons not delivered to %s: %s", self.user.name, e)
            return
        for course_id in member_courses(self.user):
            course = catalogue.get(course_id)
            if course is None or not course.lessons_dir.is_dir():
                self.log.warning("%s is in course %r, which has no lessons", self.user.name, course_id)
                continue
            report = self.sync_course(course_id, course.lessons_dir, home)
            self.log.info("Lessons for %s: %s", self.user.name, report)

    def sync_course(self, course_id: str, lessons_dir: Path, home: Path):
        """Merge one course's lessons into the home (``hub.isolation`` does it as the member)."""
        return sync_lessons(course_id, lessons_dir, home)
