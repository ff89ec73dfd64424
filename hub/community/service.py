"""How the hub runs the community service: its service entry, its roles, members' server environment."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..grading import JUPYTER_CONFIG
from ..roles import USER_ROLE
from ..settings import Settings

NAME = "community"

# The service's own token: who the members are, their groups (courses) and admin flag;
# it changes nothing in the hub.
SERVICE_ROLE = {
    "name": "community-service",
    "description": "Read members, their course groups and admin flag, for the community profiles",
    "scopes": ["list:users", "read:users"],
    "services": [NAME],
}


@dataclass(frozen=True)
class CommunityWiring:
    service: dict
    roles: list[dict]
    environment: dict  # for members' servers


def community_service(settings: Settings, port: int) -> CommunityWiring:
    hub_url = f"http://127.0.0.1:{settings.port}"
    environment = {
        "LEVA_STATE_DIR": str(settings.state_dir),
        "LEVA_COURSES_DIR": str(settings.courses_dir),
        "LEVA_PORT": str(settings.port),
        "LEVA_COMMUNITY_DB_URL": settings.community_db_url,
    }
    if settings.gradebook_url:
        environment["LEVA_GRADEBOOK_URL"] = settings.gradebook_url
    if settings.public_url:
        environment["LEVA_PUBLIC_URL"] = settings.public_url  # badges carry the public address
    service = {
        "name": NAME,
        "url": f"http://127.0.0.1:{port}",
        "display": True,
        "info": {"description": "Member profiles, progress and badges"},
        "oauth_no_confirm": True,
        "command": [sys.executable, "-m", "hub.community"],
        "environment": environment,
    }
    return CommunityWiring(
        service=service,
        roles=[USER_ROLE, SERVICE_ROLE],
        environment={
            # through the proxy, whose address outlives the service's (its port changes at each start)
            "LEVA_COMMUNITY_URL": f"{hub_url}/services/{NAME}/",
            # the JupyterLab launcher item (jupyter-app-launcher) that opens the member's profile
            "JUPYTER_APP_LAUNCHER_PATH": str(Path(JUPYTER_CONFIG) / "member"),
        },
    )
