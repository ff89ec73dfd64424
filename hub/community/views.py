"""What a viewer gets to see: profiles, the directory, suggestions, course dashboards.

Every function takes the viewer's :class:`~.access.Access` and asks it before
putting anything in; the API and the HTML pages both show exactly these views.
"""

from __future__ import annotations

import datetime as dt
from statistics import mean

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..courses import Course
from .access import NONE, PROFILE_FIELDS, SCORES, Access, audience
from .models import Badge, Profile, Tag, utcnow
from .people import Person
from .profiles import render_bio, tag_key
from .progress import CourseProgress, course_progress, iso
from .state import Community


def badge_summary(badge: Badge, community: Community) -> dict:
    course = community.catalogue.get(badge.course_id)
    api = f"{community.issuer.base_url}api/badges/{badge.id}"
    return {
        "id": badge.id,
        "course": badge.course_id,
        "name": course.badge.name if course and course.badge else badge.course_id,
        "issued_at": iso(badge.issued_at),
        "credential": api,
        "verify": f"{api}/verify",
        "page": f"{community.issuer.base_url}badges/{badge.id}",
    }


def _course_entry(course: Course, progress: CourseProgress, level: int) -> dict:
    assignments = {}
    for assignment in course.assignments:
        entry = progress.assignment(assignment.name)
        if level < SCORES:
            entry["score"] = None
        assignments[assignment.name] = entry
    lessons = {
        name: {
            "opened": name in progress.lessons,
            "completed": bool(name in progress.lessons and progress.lessons[name].completed_at),
        }
        for name in course.lessons
    }
    if level >= SCORES:
        for name, row in progress.lessons.items():
            if name in lessons:
                lessons[name].update(cells_run=row.cells_run, cells_total=row.cells_total, executions=row.executions)
    return {
        "title": course.title,
        "completion": progress.completion,
        "last_activity": iso(progress.last_activity),
        "lessons": lessons,
        "assignments": assignments,
    }


def member_view(community: Community, db: Session, access: Access, target: Person, profile: Profile) -> dict | None:
    """The member as ``access.viewer`` may see them, or None when they may see nothing."""
    shown_to = audience(profile)
    sees = access.sees_profile(target, shown_to)
    levels = {c: access.course_level(target, shown_to, c) for c in sorted(target.learns)}
    if not sees and not any(levels.values()):
        return None
    view: dict = {"username": target.name}
    if sees:
        fields = access.visible_fields(target, shown_to, profile.private_fields)
        for field in PROFILE_FIELDS:
            if field in fields:
                view[field] = getattr(profile, field)
        if "bio" in fields:
            view["bio_html"] = render_bio(profile.bio)
        view["visibility"] = profile.visibility
        view["teaches"] = sorted(target.teaches)
    if access.sees_settings(target):
        view["private_fields"] = list(profile.private_fields or ())
        view["leaderboard"] = bool(profile.leaderboard)
        view["updated_at"] = iso(profile.updated_at)
        view["hidden"] = bool(profile.hidden)
    courses = {}
    for course_id, level in levels.items():
        course = community.catalogue.get(course_id)
        if level == NONE or course is None:
            continue
        progress = course_progress(db, course, [target.name])[target.name]
        courses[course_id] = _course_entry(course, progress, level)
    view["courses"] = courses
    badges = db.scalars(select(Badge).where(Badge.username == target.name).order_by(Badge.issued_at))
    view["badges"] = [badge_summary(b, community) for b in badges if b.course_id in courses]
    return view


def _matches(text_values, query: str) -> bool:
    key = tag_key(query)
    return any(key in tag_key(str(value)) for value in text_values if value)


