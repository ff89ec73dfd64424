"""A member's personal data (GDPR): everything held on them, exported or erased.

Where a member leaves traces:

- the hub (user, groups, tokens) and the member store (name, e-mail, password hash);
- each course: the gradebook (student record, submissions, grades, comments),
  the course folders ``submitted/``, ``autograded/``, ``feedback/`` and the
  grader's log, and the exchange (submissions, released feedback);
- their home folder (lessons, assignments, notes);
- the community service (profile, progress, badges), through its hook.

Erasing keeps aggregate statistics: the member's grades stay in each gradebook
under a pseudonym without name or e-mail, so course averages do not change.
Every SQLite file touched is vacuumed, so no deleted row lingers in free pages.
"""

from __future__ import annotations

import hashlib
import json
import time
import os
import shutil
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .grading import course_root, exchange_root, gradebook_url


@dataclass
class Traces:
    """The files and records of one member, found across the state."""

    username: str
    files: dict[str, Path] = field(default_factory=dict)  # name in the export -> file
    folders: list[Path] = field(default_factory=list)  # removed on erase


def pseudonym(username: str) -> str:
    return "erased-" + hashlib.sha256(username.encode()).hexdigest()[:12]


def _walk(folder: Path, prefix: str, traces: Traces) -> None:
    """The member's files below ``folder``: plain files only, never through a link (a member may
    plant one pointing at a file that is not theirs)."""
    if folder.is_symlink() or not folder.is_dir():
        return
    traces.folders.append(folder)
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not follow links
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if not path.is_symlink() and path.is_file():
                traces.files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path


def released_feedback(root: Path, exchange: Path, username: str):
    """The member's feedback files in the exchange, named as nbgrader names them (a hash of the
    submission's secret and the notebook)."""
    from nbgrader.utils import notebook_hash

    for html in sorted((root / "feedback" / username).glob("*/*.html")):
        secret_file = root / "submitted" / username / html.parent.name / "submission_secret.txt"
        if secret_file.exists():
            checksum = notebook_hash(secret=secret_file.read_text(), notebook_id=html.stem)
            path = exchange / "feedback" / f"{checksum}.html"
            if path.exists():
                yield path


