"""The deployment's settings, read from ``LEVA_*`` environment variables.

One place that names every variable, so the README, ``jupyterhub_config.py`` and
the ``leva`` command agree on defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .courses import PROJECT_ROOT, courses_dir


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    courses_dir: Path
    roster: Path
    port: int
    demo_password: str | None
    gradebook_url: str | None = None  # template with {course}; default: SQLite per course

    @property
    def hub_db_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}"

    @property
    def members_db_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'members.sqlite'}"

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


def load_settings(environ=os.environ) -> Settings:
    state_dir = Path(environ.get("LEVA_STATE_DIR") or PROJECT_ROOT / "var").resolve()
    return Settings(
        state_dir=state_dir,
        courses_dir=courses_dir(),
        roster=Path(environ.get("LEVA_ROSTER") or PROJECT_ROOT / "hub" / "demo" / "roster.csv"),
        port=_port(environ.get("LEVA_PORT", "8000")),
        demo_password=environ.get("LEVA_DEMO_PASSWORD") or None,
        gradebook_url=environ.get("LEVA_GRADEBOOK_URL") or None,
    )
