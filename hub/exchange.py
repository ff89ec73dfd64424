"""The nbgrader exchange, with submissions private to their author (nbgrader issue #978).

nbgrader's own submit leaves each submission world-readable, hidden only by an
unlistable inbound folder and a random name. Here a submission is readable by
its author and the course's grader (the hub's user) only.

In isolated mode (``LEVA_ISOLATION=users``, see :mod:`hub.permissions`) the
exchange's modes are the hub's, not nbgrader's: its root is root's alone
(nbgrader wants it writable by everyone, so anyone could plant a course in it),
each course's part is reachable by its learners only, and a submission counts
only if the account of the learner it names made it.
"""

from __future__ import annotations

import os
import stat

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.fetch_assignment import ExchangeFetchAssignment
from nbgrader.exchange.default.fetch_feedback import ExchangeFetchFeedback
from nbgrader.exchange.default.list import ExchangeList
from nbgrader.exchange.default.release_assignment import ExchangeReleaseAssignment
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.exchange.default.submit import ExchangeSubmit
from traitlets import default


def make_private(path: str) -> None:
    """Owner-only permissions on a folder tree: directories 0700, files 0600."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o600)


class PassThroughRoot:
    """Members need to pass through the exchange root, not to write in it."""

    def ensure_root(self):
        if not (os.path.isdir(self.root) and os.access(self.root, os.X_OK)):
            self.fail(f"Unreachable directory, please contact your instructor: {self.root}")


class PrivateSubmit(PassThroughRoot, ExchangeSubmit):
    def copy_files(self):
        super().copy_files()
        make_private(os.path.join(self.inbound_path, self.assignment_filename))


class MemberFetchAssignment(PassThroughRoot, ExchangeFetchAssignment):
    pass


class MemberFetchFeedback(PassThroughRoot, ExchangeFetchFeedback):
    pass


class MemberList(PassThroughRoot, ExchangeList):
    pass


class LockedRootReleaseAssignment(ExchangeReleaseAssignment):
    """Release without resetting the exchange root to 0777 (nbgrader does, at every release)."""

    def ensure_root(self):
        os.makedirs(self.root, mode=0o755, exist_ok=True)


class ReadableReleaseFeedback(ExchangeReleaseFeedback):
    """Feedback files readable by their learner although the formgrader writes under umask 077.

    They stay unlistable (``feedback/`` is 0711) and named by a hash of a secret
    only the submission's author holds.
    """

    def copy_files(self):
        super().copy_files()
        for entry in os.scandir(self.dest_path):
            if entry.is_file(follow_symlinks=False):
                os.chmod(entry.path, 0o644)


class OwnerCheckedCollect(ExchangeCollect):
    """Collect only submissions made by the account of the learner they name.

    Every learner may write into the inbound folder, so anyone could drop a
    folder named ``<someone-else>+<assignment>+<later timestamp>``; nbgrader
    only warns about it. Here such a folder is never collected, and it never
    hides the learner's own submissions.
    """

    @default("check_owner")
    def _no_name_check(self):
        return False  # nbgrader's compares the owner's name to the student's; accounts are named jupyter-<student>

    def _path_to_record(self, path):
        record = super()._path_to_record(path)
        record["forged"] = not self._made_by(path, record["username"])
        if record["forged"]:
            self.log.error("Not collected: %s names %s but was not made by their account", path, record["username"])
        return record

    @staticmethod
    def _made_by(path: str, student: str) -> bool:
        import pwd

        from .isolation import account_name

        try:
            st = os.lstat(path)
            return stat.S_ISDIR(st.st_mode) and st.st_uid == pwd.getpwnam(account_name(student)).pw_uid
        except (KeyError, OSError):
            return False

    def _sort_by_timestamp(self, records):
        genuine = [r for r in records if not r.get("forged")]
        return super()._sort_by_timestamp(genuine or records)

    def copy_files(self):
        self.src_records = [r for r in self.src_records if not r.get("forged")]
        super().copy_files()

    def do_copy(self, src, dest, log=None):
        """Copy a submission as its author reads it: root never opens a path inside it.

        A submission is a folder its learner controls; root following a link there
        would copy whatever the link names (a gradebook, a secret) into what is graded
        and fed back. So the learner's account packs it (``tar``, which stores links as
        links) and root unpacks regular files and folders only, with nbgrader's
        ignore, include and size rules.
        """
        import fnmatch
        import pwd
        import subprocess
        import tarfile
        from pathlib import PurePosixPath

        owner = pwd.getpwuid(os.lstat(src).st_uid)
        course_group = os.stat(self.course_path).st_gid  # the learner reaches inbound through it
        packer = subprocess.Popen(
            ["tar", "--create", "--file=-", "--directory", src, "."],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/",
            user=owner.pw_uid, group=owner.pw_gid, extra_groups=[course_group],
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},
        )
        ignore, include = self.coursedir.ignore, self.coursedir.include
        max_file = 1000 * self.coursedir.max_file_size if self.coursedir.max_file_size else None
        max_total, total = 1000 * self.coursedir.max_dir_size, 0
        os.makedirs(dest)
        try:
            with tarfile.open(fileobj=packer.stdout, mode="r|") as tar:
                for member in tar:
                    parts = PurePosixPath(member.name).parts
                    if not parts or parts == (".",):
                        continue
                    if not (member.isreg() or member.isdir()):
                        self.log.warning("Left out of %s: %s is not a plain file", src, member.name)
                        continue
                    if any(fnmatch.fnmatch(part, glob) for part in parts for glob in ignore):
                        continue
                    if member.isreg():
                        if include and not any(fnmatch.fnmatch(parts[-1], glob) for glob in include):
                            continue
                        if max_file and member.size > max_file:
                            self.log.warning("Left out of %s: %s is too large", src, member.name)
                            continue
                        total += member.size
                        if total > max_total:
                            raise RuntimeError(f"Directory size is too big: {src}")
                    tar.extract(member, dest, filter="data")
        finally:
            packer.stdout.close()
            packer.wait(timeout=60)
