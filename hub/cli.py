"""``leva``: the administrators' and instructors' command line.

Each subcommand is a small function taking the parsed arguments; ``leva --help``
lists them.  The commands act on the platform's state (``LEVA_STATE_DIR``) and
course catalogue (``LEVA_COURSES_DIR``), the same the hub uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

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


def administration():
    from .admin import Administration
    from .community.member_data import MemberData
    from .hubapi import HubAPI

    settings = load_settings()
    return Administration(
        api=HubAPI.from_settings(settings),
        store=MemberStore(settings.members_db_url),
        courses=load_courses(settings.courses_dir),
        state_dir=settings.state_dir,
        gradebook_template=settings.gradebook_url,
        community=MemberData.from_settings(settings),  # opens the community database only when used
    )


def _report(changes, dry_run: bool = False) -> None:
    for change in changes:
        print(("would " if dry_run else "") + str(change))


def cmd_roster_import(args) -> int:
    """Create or update members, roles, course groups and gradebook students from a roster CSV."""
    from .roster import parse_roster

    admin = administration()
    members, problems = parse_roster(args.file, admin.courses)
    for problem in problems:
        print(f"leva: skipped {problem}", file=sys.stderr)
    changes = admin.plan(members)
    _report(changes, args.dry_run)
    if not args.dry_run:
        admin.apply(changes, members)
        if args.passwords:
            _write_passwords(admin.store, [c.username for c in changes if c.action == "create"], args.passwords)
    verb = "would change" if args.dry_run else "changed"
    print(f"{len(members)} members read, {len(problems)} lines skipped, {verb}: {len(changes)}", file=sys.stderr)
    return 1 if problems else 0


def _write_passwords(store, usernames, path) -> None:
    """First passwords of new members, readable by the admin only, to hand out."""
    import csv
    import os

    passwords = {username: generate_password() for username in usernames}
    store.set_passwords(passwords)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["username", "password"])
        writer.writerows(passwords.items())
    print(f"first passwords of {len(usernames)} new members written to {path}", file=sys.stderr)


def cmd_roster_export(args) -> int:
    """Write the platform's members in the roster format."""
    from .roster import write_roster

    members = administration().export()
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        write_roster(members, out)
    finally:
        if args.output:
            out.close()
    return 0


def _member_action(method: str):
    def run(args) -> int:
        admin = administration()
        extra = [getattr(args, name) for name in ("course", "as_role", "role") if getattr(args, name, None)]
        try:
            _report(getattr(admin, method)(args.username, *extra))
        except (KeyError, ValueError) as e:
            print(f"leva: {e.args[0]}", file=sys.stderr)
            return 1
        return 0

    return run


def cmd_grade(args) -> int:
    """Autograde every collected submission of an assignment, in parallel (see README, "Grading")."""
    from graders import forkserver

    forkserver.start()  # the workers' process imports the grading engine while this one does
    from graders.autograde import GradingError, grade

    course, assignment = (None, args.course) if args.assignment is None else (args.course, args.assignment)
    options = {"workers": args.workers, "force": args.force, "cell_timeout": args.cell_timeout,
               "submission_timeout": args.timeout, "memory_mb": args.memory, "progress": not args.no_progress}
    try:
        report = grade(course, assignment, students=args.student, state_dir=load_settings().state_dir, **options)
    except GradingError as e:
        print(f"leva: {e}", file=sys.stderr)
        return 2
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(report.as_dict(), f, indent=1)
    return 130 if report.interrupted else (1 if report.failed else 0)


def cmd_backup(args) -> int:
    """Write a consistent copy of the platform's state (safe while the hub runs)."""
    from .backup import backup

    settings = load_settings()
    archive = Path(args.archive or f"leva-backup-{dt.datetime.now():%Y%m%d-%H%M%S}.tar.gz")
    manifest = backup(settings, archive)
    print(f"{archive}: {manifest['files']} files, {len(manifest['sqlite'])} SQLite and {len(manifest['postgres'])} PostgreSQL databases")
    return 0


def cmd_restore(args) -> int:
    """Replace the platform's state with a backup's (the hub must be stopped)."""
    from .backup import restore
    from .hubapi import HubAPI, HubError

    settings = load_settings()
    try:
        HubAPI.from_settings(settings).call("GET", "/")
    except HubError:
        pass  # the hub does not answer: safe to restore
    else:
        print(f"leva: the hub is running on port {settings.port}; stop it before restoring", file=sys.stderr)
        return 1
    restore(settings, Path(args.archive))
    return 0


def cmd_security_matrix(args) -> int:
    """As a learner, try to reach other members' work and the answers; print what was denied (as root)."""
    from .isolation_report import from_args

    return from_args(args)


def personal_data():
    from .personal_data import PersonalData

    admin = administration()
    settings = load_settings()
    return PersonalData(admin, settings.homes_dir, community=admin.community, isolated=settings.isolation == "users")


