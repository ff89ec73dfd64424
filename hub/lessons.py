"""Deliver a course's lessons into a member's home without losing their work.

The merge follows nbgitpuller's rules, on content hashes instead of git:

- a file the member does not have (new, or deleted by them) is copied in;
- a file the member has not changed since it was delivered is updated;
- a file the member changed is kept as it is; when the course changes it too,
  the new version is written beside it as ``<name>.update-<hash><suffix>``.

What was delivered is remembered in ``~/.leva/lessons/<course>.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
SKIP_DIRS = {".ipynb_checkpoints", "__pycache__"}


@dataclass
class SyncReport:
    course: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # member's edit kept, update written beside it

    def __str__(self) -> str:
        return (
            f"{self.course}: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.kept)} kept with the update beside them"
        )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _course_files(source: Path):
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            yield path.relative_to(source).as_posix(), path


def _copy(src: Path, dest: Path) -> None:
    """Copy atomically: a crash mid-copy never leaves a half-written lesson."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def update_name(dest: Path, digest: str) -> Path:
    return dest.with_name(f"{dest.stem}.update-{digest[:8]}{dest.suffix}")


def sync_lessons(course: str, source: Path, home: Path) -> SyncReport:
    """Bring ``source`` (a course's lessons) into ``home/<course>/``."""
    target = home / course
    manifest_path = home / ".leva" / "lessons" / f"{course}.json"
    try:
        delivered = json.loads(manifest_path.read_text())
    except (FileNotFoundError, ValueError):
        delivered = {}
    report = SyncReport(course)
    for rel, src in _course_files(source):
        dest = target / rel
        new = file_hash(src)
        previous = delivered.get(rel)
        if not dest.exists():
            _copy(src, dest)
            report.added.append(rel)
        else:
            mine = file_hash(dest)
            if mine == new or new == previous:
                pass  # up to date, or the course did not change: the member's copy stands
            elif mine == previous:
                _copy(src, dest)
                report.updated.append(rel)
            else:
                _copy(src, update_name(dest, new))
                report.kept.append(rel)
        delivered[rel] = new
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(delivered, indent=1, sort_keys=True))
    return report


def main(argv=None) -> int:
    """``python -m hub.lessons COURSE LESSONS HOME``: one merge, its report as JSON (run as the member)."""
    import dataclasses
    import sys

    course, source, home = (argv or sys.argv[1:])[:3]
    report = sync_lessons(course, Path(source), Path(home))
    print(json.dumps(dataclasses.asdict(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