class PersonalData:
    def __init__(self, admin, homes_dir: Path, community=None, isolated: bool = False):
        self.admin = admin  # hub.admin.Administration
        self.homes_dir = homes_dir
        self.isolated = isolated  # members have system accounts (LEVA_ISOLATION=users)
        self.community = community  # optional hook: .export(username) -> dict, .erase(username) -> str

    @property
    def state_dir(self) -> Path:
        return Path(self.admin.state_dir)

    def needles(self, username: str) -> list[bytes]:
        record = self.admin.store.get(username)
        words = [username] + ([record.full_name, record.email] if record else [])
        return [w.encode() for w in words if w]

    def traces(self, username: str) -> Traces:
        traces = Traces(username)
        _walk(self.homes_dir / username, "home", traces)
        for course in self.admin.courses:
            root = course_root(self.state_dir, course)
            exchange = exchange_root(self.state_dir) / course
            for path in released_feedback(root, exchange, username):
                traces.files[f"exchange/{course}/feedback/{path.name}"] = path
            for step in ("submitted", "autograded", "feedback"):
                _walk(root / step / username, f"courses/{course}/{step}", traces)
            for path in sorted((exchange / "inbound").glob(f"{username}+*")):
                _walk(path, f"exchange/{course}/inbound/{path.name}", traces)
        return traces

    def gradebook_records(self, username: str) -> dict:
        records = {}
        for course in self.admin.courses:
            with self.admin.gradebook(course) as gb:
                try:
                    student = gb.find_student(username)
                except Exception:
                    continue
                records[course] = {
                    "student": student.to_dict(),
                    "submissions": [
                        {**s.to_dict(), "notebooks": [
                            {"name": nb.name,
                             "grades": [g.to_dict() for g in nb.grades],
                             "comments": [c.to_dict() for c in nb.comments]}
                            for nb in s.notebooks]}
                        for s in student.submissions
                    ],
                }
        return records

    # export

    def export(self, username: str, archive: Path) -> list[str]:
        """Write everything held on the member as a zip of JSON and files; return its contents."""
        user = self.admin.require(username)
        record = self.admin.store.get(username)
        member = {
            "username": username,
            "full_name": record.full_name if record else "",
            "email": record.email if record else "",
            "active": record.active if record else None,
            "password_set_at": record.password_set_at.isoformat() if record and record.password_set_at else None,
            "hub": {k: user.get(k) for k in ("name", "admin", "groups", "created", "last_activity")},
        }
        traces = self.traces(username)
        documents = {"member.json": member, "gradebooks.json": self.gradebook_records(username)}
        if self.community is not None:
            documents["community.json"] = self.community.export(username)
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, document in documents.items():
                z.writestr(name, json.dumps(document, indent=1, default=str))
            for name, path in traces.files.items():
                z.write(path, f"files/{name}")
        return list(documents) + [f"files/{name}" for name in traces.files]

    # erase

    def erase(self, username: str) -> list[str]:
        """Delete or anonymise the member everywhere; return what was done."""
        done = []
        needles = self.needles(username)
        traces = self.traces(username)
        api = self.admin.api
        if api.user(username) is not None:
            api.stop_server(username)
            api.delete_user(username)
            done.append("hub: server stopped, user, groups and tokens deleted")
        for course in self.admin.courses:
            if self._anonymise_gradebook(course, username):
                done.append(f"{course}: grades kept under {pseudonym(username)}, name and e-mail removed")
            for log in course_root(self.state_dir, course).glob("*.log"):
                if self._redact_lines(log, needles):
                    done.append(f"{course}: lines naming the member removed from {log.name}")
        if self.community is not None:  # after the gradebooks, so its grade watcher cannot bring a score back
            done.append(f"community: {self.community.erase(username)}")
        for folder in traces.folders:
            shutil.rmtree(folder, ignore_errors=True)
        for name, path in traces.files.items():
            if path.exists():
                path.unlink()
        done.append(f"files: {len(traces.files)} deleted (home, submissions, feedback, exchange)")
        self.admin.store.remove(username)
        done.append("member store: name, e-mail, password and sign-in history deleted")
        if self.isolated:
            from .isolation import forget_member

            forget_member(username)
            done.append("system accounts removed")
        for db in self._sqlite_files():
            _vacuum(db)
        done.append("databases vacuumed: no deleted row is left in their free pages")
        return done

    def _anonymise_gradebook(self, course: str, username: str) -> bool:
        url = gradebook_url(self.state_dir, course, self.admin.gradebook_template)
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        alias = pseudonym(username)
        with engine.begin() as db:
            if not db.execute(text("SELECT 1 FROM student WHERE id = :u"), {"u": username}).first():
                return False
            db.execute(text("INSERT INTO student (id) VALUES (:a)"), {"a": alias})
            db.execute(text("UPDATE submitted_assignment SET student_id = :a WHERE student_id = :u"), {"a": alias, "u": username})
            db.execute(text("DELETE FROM student WHERE id = :u"), {"u": username})
        engine.dispose()
        self.admin._students.pop(course, None)
        return True

    @staticmethod
    def _redact_lines(path: Path, needles: list[bytes]) -> bool:
        lines = path.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not any(n in line for n in needles)]
        if len(kept) == len(lines):
            return False
        path.write_bytes(b"".join(kept))
        return True

    def _sqlite_files(self):
        from .backup import is_sqlite

        for path in self.state_dir.rglob("*"):
            if path.is_file() and is_sqlite(path):
                yield path


def _vacuum(path: Path) -> None:
    """VACUUM (and empty the write-ahead log) with retries: the hub may be writing at the same moment."""
    for _ in range(20):
        db = sqlite3.connect(path, timeout=10)
        try:
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        except sqlite3.OperationalError:
            time.sleep(0.5)
        finally:
            db.close()
    raise RuntimeError(f"could not vacuum {path}: it stays busy")

