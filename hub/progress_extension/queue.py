"""A durable queue of progress events in the member's home (``~/.leva/progress-queue.sqlite``).

Events wait here until the community service has acknowledged them, so a
service that is down, restarting or unreachable loses nothing: the server sends
them when it is back, and the service counts each event id once.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    count INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0
)
"""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class ProgressQueue:
    def __init__(self, path: Path, max_events: int = 10_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        # a send cut short by a stop: those events go again (the service counts each id once)
        self.db.execute("UPDATE events SET sending = 0")

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]

    def _insert(self, kind: str, path: str, payload: dict | None = None, count: int = 0) -> None:
        self.db.execute(
            "INSERT INTO events (event_id, kind, path, at, payload, count) VALUES (?, ?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, kind, path, now(), json.dumps(payload or {}), count),
        )
        # a member offline for months: keep the newest events, not an ever-growing file
        self.db.execute(
            "DELETE FROM events WHERE rowid <= (SELECT max(rowid) FROM events) - ?", (self.max_events,)
        )

    def opened(self, path: str) -> None:
        waiting = self.db.execute(
            "SELECT 1 FROM events WHERE kind = 'opened' AND path = ? AND sending = 0", (path,)
        ).fetchone()
        if not waiting:
            self._insert("opened", path)

    def saved(self, path: str, cells_run: int, cells_total: int) -> None:
        # only the latest save of a notebook matters
        self.db.execute("DELETE FROM events WHERE kind = 'saved' AND path = ? AND sending = 0", (path,))
        self._insert("saved", path, {"cells_run": cells_run, "cells_total": cells_total})

    def executed(self, path: str, count: int = 1) -> None:
        # one row per notebook counts its runs until it is sent
        updated = self.db.execute(
            "UPDATE events SET count = count + ?, at = ? WHERE kind = 'executed' AND path = ? AND sending = 0",
            (count, now(), path),
        ).rowcount
        if not updated:
            self._insert("executed", path, count=count)

    def take(self, limit: int) -> list[tuple[int, dict]]:
        """The oldest waiting events, marked as being sent."""
        rows = self.db.execute(
            "SELECT rowid, event_id, kind, path, at, payload, count FROM events WHERE sending = 0 ORDER BY rowid LIMIT ?",
            (limit,),
        ).fetchall()
        if rows:
            self.db.executemany("UPDATE events SET sending = 1 WHERE rowid = ?", [(r[0],) for r in rows])
        batch = []
        for rowid, event_id, kind, path, at, payload, count in rows:
            event = {"id": event_id, "kind": kind, "path": path, "at": at, **json.loads(payload)}
            if kind == "executed":
                event["count"] = count
            batch.append((rowid, event))
        return batch

    def done(self, rowids) -> None:
        self.db.executemany("DELETE FROM events WHERE rowid = ?", [(r,) for r in rowids])

    def retry(self, rowids) -> None:
        self.db.executemany("UPDATE events SET sending = 0 WHERE rowid = ?", [(r,) for r in rowids])

    def close(self) -> None:
        self.db.close()
