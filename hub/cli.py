"""``leva``: the administrators' and instructors' command line.

Each subcommand is a small function taking the parsed arguments; ``leva --help``
lists them.  The commands act on the platform's state (``LEVA_STATE_DIR``) and
course catalogue (``LEVA_COURSES_DIR``), the same the hub uses.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .courses import CourseError, load_courses
from .members import MemberStore, generate_password
from .roster import RosterError, read_roster
from .settings import load_settings


def cmd_check(args) -> int:
    """Check the course catalogue and the roster as the hub would at start-up."""
    settings = load_settings()
    try:
        courses = load_courses(settings.courses_dir)
        members = read_roster(args.roster or settings.roster, courses)
    except (CourseError, RosterError) as e:
        print(f"leva: {e}", file=sys.stderr)
        return 2
    print(f"{len(courses)} courses ({', '.join(courses)}), {len(members)} members: OK")
    return 0


def cmd_courses(args) -> int:
    """List the courses with their lessons and assignments."""
    for course in load_courses(load_settings().courses_dir).values():
        print(f"{course.id}: {course.title}")
        print(f"  {len(course.lessons)} lessons, {len(course.assignments)} assignments")
        for a in course.assignments:
            due = a.due.isoformat() if a.due else "no due date"
            print(f"  - {a.name}: {a.title} ({a.points:g} points, due {due})")
    return 0


def cmd_course_report(args) -> int:
    """Per assignment: cells, points, autograde time, and the wrong-answer variants' outcome."""
    from graders.course_check import report

    courses = load_courses(load_settings().courses_dir)
    selected = [courses[c] for c in args.course] if args.course else list(courses.values())
    report(selected)
    return 0


def cmd_grades_export(args) -> int:
    """Write a course's grades as CSV: one row per learner and assignment."""
    from graders.export import export_grades

    from .grading import course_root, gradebook_url

    settings = load_settings()
    root = course_root(settings.state_dir, args.course)
    if not (root / "nbgrader_config.py").exists():
        print(f"leva: no course {args.course!r} in {settings.state_dir}; start the hub once first", file=sys.stderr)
        return 1
    db_url = gradebook_url(settings.state_dir, args.course, settings.gradebook_url)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        count = export_grades(db_url, args.course, out, root)
    finally:
        if args.output:
            out.close()
    print(f"{count} rows", file=sys.stderr)
    return 0


def cmd_set_password(args) -> int:
    """Set a member's password (generated and printed when not given)."""
    store = MemberStore(load_settings().members_db_url)
    if not store.exists(args.username):
        print(f"leva: no member {args.username!r}; add them in the hub's admin page first", file=sys.stderr)
        return 1
    password = args.password
    if password is None and sys.stdin.isatty() and not args.generate:
        password = getpass.getpass(f"New password for {args.username}: ")
    password = password or generate_password()
    try:
        store.set_password(args.username, password)
    except ValueError as e:
        print(f"leva: {e}", file=sys.stderr)
        return 1
    print(f"password of {args.username} set" + ("" if args.password else f": {password}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leva", description="Administer and teach on the Leva platform.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help=cmd_check.__doc__)
    p.add_argument("--roster", help="roster CSV (default: LEVA_ROSTER or hub/demo/roster.csv)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("courses", help=cmd_courses.__doc__)
    p.set_defaults(func=cmd_courses)

    course = sub.add_parser("course", help="Course tools").add_subparsers(dest="action", required=True)
    p = course.add_parser("report", help=cmd_course_report.__doc__)
    p.add_argument("course", nargs="*", help="course ids (default: all)")
    p.set_defaults(func=cmd_course_report)

    grades = sub.add_parser("grades", help="Gradebook tools").add_subparsers(dest="action", required=True)
    p = grades.add_parser("export", help=cmd_grades_export.__doc__)
    p.add_argument("course")
    p.add_argument("-o", "--output", help="CSV file (default: standard output)")
    p.set_defaults(func=cmd_grades_export)

    member = sub.add_parser("member", help="Member tools").add_subparsers(dest="action", required=True)
    p = member.add_parser("set-password", help=cmd_set_password.__doc__)
    p.add_argument("username")
    p.add_argument("--password", help="the new password (default: asked, or generated)")
    p.add_argument("--generate", action="store_true", help="generate a password and print it")
    p.set_defaults(func=cmd_set_password)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
