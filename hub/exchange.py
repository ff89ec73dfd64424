"""The nbgrader exchange, with submissions private to their author (nbgrader issue #978).

nbgrader's own submit leaves each submission world-readable, hidden only by an
unlistable inbound folder and a random name. Here a submission is readable by
its author and the course's grader (the hub's user) only.
"""

from __future__ import annotations

import os

from nbgrader.exchange.default.submit import ExchangeSubmit


def make_private(path: str) -> None:
    """Owner-only permissions on a folder tree: directories 0700, files 0600."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o600)


class PrivateSubmit(ExchangeSubmit):
    def copy_files(self):
        super().copy_files()
        make_private(os.path.join(self.inbound_path, self.assignment_filename))
