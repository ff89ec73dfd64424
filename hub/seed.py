"""Seed the hub from a roster: members, their passwords and their course groups.

Seeding only adds: a member already in the member store is left as they are
(password, groups and admin rights may have changed since), so restarting the
hub keeps everything members and admins did.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .members import MemberStore, generate_password
from .roster import Member, instructor_group, learner_group

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seed:
    new_members: list[Member]
    groups: dict  # c.JupyterHub.load_groups
    admins: set[str]  # c.Authenticator.admin_users


def demo_password(state_dir: Path, given: str | None) -> tuple[str, bool]:
    """The demo members' password: ``LEVA_DEMO_PASSWORD``, else one generated once and kept.

    Returns the password and whether it was generated just now.
    """
    if given:
        return given, False
    path = state_dir / "demo-password"
    if path.exists():
        return path.read_text().strip(), False
    password = generate_password()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password, True


def seed(members: list[Member], course_ids, store: MemberStore, password: str) -> Seed:
    """Add the roster's new members to the store; return the hub config that enrols them."""
    new = [m for m in members if store.add(m.username, password, m.full_name, m.email)]
    groups = {g(c): {"users": []} for c in course_ids for g in (learner_group, instructor_group)}
    for member in new:
        for group in member.groups:
            groups[group]["users"].append(member.username)
    if new:
        log.info("Seeded %d new members: %s", len(new), ", ".join(m.username for m in new))
    return Seed(new, groups, {m.username for m in new if m.role == "admin"})
