# Leva's JupyterHub: wiring only; the logic lives in the `hub` package.
# Settings come from LEVA_* environment variables (see README.md).
import sys
from pathlib import Path

from hub.community.service import community_service
from hub.deployment import prepare
from hub.grading import JUPYTER_CONFIG, course_root, exchange_root, formgrader_service
from hub.hubapi import admin_service
from hub.roles import IDLE_CULLER_ROLE, SERVER_TOKEN_SCOPES, course_roles
from hub.security import careful_settings
from jupyterhub.utils import random_port

c = get_config()  # noqa: F821
leva = prepare()
state = leva.settings.state_dir
project = Path(__file__).resolve().parent

# The embedded default: one machine, SQLite, everything under the state dir.
c.JupyterHub.bind_url = f"http://127.0.0.1:{leva.settings.port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.db_url = leva.settings.hub_db_url
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.command = [str(project / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.template_paths = [str(project / "hub" / "templates")]

# Token expiry, PKCE, members' servers on the platform's config only, LEVA_PUBLIC_URL (hub/security.py).
c.merge(careful_settings(leva.settings))

# Members-only sign-in.
c.JupyterHub.authenticator_class = "hub.auth.LevaAuthenticator"
c.LevaAuthenticator.db_url = leva.settings.members_db_url
c.Authenticator.admin_users = leva.seed.admins

# Course groups and roles; membership lives in the hub database from here on.
c.JupyterHub.load_groups = leva.seed.groups
c.JupyterHub.load_roles = course_roles(leva.courses) + [IDLE_CULLER_ROLE]

# Each member's server: JupyterLab in a home holding their courses' lessons; with
# LEVA_ISOLATION=users, as the member's own system account (hub/isolation.py, SECURITY.md).
ISOLATED = leva.settings.isolation == "users"
c.JupyterHub.spawner_class = "hub.isolation.IsolatedSpawner" if ISOLATED else "hub.spawner.LevaSpawner"
c.LevaSpawner.home_dir_template = str(leva.settings.homes_dir / "{username}")
c.LevaSpawner.courses_dir = str(leva.settings.courses_dir)
c.Spawner.default_url = "/lab"
c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
c.LevaSpawner.jupyter_config_dir = str(JUPYTER_CONFIG)
c.Spawner.environment = {"LEVA_EXCHANGE_DIR": str(exchange_root(state))}
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120

c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600", "--cull-every=300"],
    },
    admin_service(state),  # the `leva` command's way in
] + [formgrader_service(course, course_root(state, course.id), random_port()) for course in leva.courses.values()]

# Community profiles (hub/community/): the service, members' `user` role and the service's, progress reports.
community = community_service(leva.settings, random_port())
c.JupyterHub.services += [community.service]
c.JupyterHub.load_roles += community.roles
c.Spawner.environment.update(community.environment)
