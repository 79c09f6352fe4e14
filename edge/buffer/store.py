"""SqliteBuffer: the gateway's durable store, written by one thread in group commits.

Guarantee, in two sentences: a message is not acknowledged to the broker until the
transaction that holds its reading (or quarantine row) has committed with the configured
`synchronous` level; a row is not removed from the buffer until the central side has it.
WAL mode lets readers (status, syncer) run beside the writer. `synchronous=FULL` is the
default because NORMAL can lose the last commits on a power cut (not on a process crash).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from edge.buffer.eviction import Eviction, enforce_cap
from edge.buffer.salvage import SalvageReport, move_aside, salvage
from edge.buffer.schema import APPLICATION_ID, KINDS, SCHEMA_VERSION, migrate, transaction
from edge.errors import BufferSchemaError, BufferWriteError
from edge.ingest.timestamps import datetime_to_us
from edge.logs import RateLimitedLog
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, QuarantineRecord, Reading, TaskRecord
from edge.settings import BufferSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
_CAP_CHECK_INTERVAL_S = 1.0

_INSERT_READING = (
    "INSERT OR IGNORE INTO readings "
    "(sensor_id, asset_id, ts_us, value, unit, quality, flags, received_us) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (received_us, source, payload, reason, detail) VALUES (?, ?, ?, ?, ?)"
)
# What the syncer reads per kind, oldest first (after its cursor).
SYNC_QUERIES = {
    "readings": "SELECT seq, sensor_id, asset_id, ts_us, value, unit, quality, flags, received_us "
                "FROM readings WHERE seq > ? ORDER BY seq LIMIT ?",
    "alerts": "SELECT seq, alert_id, body FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?",
    "tasks": "SELECT seq, task_id, body FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?",
}
SYNCED_KINDS = tuple(SYNC_QUERIES)
_RECENT_READINGS = (
    "SELECT sensor_id, asset_id, ts_us, value, unit, quality, flags, received_us FROM readings "
    "WHERE received_us >= ? ORDER BY seq DESC LIMIT ?"
)
_LATEST_OPEN = (
    "SELECT body FROM {table} WHERE seq IN (SELECT max(seq) FROM {table} GROUP BY {id}) "
    "AND state = 'open' ORDER BY seq"
)
_LATEST_ITEMS = (
    "SELECT body FROM {table} WHERE seq IN (SELECT max(seq) FROM {table} GROUP BY {id}) "
    "AND (? IS NULL OR state = ?) ORDER BY seq DESC LIMIT ?"
)
# Purge synced rows older than the keep time, but never the latest version of an item that
# is still open: it is what a restart restores.
_PURGE = {
    "readings": "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE seq <= ? "
                "AND received_us < ? ORDER BY seq LIMIT ?)",
    "alerts": "DELETE FROM alerts WHERE seq IN (SELECT seq FROM alerts AS a WHERE seq <= ? "
              "AND updated_us < ? AND (state != 'open' OR seq < (SELECT max(seq) FROM alerts "
              "AS b WHERE b.alert_id = a.alert_id)) ORDER BY seq LIMIT ?)",
    "tasks": "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks AS a WHERE seq <= ? "
             "AND updated_us < ? AND (state != 'open' OR seq < (SELECT max(seq) FROM tasks "
             "AS b WHERE b.task_id = a.task_id)) ORDER BY seq LIMIT ?)",
}
_TIME_COLUMN = {"readings": "received_us", "alerts": "updated_us", "tasks": "updated_us",
                "quarantine": "received_us"}


@dataclass(frozen=True, slots=True)
class CommitResult:
    inserted: int
    duplicates: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class KindDepth:
    rows: int
    unsynced: int
    oldest_unsynced_us: int | None


class SqliteBuffer:
    """Async facade over one SQLite connection owned by a dedicated writer thread."""

    def __init__(self, settings: BufferSettings, gateway_id: str,
                 metrics: GatewayMetrics | None = None) -> None:
        self._settings = settings
        self._gateway_id = gateway_id
        self._metrics = metrics
        self._evictions_log = RateLimitedLog(log, interval_s=30)
        self._next_cap_check = 0.0
        self.moved_aside: tuple[Path, str] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-writer")
        # Reads for the syncer run on their own thread and connection (WAL lets them
        # proceed while the writer commits), so a sync never delays an acknowledgement.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-reader")
        self._conn: sqlite3.Connection | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self.path = settings.path
        self.last_error: str | None = None

    async def __aenter__(self) -> SqliteBuffer:
        await self._run(self._open)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader_conn is not None:
            await self._read(self._close_reader)
        if self._conn is not None:
            await self._run(self._close)
        self._reader.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    @property
    def writable(self) -> bool:
        return self._conn is not None and self.last_error is None

    async def commit_batch(self, readings: Sequence[Reading],
                           quarantine: Sequence[QuarantineRecord]) -> CommitResult:
        """Commit readings and quarantine rows in one transaction; raise BufferWriteError if not."""
        try:
            result = await self._run(self._commit, readings, quarantine)
        except sqlite3.Error as exc:
            self.last_error = f"buffer commit failed: {exc}"
            raise BufferWriteError(f"{self.path}: {exc}") from exc
        self.last_error = None
        return result

    async def append_alerts(self, alerts: Sequence[AlertRecord]) -> None:
        """Log new alert versions (each state change is a row; the central side keeps the latest)."""
        rows = [(a.alert_id, a.state, datetime_to_us(a.updated_at), a.model_dump_json()) for a in alerts]
        await self._write("INSERT INTO alerts (alert_id, state, updated_us, body) VALUES (?, ?, ?, ?)",
                          rows)

    async def append_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        rows = [(t.task_id, t.state, datetime_to_us(t.updated_at), t.model_dump_json()) for t in tasks]
        await self._write("INSERT INTO tasks (task_id, state, updated_us, body) VALUES (?, ?, ?, ?)",
                          rows)

    async def recent_readings(self, since_received_us: int, limit: int = 200_000) -> list[Reading]:
        """The newest readings received since `since_received_us`, oldest first (warm-up)."""
        rows = await self._read(self._select, _RECENT_READINGS, (since_received_us, limit))
        return [Reading(*row) for row in reversed(rows)]

    async def open_alerts(self) -> list[AlertRecord]:
        """The latest version of every alert whose latest version is open."""
        rows = await self._read(self._select, _LATEST_OPEN.format(table="alerts", id="alert_id"), ())
        return [AlertRecord.model_validate_json(body) for (body,) in rows]

    async def open_tasks(self) -> list[TaskRecord]:
        rows = await self._read(self._select, _LATEST_OPEN.format(table="tasks", id="task_id"), ())
        return [TaskRecord.model_validate_json(body) for (body,) in rows]

    async def latest_alerts(self, state: str | None = None, limit: int = 1000) -> list[AlertRecord]:
        """The latest version of each alert, newest first; optionally only in `state`."""
        rows = await self._read(self._select, _LATEST_ITEMS.format(table="alerts", id="alert_id"),
                                (state, state, limit))
        return [AlertRecord.model_validate_json(body) for (body,) in rows]

    async def latest_tasks(self, state: str | None = None, limit: int = 1000) -> list[TaskRecord]:
        rows = await self._read(self._select, _LATEST_ITEMS.format(table="tasks", id="task_id"),
                                (state, state, limit))
        return [TaskRecord.model_validate_json(body) for (body,) in rows]

    async def salvage_from(self, old: Path) -> SalvageReport:
        """Copy every readable row of an old (moved-aside) buffer file into this one."""
        return await self._run(lambda: salvage(old, self._connection()))

    async def depths(self) -> dict[str, KindDepth]:
        """Rows, unsynced rows and the oldest unsynced row's time, per kind."""
        return await self._read(self._depths)

    async def sync_cursor(self, kind: str) -> int:
        """The last sequence number of `kind` that the central database has."""
        return await self._read(self._cursor, kind)

    async def read_unsynced(self, kind: str, after_seq: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` rows of `kind` after `after_seq`, oldest first; column 0 is seq."""
        return await self._read(self._select, SYNC_QUERIES[kind], (after_seq, limit))

    async def mark_synced(self, kind: str, up_to_seq: int) -> None:
        """Record that the central database has every `kind` row up to `up_to_seq`."""
        await self._write(
            "INSERT INTO sync_cursors (kind, last_seq) VALUES (?, ?) ON CONFLICT (kind) "
            "DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)", [(kind, up_to_seq)])

    async def purge_synced(self, older_than_us: int, limit: int = 50_000) -> int:
        """Delete synced rows received before `older_than_us` (in chunks: short write locks)."""
        return await self._run(self._purge, older_than_us, limit)

    def _run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _read(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    async def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            await self._run(self._execute_many, sql, rows)
        except sqlite3.Error as exc:
            self.last_error = f"buffer write failed: {exc}"
            raise BufferWriteError(f"{self.path}: {exc}") from exc

    # --- everything below runs on the writer thread ---

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        problem = self._inspect() if self.path.exists() and self.path.stat().st_size else None
        if problem is not None:
            moved = move_aside(self.path)
            self.moved_aside = (moved, problem)
            log.error("buffer file moved aside; starting a fresh buffer "
                      "(recover rows with: edge-gateway buffer salvage PATH)",
                      extra={"moved_to": str(moved), "problem": problem})
            if self._metrics is not None:
                self._metrics.buffer_files_moved_aside.labels(problem.split(":")[0]).inc()
        # Create the file 0600 before SQLite does (its WAL and SHM files copy the mode).
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._check_ownership(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._settings.synchronous}")
            conn.execute("PRAGMA busy_timeout = 5000")
            migrate(conn)
            self._claim_for_gateway(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._reader.submit(self._open_reader).result()

    def _open_reader(self) -> None:
        self._reader_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._reader_conn.execute("PRAGMA busy_timeout = 5000")

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    def _inspect(self) -> str | None:
        """Why the existing file cannot be used as our buffer ('corrupt: ...'/'foreign'), or None."""
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.DatabaseError as exc:
            return f"corrupt: {exc}"
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables > 0):
                return "foreign: written by another program"
            if self._settings.check_integrity_on_start:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    return f"corrupt: {verdict}"
        except sqlite3.DatabaseError as exc:
            return f"corrupt: {exc}"
        finally:
            conn.close()
        return None

    def _check_ownership(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BufferSchemaError(
                f"{self.path}: buffer schema v{version} is newer than this gateway's v{SCHEMA_VERSION}"
            )

    def _claim_for_gateway(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM buffer_meta WHERE key = 'gateway_id'").fetchone()
        if row is None:
            conn.execute("INSERT INTO buffer_meta (key, value) VALUES ('gateway_id', ?)",
                         (self._gateway_id,))
        elif row[0] != self._gateway_id:
            raise BufferSchemaError(
                f"{self.path}: buffer belongs to gateway {row[0]!r}, config says {self._gateway_id!r}"
            )

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _commit(self, readings: Sequence[Reading],
                quarantine: Sequence[QuarantineRecord]) -> CommitResult:
        conn = self._connection()
        with transaction(conn):
            inserted = conn.executemany(_INSERT_READING, readings).rowcount if readings else 0
            if quarantine:
                conn.executemany(_INSERT_QUARANTINE, quarantine)
        self._respect_cap(conn)
        return CommitResult(inserted, len(readings) - inserted, len(quarantine))

    def _respect_cap(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now < self._next_cap_check:
            return
        self._next_cap_check = now + _CAP_CHECK_INTERVAL_S
        for eviction in enforce_cap(conn, self._settings.max_bytes):
            self._report(eviction)

    def _report(self, eviction: Eviction) -> None:
        if self._metrics is not None:
            self._metrics.buffer_evicted.labels(eviction.kind, eviction.reason).inc(eviction.rows)
        self._evictions_log.warning(f"{eviction.kind}:{eviction.reason}",
                                    "buffer cap reached: rows evicted",
                                    kind=eviction.kind, reason=eviction.reason, rows=eviction.rows,
                                    max_bytes=self._settings.max_bytes)

    def _execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with transaction(self._connection()) as conn:
            conn.executemany(sql, rows)

    def _purge(self, older_than_us: int, limit: int) -> int:
        conn = self._connection()
        deleted = 0
        cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
        for kind in SYNCED_KINDS:
            deleted += conn.execute(_PURGE[kind], (cursors.get(kind, 0), older_than_us, limit)).rowcount
        return deleted

    def _depths(self) -> dict[str, KindDepth]:
        conn = self._reading_connection()
        cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
        result = {}
        for kind in KINDS:
            # Quarantine rows are never synced: all of them count as local, unsynced rows.
            last = cursors.get(kind, 0)
            rows, unsynced, oldest = conn.execute(
                f"SELECT (SELECT count(*) FROM {kind}),"
                f" (SELECT count(*) FROM {kind} WHERE seq > ?),"
                f" (SELECT {_TIME_COLUMN[kind]} FROM {kind} WHERE seq > ? ORDER BY seq LIMIT 1)",
                (last, last),
            ).fetchone()
            result[kind] = KindDepth(rows, unsynced, oldest)
        return result

    def _cursor(self, kind: str) -> int:
        row = self._reading_connection().execute(
            "SELECT last_seq FROM sync_cursors WHERE kind = ?", (kind,)).fetchone()
        return int(row[0]) if row else 0

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._reading_connection().execute(sql, params).fetchall()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BufferWriteError(f"{self.path}: buffer is not open")
        return self._conn

    def _reading_connection(self) -> sqlite3.Connection:
        if self._reader_conn is None:
            raise BufferWriteError(f"{self.path}: buffer is not open")
        return self._reader_conn
