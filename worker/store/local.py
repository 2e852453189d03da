"""An embedded checkpoint store in one SQLite file, for running jobs on a single machine.

It implements the same lease-and-fencing protocol as the Redis store, so two
local processes running the same job cannot both write its checkpoints.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import LeaseHeld, LeaseLost, StoreUnavailable
from ..owners import owner_gone
from .base import LogLine, ProgressUpdate

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    token INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_expires REAL NOT NULL DEFAULT 0,
    state BLOB,
    checkpoints INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    items INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS logs (
    job_id TEXT NOT NULL, ts REAL NOT NULL, level INTEGER NOT NULL, message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_job ON logs (job_id);
CREATE TABLE IF NOT EXISTS warnings (job_id TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_bases (
    job_id TEXT NOT NULL, slot TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (job_id, slot)
);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""

LOG_ROWS_KEPT = 1000


class LocalStore:
    """SQLite-backed :class:`~wasmjob.store.base.CheckpointStore`; takes the state directory."""

    def __init__(self, state_dir: Path | str) -> None:
        self.path = Path(state_dir) / "wasmjob.sqlite3"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open local store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"local store {self.path}: {exc}") from exc

    def _fenced(self, db: sqlite3.Connection, job_id: str, token: int) -> None:
        row = db.execute("SELECT token FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None or row[0] != token:
            raise LeaseLost("lease lost: a newer run of this job took over", job_id=job_id)

    def acquire(self, job_id: str, owner: str, ttl: float) -> int:
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT token, owner, lease_expires FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                db.execute("INSERT INTO jobs (job_id) VALUES (?)", (job_id,))
                token = 0
            else:
                token, holder, expires = row
                if holder and holder != owner and expires > now and not owner_gone(holder):
                    raise LeaseHeld(f"already running in {holder}", job_id=job_id)
            db.execute(
                "UPDATE jobs SET token = ?, owner = ?, lease_expires = ? WHERE job_id = ?",
                (token + 1, owner, now + ttl, job_id),
            )
            return int(token + 1)

    def renew(self, job_id: str, token: int, ttl: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE job_id = ? AND token = ? AND owner IS NOT NULL",
                (time.time() + ttl, job_id, token),
            )
            return cur.rowcount == 1

    def release(self, job_id: str, token: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET owner = NULL, lease_expires = 0 WHERE job_id = ? AND token = ?",
                (job_id, token),
            )

    def load_checkpoint(self, job_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def save_checkpoint(
        self, job_id: str, token: int, state: bytes, update: ProgressUpdate | None = None
    ) -> None:
        with self._tx() as db:
            self._fenced(db, job_id, token)
            db.execute(
                "UPDATE jobs SET state = ?, checkpoints = checkpoints + 1, updated = ? WHERE job_id = ?",
                (state, time.time(), job_id),
            )
            if update is not None:
                self._apply(db, job_id, update)

    def save_snapshot_base(self, job_id: str, token: int, slot: str, data: bytes) -> None:
        """A full snapshot into base slot ``slot`` (snapshot mode), fenced like a checkpoint."""
        with self._tx() as db:
            self._fenced(db, job_id, token)
            db.execute(
                "INSERT INTO snapshot_bases (job_id, slot, data) VALUES (?, ?, ?)"
                " ON CONFLICT (job_id, slot) DO UPDATE SET data = excluded.data",
                (job_id, slot, data),
            )

    def load_snapshot_base(self, job_id: str, slot: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM snapshot_bases WHERE job_id = ? AND slot = ?", (job_id, slot)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def record_progress(self, job_id: str, token: int, update: ProgressUpdate) -> None:
        with self._tx() as db:
            self._fenced(db, job_id, token)
            self._apply(db, job_id, update)

    def _apply(self, db: sqlite3.Connection, job_id: str, update: ProgressUpdate) -> None:
        db.execute(
            "UPDATE jobs SET progress = COALESCE(?, progress), message = COALESCE(?, message),"
            " items = items + ?, bytes = bytes + ?, updated = ? WHERE job_id = ?",
            (update.progress, update.message, update.items, update.bytes, time.time(), job_id),
        )
        if update.logs:
            db.executemany(
                "INSERT INTO logs (job_id, ts, level, message) VALUES (?, ?, ?, ?)",
                [(job_id, line.ts, line.level, line.message) for line in update.logs],
            )
            db.execute(
                "DELETE FROM logs WHERE job_id = ? AND rowid NOT IN"
                " (SELECT rowid FROM logs WHERE job_id = ? ORDER BY rowid DESC LIMIT ?)",
                (job_id, job_id, LOG_ROWS_KEPT),
            )
        if update.warnings:
            db.executemany(
                "INSERT INTO warnings (job_id, message) VALUES (?, ?)",
                [(job_id, w) for w in update.warnings],
            )

    def kv_get(self, namespace: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
        return None if row is None else str(row[0])

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )

    def job(self, job_id: str) -> dict[str, Any] | None:
        """Everything stored about one job, for ``wasmjob run`` and tests."""
        with self._lock:
            row = self._db.execute(
                "SELECT token, owner, checkpoints, progress, message, items, bytes, meta FROM jobs WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            logs = self._db.execute(
                "SELECT ts, level, message FROM logs WHERE job_id = ? ORDER BY rowid", (job_id,)
            ).fetchall()
            warnings = self._db.execute("SELECT message FROM warnings WHERE job_id = ? ORDER BY rowid", (job_id,)).fetchall()
        token, owner, checkpoints, progress, message, items, nbytes, meta = row
        return {
            "token": token,
            "owner": owner,
            "checkpoints": checkpoints,
            "progress": progress,
            "message": message,
            "items": items,
            "bytes": nbytes,
            "meta": json.loads(meta),
            "logs": [LogLine(*line) for line in logs],
            "warnings": [w[0] for w in warnings],
        }

    def set_meta(self, job_id: str, **meta: Any) -> None:
        """Merge descriptive fields (status, result, error) into the job's row."""
        with self._tx() as db:
            row = db.execute("SELECT meta FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            current = json.loads(row[0]) if row else {}
            current.update(meta)
            if row is None:
                db.execute("INSERT INTO jobs (job_id, meta) VALUES (?, ?)", (job_id, json.dumps(current)))
            else:
                db.execute("UPDATE jobs SET meta = ? WHERE job_id = ?", (json.dumps(current), job_id))

    def forget(self, job_id: str) -> None:
        """Drop a job's checkpoint and history so the next run starts fresh."""
        with self._tx() as db:
            for table in ("jobs", "logs", "warnings", "snapshot_bases"):
                db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
