"""What ``jupyterhub_config.py`` needs before it can wire the hub: settings, courses, roster, seed.

A mistake in the course catalogue or the roster stops start-up with one message
naming the file, the line and the fix, instead of a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .courses import Course, CourseError, load_courses
from .grading import gradebook_url, prepare_course, release_first_assignment, sync_gradebook
from .members import MemberStore
from .roster import RosterError, read_roster
from .seed import Seed, demo_password, seed
from .settings import Settings, load_settings


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    courses: dict[str, Course]
    seed: Seed


def fail(message: str):
    print(f"leva: cannot start: {message}", file=sys.stderr)
    raise SystemExit(2)


def prepare(settings: Settings | None = None) -> Deployment:
    settings = settings or load_settings()
    try:
        courses = load_courses(settings.courses_dir)
        members = read_roster(settings.roster, courses)
    except (CourseError, RosterError) as e:
        fail(str(e))
    isolated = settings.isolation == "users"
    if isolated:  # members as their own system accounts: check the machine before changing anything
        from .permissions import lock_down, preflight

        if problem := preflight(settings):
            fail(problem)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    password, generated = demo_password(settings.state_dir, settings.demo_password)
    store = MemberStore(settings.members_db_url)
    seeded = seed(members, courses, store, password)
    if generated and seeded.new_members:
        print(
            f"leva: demo members' password: {password}\n"
            f"      (kept in {settings.state_dir / 'demo-password'}; "
            f"set LEVA_DEMO_PASSWORD to choose it)",
            file=sys.stderr,
        )
    for course in courses.values():
        root = prepare_course(course, settings.state_dir, settings.gradebook_url)
        learners = [m for m in seeded.new_members if course.id in m.courses_as("learner")]
        sync_gradebook(course, gradebook_url(settings.state_dir, course.id, settings.gradebook_url), learners)
        release_first_assignment(course, root)
    if isolated:
        lock_down(settings, courses)
    return Deployment(settings, courses, seeded)