def cmd_member_export(args) -> int:
    """Everything held on a member (GDPR access): profile, progress, grades, submissions, files, as a zip."""
    archive = Path(args.output or f"{args.username}-personal-data.zip")
    try:
        contents = personal_data().export(args.username, archive)
    except KeyError as e:
        print(f"leva: {e.args[0]}", file=sys.stderr)
        return 1
    print(f"{archive}: {len(contents)} entries")
    return 0


def cmd_member_erase(args) -> int:
    """Delete or anonymise a member everywhere (GDPR erasure); aggregate statistics stay."""
    if not args.yes and not (sys.stdin.isatty() and input(f"Erase {args.username} everywhere? [y/N] ").lower() == "y"):
        print("leva: nothing erased (confirm with --yes)", file=sys.stderr)
        return 1
    for line in personal_data().erase(args.username):
        print(line)
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

    p = sub.add_parser("grade", help=cmd_grade.__doc__,
                       description="Autograde an assignment. Inside a course directory (it holds nbgrader_config.py) "
                                   "give only ASSIGNMENT; elsewhere COURSE ASSIGNMENT, from the platform's state.")
    p.add_argument("course", metavar="COURSE", help="course id (omit inside a course directory)")
    p.add_argument("assignment", metavar="ASSIGNMENT", nargs="?", help="assignment name")
    p.add_argument("--workers", type=int, help="parallel workers (default: one more than the CPU cores)")
    p.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeatable)")
    p.add_argument("--force", action="store_true", default=None, help="grade again what is already graded")
    p.add_argument("--cell-timeout", type=float, help="seconds per cell (default: the course's Execute.timeout)")
    p.add_argument("--timeout", type=float, help="seconds per submission (default: 300)")
    p.add_argument("--memory", type=int, metavar="MB", help="memory cap of a kernel (default: 2048)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", metavar="FILE", help="also write the run's report (outcomes, timings) as JSON")
    p.set_defaults(func=cmd_grade)

    roster = sub.add_parser("roster", help="Rosters: import and export members").add_subparsers(dest="action", required=True)
    p = roster.add_parser("import", help=cmd_roster_import.__doc__)
    p.add_argument("file", help="roster CSV: username,full_name,email,role,courses")
    p.add_argument("--dry-run", action="store_true", help="print the changes without making them")
    p.add_argument("--passwords", metavar="FILE", help="give new members a password, written to this CSV (mode 0600)")
    p.set_defaults(func=cmd_roster_import)
    p = roster.add_parser("export", help=cmd_roster_export.__doc__)
    p.add_argument("-o", "--output", help="CSV file (default: standard output)")
    p.set_defaults(func=cmd_roster_export)

    p = sub.add_parser("backup", help=cmd_backup.__doc__)
    p.add_argument("archive", nargs="?", help="the .tar.gz to write (default: leva-backup-<time>.tar.gz)")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help=cmd_restore.__doc__)
    p.add_argument("archive")
    p.set_defaults(func=cmd_restore)

    from .isolation_report import add_arguments

    security = sub.add_parser("security", help="Security checks").add_subparsers(dest="action", required=True)
    p = security.add_parser("matrix", help=cmd_security_matrix.__doc__)
    add_arguments(p)
    p.set_defaults(func=cmd_security_matrix)

    member = sub.add_parser("member", help="Member tools").add_subparsers(dest="action", required=True)
    p = member.add_parser("enrol", help="Enrol a member in a course")
    p.add_argument("username")
    p.add_argument("course")
    p.add_argument("--as", dest="as_role", choices=("learner", "instructor"), default="learner")
    p.set_defaults(func=_member_action("enrol"))
    p = member.add_parser("unenrol", help="Take a member out of a course (grades and work are kept)")
    p.add_argument("username")
    p.add_argument("course")
    p.set_defaults(func=_member_action("unenrol"))
    p = member.add_parser("role", help="Change a member's role: admin, or learner / instructor in all their courses")
    p.add_argument("username")
    p.add_argument("role", choices=("learner", "instructor", "admin"))
    p.set_defaults(func=_member_action("set_role"))
    p = member.add_parser("deactivate", help="A leaver: stop their server, revoke tokens, block sign-in; keep their work")
    p.add_argument("username")
    p.set_defaults(func=_member_action("deactivate"))
    p = member.add_parser("reactivate", help="Undo deactivate")
    p.add_argument("username")
    p.set_defaults(func=_member_action("reactivate"))
    p = member.add_parser("export", help=cmd_member_export.__doc__)
    p.add_argument("username")
    p.add_argument("-o", "--output", help="the zip to write (default: USER-personal-data.zip)")
    p.set_defaults(func=cmd_member_export)
    p = member.add_parser("erase", help=cmd_member_erase.__doc__)
    p.add_argument("username")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_member_erase)
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