async def directory(community: Community, db: Session, access: Access, filters: dict) -> list[dict]:
    """Members the viewer may see, filtered by skill, interest, language, course, city and free text."""
    people = await community.people.all()
    names = set(people)
    for kind in ("skill", "interest", "language"):
        if filters.get(kind):
            # the tags table narrows the search; visibility is checked on each view below
            like = f"%{tag_key(filters[kind])}%"
            names &= set(db.scalars(select(Tag.username).where(Tag.kind == kind, Tag.key.like(like))))
    profiles = community.profiles(db, sorted(names))
    results = []
    for name in sorted(names):
        target, profile = people[name], profiles[name]
        if not access.sees_profile(target, audience(profile)):
            continue
        view = member_view(community, db, access, target, profile)
        if view is None:
            continue
        checks = [
            ("skill", view.get("skills", ())),
            ("interest", view.get("interests", ())),
            ("language", view.get("languages", ())),
            ("city", [view.get("city")]),
            ("q", [name, view.get("display_name"), view.get("headline"), view.get("bio"),
                   *view.get("skills", ()), *view.get("interests", ())]),
        ]
        if any(filters.get(key) and not _matches(values, filters[key]) for key, values in checks):
            continue
        course = filters.get("course")
        if course and course not in view["courses"] and course not in view.get("teaches", ()):
            continue
        results.append(
            {
                "username": name,
                "display_name": view.get("display_name") or "",
                "headline": view.get("headline") or "",
                "skills": view.get("skills", []),
                "interests": view.get("interests", []),
                "city": view.get("city") or "",
                "courses": sorted(view["courses"]),
                "teaches": view.get("teaches", []),
                "badges": [b["name"] for b in view["badges"]],
                "hidden": bool(view.get("hidden")),  # only admins see hidden profiles
            }
        )
    return results


def _stuck(community: Community, course: Course, mine: CourseProgress) -> list[tuple[str, str, str, str]]:
    """What the member has not got past: (kind, name, title, reason)."""
    items = []
    for lesson in course.lessons:
        row = mine.lessons.get(lesson)
        if row and not row.completed_at:
            items.append(("lesson", lesson, lesson.removesuffix(".ipynb"), "opened, not completed"))
    passing = community.pass_fraction(course)
    for assignment in course.assignments:
        result = mine.results.get(assignment.name)
        if result is None:
            if community.released(course.id, assignment.name):
                items.append(("assignment", assignment.name, assignment.title, "released, not submitted"))
        elif result.status in ("autograded", "graded") and result.max_score:
            if (result.score or 0) < passing * result.max_score:
                items.append(("assignment", assignment.name, assignment.title, "scored below a pass"))
    return items


def _passed(community: Community, course: Course, progress: CourseProgress, kind: str, name: str) -> bool:
    if kind == "lesson":
        return name in progress.lessons_completed
    result = progress.results.get(name)
    return bool(
        result and result.status in ("autograded", "graded") and result.max_score
        and (result.score or 0) >= community.pass_fraction(course) * result.max_score
    )


async def suggestions(community: Community, db: Session, access: Access, limit: int = 5) -> list[dict]:
    """For each lesson or assignment the viewer is stuck on, members who already passed it."""
    me = access.viewer
    people = await community.people.all()
    out = []
    for course_id in sorted(me.learns):
        course = community.catalogue.get(course_id)
        if course is None:
            continue
        everyone = course_progress(db, course)
        mine = everyone.get(me.name) or CourseProgress(course, {}, {})
        stuck = _stuck(community, course, mine)
        if not stuck:
            continue
        profiles = community.profiles(db, [n for n in everyone if n in people])
        for kind, name, title, reason in stuck:
            helpers = []
            for username in sorted(profiles):
                profile = profiles[username]
                if not access.may_suggest(people[username], audience(profile), course_id):
                    continue
                if _passed(community, course, everyone[username], kind, name):
                    fields = access.visible_fields(people[username], audience(profile), profile.private_fields)
                    helpers.append(
                        {
                            "username": username,
                            "display_name": profile.display_name if "display_name" in fields else "",
                            "headline": profile.headline if "headline" in fields else "",
                        }
                    )
            if helpers:
                out.append(
                    {"course": course_id, "kind": kind, "name": name, "title": title, "reason": reason,
                     "members": helpers[:limit]}
                )
    return out


