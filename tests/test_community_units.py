"""The community service's parts on their own: signatures, schema, the progress queue, the rules."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub.community import signing
from hub.community.access import HIDDEN, NONE, PROGRESS, SCORES, Access, audience
from hub.community.member_data import MemberData
from hub.community.models import Badge, Base, Profile, ProgressEvent, utcnow
from hub.community.people import Person
from hub.community.profiles import ProfileError, apply_patch, default_profile, render_bio, tags_of
from hub.community.progress import CourseProgress
from hub.community.store import alembic_config, make_engine, upgrade
from hub.community.views import risk_reasons
from hub.progress_extension.queue import ProgressQueue

# The eddsa-jcs-2022 example credential published with the W3C Data Integrity EdDSA
# Cryptosuites test vectors: a signature made by another implementation.
VECTOR_CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"]
VECTOR_KEY = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
VECTOR = {
    "@context": VECTOR_CONTEXT,
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": VECTOR_KEY,
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
    "proof": {
        "type": "DataIntegrityProof",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": f"{VECTOR_KEY}#{VECTOR_KEY[8:]}",
        "cryptosuite": "eddsa-jcs-2022",
        "proofPurpose": "assertionMethod",
        "@context": VECTOR_CONTEXT,
        "proofValue": "z5EhYRJkfPLkoT92FPXN8KK6M9rsBhq3xs19GBSsA6VdNYH4QMKSyNuA2Gfznz9QthVD7Rz3HTAfqxxay23htUpTg",
    },
}


def test_signatures_verify_the_published_eddsa_jcs_2022_example():
    assert signing.verify(VECTOR) == VECTOR["proof"]["verificationMethod"]
    changed = {**VECTOR, "name": "Alumna Credential"}
    with pytest.raises(signing.SignatureError, match="changed after signing"):
        signing.verify(changed)


def test_signer_keeps_its_key_private_and_signs_what_verify_accepts(tmp_path):
    path = tmp_path / "community" / "issuer.pem"
    signer = signing.Signer.from_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert signing.Signer.from_file(path).did == signer.did, "the same key after a restart"
    document = {"@context": VECTOR_CONTEXT, "name": "Caffè Aurora ☕", "items": [1, 2, {"b": True, "a": None}]}
    signed = signer.sign(document, dt.datetime(2026, 11, 24, 7, 0))
    assert signing.verify(signed) == signer.verification_method
    assert signing.public_key_of(signer.did)
    with pytest.raises(signing.SignatureError):
        signing.verify({**signed, "items": [1, 2]})
    with pytest.raises(signing.SignatureError, match="floating-point"):
        signer.sign({"score": 0.5}, dt.datetime(2026, 11, 24))
    assert signing.b58decode(signing.b58encode(b"\0\0leva")) == b"\0\0leva"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'community.sqlite'}"
    return request.getfixturevalue("postgres_database")("schema")


def test_migrations_build_exactly_the_models_schema(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # the service runs it at every start: a second time changes nothing
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_progress_queue_keeps_events_until_acknowledged(tmp_path):
    path = tmp_path / ".leva" / "progress-queue.sqlite"
    queue = ProgressQueue(path)
    queue.opened("dm/01.ipynb")
    queue.opened("dm/01.ipynb")  # still waiting: not twice
    queue.saved("dm/01.ipynb", 2, 5)
    queue.saved("dm/01.ipynb", 5, 5)  # only the latest save matters
    for _ in range(3):
        queue.executed("dm/01.ipynb")
    batch = queue.take(10)
    assert [e["kind"] for _, e in batch] == ["opened", "saved", "executed"]
    assert batch[1][1]["cells_run"] == 5 and batch[2][1]["count"] == 3
    queue.executed("dm/01.ipynb")  # a run while the batch is in flight goes into a new event
    queue.retry([rowid for rowid, _ in batch])  # the service did not answer
    queue.close()

    reopened = ProgressQueue(path)  # the server restarts
    again = reopened.take(10)
    assert [e["id"] for _, e in again][:3] == [e["id"] for _, e in batch], "the same ids: the service counts them once"
    assert len(again) == 4
    reopened.done([rowid for rowid, _ in again])
    assert len(reopened) == 0


def test_profile_patches_are_checked():
    profile = default_profile("luca")
    apply_patch(profile, {"skills": "pandas, SQL, Pandas", "links": ["https://luca.example.org"], "visibility": "community"})
    assert profile.skills == ["pandas", "SQL"]
    assert profile.links == [{"label": "luca.example.org", "url": "https://luca.example.org"}]
    assert tags_of(profile) == {("skill", "pandas"), ("skill", "sql")}
    for bad in ({"links": ["javascript:alert(1)"]}, {"visibility": "everyone"}, {"username": "giulia"},
                {"private_fields": ["skills"]}, {"headline": "x" * 141}, {"leaderboard": "yes"}):
        with pytest.raises(ProfileError):
            apply_patch(profile, bad)
    apply_patch(profile, {"display_name": "Luca\x00 \u202eBianchi\n"})
    assert profile.display_name == "Luca Bianchi"


def test_bio_markdown_is_rendered_and_neutralised():
    html = render_bio("**Ciao**\n\n<script>alert(1)</script><iframe src=x></iframe>[a](javascript:x) [b](https://ok.example)"
                      '<img src=x onerror=alert(1)><a href="https://e.example" style="x" onmouseover="y">e</a>')
    assert "<strong>Ciao</strong>" in html and 'href="https://ok.example"' in html
    for bad in ("<script", "alert(1)", "<iframe", "javascript:", "<img", "onerror", "style=", "onmouseover"):
        assert bad not in html


LEARNER, PEER, STRANGER = Person("luca", learns=frozenset({"dm"})), Person("chiara", learns=frozenset({"dm", "net"})), \
    Person("elena", learns=frozenset({"net"}))
TEACHER, ADMIN = Person("marco", teaches=frozenset({"dm"})), Person("giulia", admin=True)


@pytest.mark.parametrize("visibility,viewer,sees,level", [
    ("community", STRANGER, True, PROGRESS),
    ("peers", STRANGER, False, NONE),
    ("peers", PEER, True, PROGRESS),
    ("private", PEER, False, NONE),
    ("private", TEACHER, False, SCORES),
    ("private", ADMIN, True, SCORES),
    ("private", LEARNER, True, SCORES),
])
def test_access_rules(visibility, viewer, sees, level):
    access = Access(viewer)
    assert access.sees_profile(LEARNER, visibility) is sees
    assert access.course_level(LEARNER, visibility, "dm") == level
    assert access.can_edit(LEARNER) is (viewer is LEARNER)
    hidden = access.visible_fields(LEARNER, visibility, ["city"])
    assert ("city" in hidden) is (viewer in (LEARNER, ADMIN))


def test_learners_at_risk():
    from hub.courses import Assignment, Course

    course = Course("dm", None, "DM", "", (), (Assignment("a1", "A1", 10.0, None),), None)
    now = dt.datetime(2026, 11, 24)
    assert risk_reasons(CourseProgress(course, {}, {}), now, 7, 0.5) == ["no activity recorded"]

    class Result:
        status, score, max_score, submitted_at = "graded", 3.0, 10.0, now - dt.timedelta(days=10)

    progress = CourseProgress(course, {}, {"a1": Result()})
    assert risk_reasons(progress, now, 7, 0.5) == ["no activity for 10 days", "low scores (mean 30%)"]
    assert risk_reasons(progress, now, 14, 0.3) == []


@pytest.mark.parametrize("viewer", [LEARNER, PEER, STRANGER, TEACHER, ADMIN])
def test_a_hidden_profile_is_for_admins_only(viewer):
    access = Access(viewer)
    admin = viewer is ADMIN
    assert access.sees_profile(LEARNER, HIDDEN) is admin
    assert access.course_level(LEARNER, HIDDEN, "dm") == (SCORES if admin else NONE)
    assert bool(access.visible_fields(LEARNER, HIDDEN, [])) is admin
    assert access.on_leaderboard(LEARNER, HIDDEN, True, "dm") is admin
    assert not access.may_suggest(LEARNER, HIDDEN, "dm")


def test_member_data_exports_hides_and_erases_every_row(database_url):
    data = MemberData(url=database_url)
    assert data.ensure_profiles({"zaira": "Zaira  Quintavalle", "luca": "Luca Bianchi"}) == 2
    assert not data.ensure_profile("zaira", "Someone Else"), "what is there is kept"
    with data.sessions() as db:
        db.add(ProgressEvent(id="e1", username="zaira", course_id="dm", lesson="01.ipynb", kind="opened", at=utcnow()))
        db.add(Badge(id="b1", username="zaira", course_id="dm", credential='{"credentialSubject": {"id": "zaira"}}'))
        db.commit()
    assert data.set_hidden("zaira", True) and not data.set_hidden("zaira", True)
    assert audience(data.sessions().get(Profile, "zaira")) == HIDDEN
    exported = data.export("zaira")
    assert exported["profile"]["display_name"] == "Zaira Quintavalle" and exported["profile"]["hidden"] is True
    assert [e["id"] for e in exported["progress_events"]] == ["e1"]
    assert exported["badges"][0]["credential"] == {"credentialSubject": {"id": "zaira"}}

    summary = data.erase("zaira")
    assert summary.startswith("deleted profile (1), progress events (1), badges (1);")
    assert data.export("zaira") == {"username": "zaira", "profile": None, "lessons": [], "progress_events": [],
                                    "assignment_results": [], "badges": []}
    assert data.export("luca")["profile"]["display_name"] == "Luca Bianchi"
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        assert not any(b"zaira" in open(p, "rb").read() for p in (path, f"{path}-wal") if os.path.exists(p))
