"""The ``community`` service: a Tornado application behind the hub's proxy, signed in with HubOAuth.

Started by the hub as a managed service (see :mod:`.service`) with
``python -m hub.community``; JupyterHub hands it its URL, prefix and API token
in ``JUPYTERHUB_*`` variables, and Leva's settings come from ``LEVA_*`` ones.
At start it brings its database to the newest schema, then serves the API and
pages and follows the course gradebooks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Application

from ..courses import load_courses
from ..grading import exchange_root, gradebook_url
from ..settings import load_settings
from .admin_pages import MemberAdmin, admin_handlers
from .api import api_handlers
from .badges import Issuer
from .gradebooks import CourseGradebook, GradebookWatcher
from .pages import page_handlers, template_environment
from .people import HubPeople
from .signing import Signer
from .state import Community
from .store import open_database


def _secret(path: Path) -> bytes:
    """A secret kept across restarts, so members' sign-in cookies survive them."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


class CommunityApp(Application):
    name = "leva-community"
    description = "Leva's community profiles: members' progress, badges and directory, as a JupyterHub service."

    db_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of the service's database (LEVA_COMMUNITY_DB_URL); default: SQLite in
        <state dir>/community/. `postgresql://` URLs use psycopg 3.""",
    )

    @default("db_url")
    def _db_url(self):
        return load_settings().community_db_url

    state_dir = Unicode(config=True, help="The platform's state dir (LEVA_STATE_DIR): gradebooks, exchange, keys.")

    @default("state_dir")
    def _state_dir(self):
        return str(load_settings().state_dir)

    courses_dir = Unicode(config=True, help="The course catalogue (LEVA_COURSES_DIR).")

    @default("courses_dir")
    def _courses_dir(self):
        return str(load_settings().courses_dir)

    gradebook_url = Unicode(
        None, allow_none=True, config=True,
        help="Gradebook URL template with {course} (LEVA_GRADEBOOK_URL); default: each course's SQLite gradebook.",
    )

    @default("gradebook_url")
    def _gradebook_url(self):
        return load_settings().gradebook_url

    public_url = Unicode(
        config=True,
        help="""The platform's public URL, e.g. https://leva.example.org/; badges name the service by it.
        Default: LEVA_PUBLIC_URL, else http://127.0.0.1:<LEVA_PORT>/.""",
    )

    @default("public_url")
    def _public_url(self):
        settings = load_settings()
        return settings.public_url or f"http://127.0.0.1:{settings.port}/"

    poll_interval = Float(2.0, config=True, help="Seconds between two looks at the course gradebooks.")
    people_max_age = Float(10.0, config=True, help="Seconds the copy of the hub's users is trusted before a refresh.")
    at_risk_days = Integer(7, config=True, help="Learners with no activity for this many days are at risk.")
    low_score = Float(0.5, config=True, help="Learners whose mean graded score is below this share are at risk.")
    pass_score = Float(0.7, config=True, help="Share of points that passes, for courses without a badge.")

    aliases = {"db-url": "CommunityApp.db_url", "public-url": "CommunityApp.public_url"}

    def build(self) -> tuple[web.Application, GradebookWatcher]:
        state = Path(self.state_dir)
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/community/")
        catalogue = load_courses(Path(self.courses_dir))
        sessions = open_database(self.db_url)
        signer = Signer.from_file(state / "community" / "issuer-ed25519.pem")
        issuer = Issuer(signer, url_path_join(self.public_url, prefix))
        community = Community(
            sessions=sessions,
            catalogue=catalogue,
            people=HubPeople(max_age=self.people_max_age),
            issuer=issuer,
            exchange_dir=exchange_root(state),
            at_risk_days=self.at_risk_days,
            low_score=self.low_score,
            pass_score=self.pass_score,
        )

        def award(pairs):
            with sessions() as db:
                issuer.award(db, catalogue, pairs)
                db.commit()

        watcher = GradebookWatcher(
            sessions,
            [
                CourseGradebook(
                    course_id,
                    gradebook_url(state, course_id, self.gradebook_url),
                    exchange_root(state) / course_id / "inbound",
                )
                for course_id in catalogue
            ],
            interval=self.poll_interval,
            on_change=award,
        )
        handlers = [(url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler)]
        handlers += api_handlers(prefix) + page_handlers(prefix) + admin_handlers(prefix)
        # the administration pages act with the state dir's `leva-admin` token, as the `leva` command does
        admin_settings = dataclasses.replace(load_settings(), state_dir=state, gradebook_url=self.gradebook_url)
        app = web.Application(
            handlers,
            cookie_secret=_secret(state / "community" / "cookie_secret"),
            community=community,
            prefix=prefix,
            jinja=template_environment(),
            member_admin=MemberAdmin(community, admin_settings),
        )
        return app, watcher

    async def serve(self):
        app, watcher = self.build()
        url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
        server = HTTPServer(app, xheaders=True)
        server.listen(url.port, url.hostname)
        self.log.info("Community service listening on %s", url.geturl())
        watcher.start()
        stop = asyncio.Event()
        # the hub stops its services with SIGTERM: finish cleanly (every write is already committed)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.stop()

    def start(self):
        asyncio.run(self.serve())


main = CommunityApp.launch_instance
