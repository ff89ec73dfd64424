"""Course badges as Open Badges 3.0 credentials, awarded when the course file's criteria are met.

A course's ``[badge]`` names the lessons to complete, the assignments to have
graded and the share of all assignment points to reach. The moment a member's
progress and grades meet them, the service issues an ``OpenBadgeCredential``
(a W3C Verifiable Credential) whose evidence points at the graded work, signs it
(:mod:`.signing`), and keeps it exactly as signed. A badge once earned stays.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..courses import Course
from . import signing
from .models import Badge, utcnow
from .progress import CourseProgress, course_progress

log = logging.getLogger(__name__)

CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
TYPES = ["VerifiableCredential", "OpenBadgeCredential"]
ISSUER_NAME = "Leva"


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _points(value: float) -> str:
    return f"{value:g}"


def graded_score(progress: CourseProgress) -> float:
    return sum(r.score or 0 for r in progress.results.values() if r.status == "graded")


def meets_criteria(course: Course, progress: CourseProgress) -> bool:
    badge = course.badge
    if badge is None:
        return False
    completed = set(progress.lessons_completed)
    if not all(lesson in completed for lesson in badge.required_lessons):
        return False
    if not all(
        (result := progress.results.get(name)) is not None and result.status == "graded"
        for name in badge.required_assignments
    ):
        return False
    return graded_score(progress) + 1e-9 >= badge.min_score * progress.points


class Issuer:
    """Issues and verifies the community's badges."""

    def __init__(self, signer: signing.Signer, base_url: str):
        self.signer = signer
        self.base_url = base_url.rstrip("/") + "/"  # the service's public URL

    def profile(self) -> dict:
        """The issuer, as credentials name it, with the key that signs them."""
        return {
            "@context": CONTEXT,
            "id": self.signer.did,
            "type": ["Profile"],
            "name": ISSUER_NAME,
            "url": self.base_url,
            "description": "The Leva learning community; its badges are signed with the key of this did:key.",
            "verificationMethod": [
                {
                    "id": self.signer.verification_method,
                    "type": "Multikey",
                    "controller": self.signer.did,
                    "publicKeyMultibase": self.signer.public_key_multibase(),
                }
            ],
        }

    def credential(self, badge_id: str, username: str, course: Course, progress: CourseProgress, issued: dt.datetime) -> dict:
        badge = course.badge
        page = f"{self.base_url}badges/{badge_id}"
        evidence = []
        for name in badge.required_assignments:
            result = progress.results[name]
            evidence.append(
                {
                    "id": f"{page}#{name}",
                    "type": ["Evidence"],
                    "name": course.assignment(name).title,
                    "genre": "Graded assignment",
                    "description": f"nbgrader submission {result.submission_id} of {course.id}/{name}",
                    "narrative": (
                        f"Scored {_points(result.score or 0)} of {_points(result.max_score or 0)} points"
                        + (f", submitted {_stamp(result.submitted_at)}." if result.submitted_at else ".")
                    ),
                }
            )
        if badge.required_lessons:
            evidence.append(
                {
                    "id": f"{page}#lessons",
                    "type": ["Evidence"],
                    "name": "Lessons completed",
                    "genre": "Lessons",
                    "narrative": "Ran every code cell of: " + ", ".join(badge.required_lessons),
                }
            )
        document = {
            "@context": CONTEXT,
            "id": f"{self.base_url}api/badges/{badge_id}",
            "type": TYPES,
            "issuer": {"id": self.signer.did, "type": ["Profile"], "name": ISSUER_NAME, "url": self.base_url},
            "validFrom": _stamp(issued),
            "name": badge.name,
            "credentialSubject": {
                "id": f"{self.base_url}members/{username}",
                "type": ["AchievementSubject"],
                "achievement": {
                    "id": f"{self.base_url}courses/{course.id}#badge",
                    "type": ["Achievement"],
                    "achievementType": "Badge",
                    "name": badge.name,
                    "description": badge.description,
                    "criteria": {"narrative": badge.criteria},
                },
            },
            "evidence": evidence,
        }
        return self.signer.sign(document, issued)

    def award(self, db: Session, catalogue: dict[str, Course], pairs) -> list[Badge]:
        """Issue the badges now earned by the given (username, course) pairs; the caller commits."""
        issued = []
        for username, course_id in sorted(pairs):
            course = catalogue.get(course_id)
            if course is None or course.badge is None:
                continue
            if db.scalar(select(Badge).where(Badge.username == username, Badge.course_id == course_id)):
                continue
            progress = course_progress(db, course, [username])[username]
            if not meets_criteria(course, progress):
                continue
            badge_id, now = str(uuid.uuid4()), utcnow().replace(microsecond=0)
            credential = self.credential(badge_id, username, course, progress, now)
            row = Badge(id=badge_id, username=username, course_id=course_id, issued_at=now, credential=json.dumps(credential))
            db.add(row)
            issued.append(row)
            log.info("Badge %r issued to %s (%s)", course.badge.name, username, badge_id)
        return issued

    def verify(self, db: Session, credential) -> dict:
        """Everything a verifier checks, with a yes/no and the reasons."""
        checks, errors = [], []
        try:
            method = signing.verify(credential)
            checks.append("the Ed25519 signature (eddsa-jcs-2022) matches the credential")
        except signing.SignatureError as e:
            return {"verified": False, "checks": checks, "errors": [str(e)]}
        issuer = credential.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
        if method.split("#", 1)[0] != issuer_id:
            errors.append("signed with a key that is not the issuer's")
        elif issuer_id != self.signer.did:
            errors.append(f"issued by {issuer_id}, not by this community ({self.signer.did})")
        else:
            checks.append("issued by this community")
        if not set(TYPES) <= set(credential.get("type") or ()):
            errors.append("not an OpenBadgeCredential")
        try:
            valid_from = dt.datetime.fromisoformat(str(credential.get("validFrom")).replace("Z", "+00:00"))
            if valid_from.astimezone(dt.timezone.utc).replace(tzinfo=None) > utcnow() + dt.timedelta(minutes=5):
                errors.append("not valid yet")
        except ValueError:
            errors.append("no valid validFrom")
        badge_id = str(credential.get("id", "")).rsplit("/", 1)[-1]
        if str(credential.get("id", "")).startswith(self.base_url):
            if db.get(Badge, badge_id) is None:
                errors.append("this community has no record of the badge")
            else:
                checks.append("on record with this community")
        return {
            "verified": not errors,
            "checks": checks,
            "errors": errors,
            "issuer": issuer_id,
            "subject": (credential.get("credentialSubject") or {}).get("id"),
            "achievement": ((credential.get("credentialSubject") or {}).get("achievement") or {}).get("name"),
        }
