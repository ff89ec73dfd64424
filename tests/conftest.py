"""Fixtures: a real hub (proxy, single-user servers, kernels) on a copy of the courses."""

from __future__ import annotations

import shutil

import pytest

from hub.courses import courses_dir
from tests.hubtools import PROJECT, RunningHub


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
