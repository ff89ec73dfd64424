"""What happens after a submission is graded: the hook later services subscribe to.

``leva grade`` calls :func:`notify_graded` once per submission, right after
its results are in the gradebook (and its ``autograded`` folder is in
place), with a :class:`GradedSubmission`.  The community profiles, which do
not exist yet, are meant to subscribe here so that a learner's profile shows
a new score without anyone running another command::

    from graders import hooks

    @hooks.on_graded
    def refresh_profile(event: hooks.GradedSubmission) -> None:
        ...

A subscriber may also be named in configuration, as ``module:function``, in
the ``LEVA_GRADED_HOOKS`` environment variable (several separated by
commas); it is imported the first time a submission is graded.

A subscriber that raises is logged and skipped: grading never stops for it.
Subscribers run in the grading process, one submission at a time, so they
should be quick (queue the work rather than do it).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("leva.grade.hooks")

ENVIRONMENT_VARIABLE = "LEVA_GRADED_HOOKS"


@dataclasses.dataclass(frozen=True)
class GradedSubmission:
    """One submission's grading, as the gradebook now has it."""

    course_id: str
    assignment: str
    student: str
    status: str                 # "graded" or "failed" (a failed submission scores 0, awaiting a person)
    score: float | None         # autograded points, after any late penalty
    max_score: float | None     # autograded points available
    reason: str                 # why it failed; empty when graded
    db_url: str                 # the course's gradebook
    autograded: Path            # the submission's autograded folder (absent when it failed)


Subscriber = Callable[[GradedSubmission], None]

_subscribers: list[Subscriber] = []
_configured: set[str] = set()


def on_graded(subscriber: Subscriber) -> Subscriber:
    """Subscribe to graded submissions (usable as a decorator)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def _load_configured() -> None:
    for name in filter(None, (part.strip() for part in os.environ.get(ENVIRONMENT_VARIABLE, "").split(","))):
        if name in _configured:
            continue
        _configured.add(name)
        module, _, attribute = name.partition(":")
        try:
            on_graded(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError) as e:
            log.error("%s: cannot load the graded-submission hook %r: %s", ENVIRONMENT_VARIABLE, name, e)


def notify_graded(event: GradedSubmission) -> None:
    """Tell every subscriber that ``event.student``'s submission was graded."""
    _load_configured()
    for subscriber in list(_subscribers):
        try:
            subscriber(event)
        except Exception:  # noqa: BLE001 - a subscriber never stops grading
            log.exception("graded-submission hook %r failed for %s", subscriber, event.student)
