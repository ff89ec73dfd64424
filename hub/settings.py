"""The deployment's settings, read from ``LEVA_*`` environment variables.

One place that names every variable, so the README, ``jupyterhub_config.py`` and
the ``leva`` command agree on defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .courses import PROJECT_ROOT, courses_dir


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    courses_dir: Path
    roster: Path
    port: int
    demo_password: str | None
    gradebook_url: str | None = None  # template with {course}; default: SQLite per course
    community_db: str | None = None  # the community service's database; default: SQLite
    isolation: str = "none"  # LEVA_ISOLATION: none (the demo) or users (see SECURITY.md)
    public_url: str | None = None  # LEVA_PUBLIC_URL: https://… when a TLS proxy serves the platform

    @property
    def hub_db_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}"

    @property
    def members_db_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'members.sqlite'}"

    @property
    def community_db_url(self) -> str:
        return self.community_db or f"sqlite:///{self.state_dir / 'community' / 'community.sqlite'}"

    @property
    def homes_dir(self) -> Path:
        return self.state_dir / "homes"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise SystemExit(f"leva: LEVA_PORT={value!r} is not a TCP port; use a number like 8000")
    return port


ISOLATION_MODES = {
    "none": "every member's server runs as the hub's own system user (the demo)",
    "users": "each member's server runs as their own system account (production; the hub runs as root)",
}


def _isolation(value: str) -> str:
    mode = value.strip().lower() or "none"
    if mode not in ISOLATION_MODES:
        choices = "; ".join(f"{k}: {v}" for k, v in ISOLATION_MODES.items())
        raise SystemExit(f"leva: LEVA_ISOLATION={value!r} is not a mode; use one of {choices}")
    return mode


def _public_url(value: str) -> str | None:
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SystemExit(f"leva: LEVA_PUBLIC_URL={value!r} is not a URL; use one like https://leva.example.org/")
    return value if value.endswith("/") else value + "/"


def load_settings(environ=os.environ) -> Settings:
    state_dir = Path(environ.get("LEVA_STATE_DIR") or PROJECT_ROOT / "var").resolve()
    return Settings(
        state_dir=state_dir,
        courses_dir=courses_dir(),
        roster=Path(environ.get("LEVA_ROSTER") or PROJECT_ROOT / "hub" / "demo" / "roster.csv"),
        port=_port(environ.get("LEVA_PORT", "8000")),
        demo_password=environ.get("LEVA_DEMO_PASSWORD") or None,
        gradebook_url=environ.get("LEVA_GRADEBOOK_URL") or None,
        community_db=environ.get("LEVA_COMMUNITY_DB_URL") or None,
        isolation=_isolation(environ.get("LEVA_ISOLATION", "none")),
        public_url=_public_url(environ.get("LEVA_PUBLIC_URL", "")),
    )
