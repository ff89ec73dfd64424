"""nbgrader across the hub: one course directory, gradebook and formgrader service per course.

Each course of the catalogue gets, under the state dir:

- ``courses/<id>/``: its nbgrader course directory (``source`` links to the
  catalogue's; ``release``, ``submitted``, ``autograded``, ``feedback`` and the
  gradebook live here) with an ``nbgrader_config.py`` written at start-up;
- ``exchange/<id>/``: its part of the shared exchange (``path_includes_course``);
- a hub-managed service named after the course: a single-user server running
  as the course's grader, whose formgrader only the course's instructors
  (group ``formgrade-<id>``) may open. It holds no hub scopes: membership
  checks (who may fetch and submit) happen in members' servers.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .courses import Course

log = logging.getLogger(__name__)
JUPYTER_CONFIG = Path(__file__).resolve().parent / "jupyter"

COURSE_CONFIG = '''\
# Written by the hub at start-up from the course catalogue; edit {source} instead.
c = get_config()  # noqa: F821
load_subconfig({source!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course!r}
c.Exchange.root = {exchange!r}
c.Exchange.path_includes_course = True
'''


def course_root(state_dir: Path, course_id: str) -> Path:
    return state_dir / "courses" / course_id


def exchange_root(state_dir: Path) -> Path:
    return state_dir / "exchange"


def gradebook_url(state_dir: Path, course_id: str, template: str | None) -> str:
    """The course's gradebook: ``LEVA_GRADEBOOK_URL`` with ``{course}`` filled in, else SQLite."""
    if template:
        return template.format(course=course_id.replace("-", "_"))
    return f"sqlite:///{course_root(state_dir, course_id) / 'gradebook.db'}"


def prepare_course(course: Course, state_dir: Path, db_template: str | None = None) -> Path:
    """Create or refresh the course's nbgrader directory; return it."""
    root = course_root(state_dir, course.id)
    root.mkdir(parents=True, exist_ok=True)
    exchange = exchange_root(state_dir)
    exchange.mkdir(parents=True, exist_ok=True)
    # every member's server writes submissions here; nbgrader checks it is world-writable
    os.chmod(exchange, 0o777)
    source = root / "source"
    if source.is_symlink() and source.resolve() != course.source_dir:
        source.unlink()
    if not source.exists():
        source.symlink_to(course.source_dir, target_is_directory=True)
    config = COURSE_CONFIG.format(
        source=str(course.path / "nbgrader_config.py"), root=str(root), course=course.id, exchange=str(exchange)
    )
    config += f"c.CourseDirectory.db_url = {gradebook_url(state_dir, course.id, db_template)!r}\n"
    (root / "nbgrader_config.py").write_text(config)
    return root


def sync_gradebook(course: Course, db_url: str, students) -> None:
    """Put the course file's assignments (with due dates) and the roster's learners into the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id=course.id) as gb:
        for assignment in course.assignments:
            gb.update_or_create_assignment(assignment.name, duedate=assignment.due)
        for member in students:
            first, _, last = member.full_name.partition(" ")
            gb.update_or_create_student(member.username, first_name=first, last_name=last, email=member.email)


def formgrader_service(course: Course, root: Path, port: int) -> dict:
    """The course's formgrader: a single-user server of the course's grader, as a hub service."""
    args = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
    return {
        "name": course.id,
        "url": f"http://127.0.0.1:{port}",
        "display": False,
        "oauth_no_confirm": True,
        "command": [str(Path(sys.executable).parent / "jupyterhub-singleuser"), *args],
        "cwd": str(root),
        "environment": {
            "JUPYTER_CONFIG_PATH": str(JUPYTER_CONFIG / "grader"),
            "HOME": str(root),
        },
    }


def nbgrader_api(root: Path):
    """nbgrader's Python API on a course directory, configured by its ``nbgrader_config.py``."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return NbGraderAPI(config=config)


def release_first_assignment(course: Course, root: Path) -> str | None:
    """On a course's first start, generate and release its first assignment, so the cycle can begin."""
    if not course.assignments or (root / "release").exists():
        return None
    name = course.assignments[0].name
    api = nbgrader_api(root)
    for step in (api.generate_assignment, api.release_assignment):
        result = step(name)
        if not result["success"]:
            log.error("Could not release %s/%s: %s", course.id, name, result.get("error") or result.get("log"))
            return None
    log.info("Released %s/%s", course.id, name)
    return name
