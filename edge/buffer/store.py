"""SqliteBuffer: the gateway's durable store, written by one thread in group commits.

Guarantee, in two sentences: a message is not acknowledged to the broker until the
transaction that holds its reading (or quarantine row) has committed with the configured
`synchronous` level; a row is not removed from the buffer until the central side has it.
WAL mode lets readers (status, syncer) run beside the writer. `synchronous=FULL` is the
default because NORMAL can lose the last commits on a power cut (not on a process crash).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from edge.buffer.schema import APPLICATION_ID, KINDS, SCHEMA_VERSION, migrate
from edge.errors import BufferError_, BufferSchemaError
from edge.records import QuarantineRecord, Reading
from edge.settings import BufferSettings

T = TypeVar("T")

_INSERT_READING = (
    "INSERT OR IGNORE INTO readings "
    "(sensor_id, asset_id, ts_us, value, unit, quality, flags, received_us) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (received_us, source, payload, reason, detail) VALUES (?, ?, ?, ?, ?)"
)


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

    def __init__(self, settings: BufferSettings, gateway_id: str) -> None:
        self._settings = settings
        self._gateway_id = gateway_id
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-writer")
        self._conn: sqlite3.Connection | None = None
        self.path = settings.path
        self.last_error: str | None = None

    async def __aenter__(self) -> SqliteBuffer:
        await self._run(self._open)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    @property
    def writable(self) -> bool:
        return self._conn is not None and self.last_error is None

    async def commit_batch(self, readings: Sequence[Reading],
                           quarantine: Sequence[QuarantineRecord]) -> CommitResult:
        """Commit readings and quarantine rows in one transaction; raise BufferError_ if not."""
        try:
            result = await self._run(self._commit, readings, quarantine)
        except sqlite3.Error as exc:
            self.last_error = f"buffer commit failed: {exc}"
            raise BufferError_(f"{self.path}: {exc}") from exc
        self.last_error = None
        return result

    async def depths(self) -> dict[str, KindDepth]:
        """Rows, unsynced rows and the oldest unsynced row's time, per kind."""
        return await self._run(self._depths)

    def _run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- everything below runs on the writer thread ---

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
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

    def _check_ownership(self, conn: sqlite3.Connection) -> None:
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BufferSchemaError(f"{self.path}: not a usable SQLite file: {exc}") from exc
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables > 0):
            raise BufferSchemaError(f"{self.path}: SQLite file belongs to another program")
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserted = conn.executemany(_INSERT_READING, readings).rowcount if readings else 0
            if quarantine:
                conn.executemany(_INSERT_QUARANTINE, quarantine)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return CommitResult(inserted, len(readings) - inserted, len(quarantine))

    def _depths(self) -> dict[str, KindDepth]:
        conn = self._connection()
        cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
        result = {}
        for kind in KINDS:
            time_column = "received_us" if kind in ("readings", "quarantine") else "updated_us"
            last = cursors.get(kind, 0)
            rows, unsynced, oldest = conn.execute(
                f"SELECT (SELECT count(*) FROM {kind}),"
                f" (SELECT count(*) FROM {kind} WHERE seq > ?),"
                f" (SELECT {time_column} FROM {kind} WHERE seq > ? ORDER BY seq LIMIT 1)",
                (last, last),
            ).fetchone()
            result[kind] = KindDepth(rows, unsynced, oldest)
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BufferError_(f"{self.path}: buffer is not open")
        return self._conn