def risk_reasons(progress: CourseProgress, now: dt.datetime, days: int, low_score: float) -> list[str]:
    reasons = []
    last = progress.last_activity
    if last is None:
        reasons.append("no activity recorded")
    elif now - last > dt.timedelta(days=days):
        reasons.append(f"no activity for {(now - last).days} days")
    fractions = progress.graded_fractions()
    if fractions and mean(fractions) < low_score:
        reasons.append(f"low scores (mean {mean(fractions):.0%})")
    return reasons


def course_learners(community: Community, db: Session, access: Access, course: Course, learners: list[Person]) -> dict:
    """The instructor's view of a course: every learner's progress, and who is at risk."""
    names = [p.name for p in learners]
    progress = course_progress(db, course, names)
    profiles = community.profiles(db, names)
    now = utcnow()
    rows = []
    for person in learners:
        p, profile = progress[person.name], profiles[person.name]
        fields = access.visible_fields(person, audience(profile), profile.private_fields)
        reasons = risk_reasons(p, now, community.at_risk_days, community.low_score)
        rows.append(
            {
                "username": person.name,
                "display_name": profile.display_name if "display_name" in fields else "",
                "completion": p.completion,
                "last_activity": iso(p.last_activity),
                "lessons_completed": len(p.lessons_completed),
                "assignments": {a.name: p.assignment(a.name) for a in course.assignments},
                "score": round(p.score, 4),
                "max_score": p.points,
                "at_risk": bool(reasons),
                "risk_reasons": reasons,
            }
        )
    return {
        "course": course.id,
        "title": course.title,
        "lessons": list(course.lessons),
        "assignments": [{"name": a.name, "title": a.title, "max_score": a.points} for a in course.assignments],
        "at_risk_days": community.at_risk_days,
        "learners": rows,
        "at_risk": [r["username"] for r in rows if r["at_risk"]],
    }


def score_distribution(db: Session, course: Course, learners: list[Person], buckets: int = 10) -> dict:
    """Per assignment: how many learners scored in each tenth of the points."""
    progress = course_progress(db, course, [p.name for p in learners])
    out = []
    for assignment in course.assignments:
        fractions = []
        for p in progress.values():
            result = p.results.get(assignment.name)
            if result and result.status in ("autograded", "graded") and result.max_score:
                fractions.append(min(1.0, max(0.0, (result.score or 0) / result.max_score)))
        counts = [0] * buckets
        for fraction in fractions:
            counts[min(int(fraction * buckets), buckets - 1)] += 1
        out.append(
            {
                "name": assignment.name,
                "title": assignment.title,
                "max_score": assignment.points,
                "graded": len(fractions),
                "submitted": sum(1 for p in progress.values() if assignment.name in p.results),
                "mean": round(mean(fractions), 4) if fractions else None,
                "buckets": counts,
            }
        )
    return {"course": course.id, "assignments": out}


def leaderboard(community: Community, db: Session, access: Access, course: Course, learners: list[Person]) -> list[dict]:
    names = [p.name for p in learners]
    profiles = community.profiles(db, names)
    progress = course_progress(db, course, names)
    badges = set(db.scalars(select(Badge.username).where(Badge.course_id == course.id)))
    rows = []
    for person in learners:
        profile = profiles[person.name]
        if not access.on_leaderboard(person, audience(profile), profile.leaderboard, course.id):
            continue
        p = progress[person.name]
        fields = access.visible_fields(person, audience(profile), profile.private_fields)
        rows.append(
            {
                "username": person.name,
                "display_name": profile.display_name if "display_name" in fields else "",
                "score": round(p.score, 4),
                "max_score": p.points,
                "completion": p.completion,
                "badge": person.name in badges,
            }
        )
    rows.sort(key=lambda r: (-r["score"], -r["completion"], r["username"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
