"""Fixtures: a real hub (proxy, single-user servers, kernels) on a copy of the courses."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from hub.courses import courses_dir
from tests.hubtools import PROJECT, RunningHub

pytest_plugins = ["tests.browser"]  # the browser journeys: Playwright fixtures, screenshots, failure artifacts


@pytest.fixture(scope="session")
def hub_courses(tmp_path_factory):
    """A copy of the course catalogue the tests may change."""
    target = tmp_path_factory.mktemp("catalogue") / "courses"
    shutil.copytree(courses_dir(), target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return target


@pytest.fixture(scope="session")
def hub(tmp_path_factory, hub_courses):
    """The platform as `make run` starts it, with the demo roster."""
    running = RunningHub(
        state_dir=tmp_path_factory.mktemp("hub") / "var",
        courses_dir=hub_courses,
        roster=PROJECT / "hub" / "demo" / "roster.csv",
    )
    running.start()
    yield running
    running.stop()


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres_database():
    """Make fresh PostgreSQL databases (dropped at the end); returns a factory of SQLAlchemy URLs.

    Skips when no server answers on 127.0.0.1:5432, except under CI, where that is a failure.
    """
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable under CI: {e}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({e}); tests/start-services.sh starts one")
    made = []

    def make(label: str) -> str:
        name = f"leva_{label}_{uuid.uuid4().hex[:8]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{POSTGRES}/{name}"

    yield make
    for name in made:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
