"""Backups of the platform's state, taken while it runs, and their restore.

A backup is one ``.tar.gz`` of the state dir: hub and member databases, the
community database, course gradebooks and folders (submissions, feedback), the
exchange and members' homes.  SQLite databases are copied with SQLite's online
backup, so each is consistent even while the hub writes to it; databases on
PostgreSQL (``LEVA_GRADEBOOK_URL``, ``LEVA_COMMUNITY_DB_URL``) are saved with
``pg_dump``.  A restore needs the hub stopped: it replaces the state dir.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlparse

MANIFEST = "leva-backup.json"
SKIP = {"jupyterhub-proxy.pid"}
SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _sqlite_copy(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) as the plain URL pg_dump understands."""
    parsed = urlparse(url)
    return parsed._replace(scheme="postgresql").geturl()


def postgres_urls(settings) -> dict[str, str]:
    urls = {}
    for name in ("gradebook_url", "community_db_url"):
        url = getattr(settings, name, None)
        if url and url.startswith("postgresql"):
            urls[name] = url
    return urls


def backup(settings, archive: Path, log=print) -> dict:
    """Write the state to ``archive``; return the manifest."""
    state = settings.state_dir
    manifest = {"created": dt.datetime.now(dt.timezone.utc).isoformat(), "state_dir": str(state),
                "sqlite": [], "postgres": {}, "files": 0}
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive, "w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(state):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(state)
            for name in dirnames:
                # every folder (a symlink as a link), empty ones too: learners submit into the exchange's
                # inbound/, which stays empty until the first submission
                tar.add(Path(dirpath, name), arcname=f"state/{rel_dir / name}", recursive=False)
            for name in sorted(filenames):
                path = Path(dirpath, name)
                rel = rel_dir / name
                if name in SKIP or path.is_socket() or name.endswith(("-journal", "-wal", "-shm")):
                    continue
                if is_sqlite(path):
                    copy = Path(tmp, f"{len(manifest['sqlite'])}.sqlite")
                    _sqlite_copy(path, copy)
                    tar.add(copy, arcname=f"state/{rel}")
                    manifest["sqlite"].append(str(rel))
                    log(f"database {rel}")
                else:
                    tar.add(path, arcname=f"state/{rel}", recursive=False)
                manifest["files"] += 1
        for name, url in postgres_urls(settings).items():
            dump = Path(tmp, f"{name}.pgdump")
            subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), _libpq_url(url)], check=True)
            tar.add(dump, arcname=f"postgres/{name}.pgdump")
            manifest["postgres"][name] = url
            log(f"database {name} (PostgreSQL)")
        data = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mode = 0o600
        tar.addfile(info, fileobj=io.BytesIO(data))
    os.chmod(archive, 0o600)
    return manifest


def restore(settings, archive: Path, log=print) -> dict:
    """Replace the state dir (and PostgreSQL databases) with the backup's."""
    state = settings.state_dir
    with tarfile.open(archive, "r:gz") as tar:
        manifest = json.load(tar.extractfile(MANIFEST))
        with tempfile.TemporaryDirectory(dir=state.parent) as tmp:
            tar.extractall(tmp, filter="tar")
            restored = Path(tmp, "state")
            if state.exists():
                aside = state.with_name(f"{state.name}.before-restore")
                shutil.rmtree(aside, ignore_errors=True)
                state.rename(aside)
                log(f"the previous state is kept in {aside}")
            restored.rename(state)
            for name, url in manifest["postgres"].items():
                dump = Path(tmp, "postgres", f"{name}.pgdump")
                subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", _libpq_url(url), str(dump)], check=True)
                log(f"database {name} (PostgreSQL)")
    log(f"restored {manifest['files']} files from the backup of {manifest['created']}")
    return manifest
