"""BufferConnection: the one owner of the buffer file and its two SQLite connections.

Opening takes the buffer's lock (one daemon per buffer, lock.py), checks the file (a
corrupt or foreign file is moved aside, guarantee 6), migrates the schema and claims the
buffer for this gateway. Read-only opening (`status`, never the daemon) does none of that:
it never creates, renames or migrates anything, and a missing file is an error. Writes
run on one writer thread, in the
order they were asked for; reads (status, syncer, agents' warm-up) run on a reader thread
with their own connection, which WAL lets proceed while the writer commits, so a read
never delays an acknowledgement. Every store of the buffer (readings, alert/task logs,
sync source, status) goes through `write`/`read` here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from edge.buffer.lock import BufferLock
from edge.buffer.salvage import move_aside
from edge.buffer.schema import APPLICATION_ID, SCHEMA_VERSION, migrate
from edge.errors import BufferMissingError, BufferReadError, BufferSchemaError, BufferWriteError
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(__name__)


class BufferConnection:
    """The buffer file, opened and checked, with a writer and a reader thread."""

    def __init__(self, settings: BufferSettings, gateway_id: str,
                 metrics: GatewayMetrics | None = None, read_only: bool = False,
                 exclusive: bool = True) -> None:
        self.settings = settings
        self.read_only = read_only
        self._exclusive = exclusive
        self._lock = BufferLock(settings.path)
        self.path = settings.path
        self.metrics = metrics
        self._gateway_id = gateway_id
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-reader")
        self._conn: sqlite3.Connection | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self.moved_aside: tuple[Path, str] | None = None
        self.last_error: str | None = None

    async def __aenter__(self) -> BufferConnection:
        try:
            await self._on_writer(self._open_read_only if self.read_only else self._open)
        except BaseException:
            self._lock.release()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader_conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        if self._conn is not None:
            await self._on_writer(self._close)
        self._reader.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._lock.release()

    @property
    def writable(self) -> bool:
        return self._conn is not None and self.last_error is None

    async def write(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                    *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(connection, ...)` on the writer thread; BufferWriteError if SQLite fails."""
        def call() -> T:
            if self._conn is None:
                raise BufferWriteError(f"{self.path}: buffer is not open for writing")
            return fn(self._conn, *args, **kwargs)

        try:
            result = await self._on_writer(call)
        except sqlite3.Error as exc:
            self.last_error = f"buffer write failed: {exc}"
            raise BufferWriteError(f"{self.path}: {exc}") from exc
        self.last_error = None
        return result

    async def read(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(reader connection, ...)` on the reader thread; BufferReadError if SQLite fails."""
        def call() -> T:
            if self._reader_conn is None:
                raise BufferReadError(f"{self.path}: buffer is not open")
            return fn(self._reader_conn, *args, **kwargs)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader, call)
        except sqlite3.Error as exc:
            raise BufferReadError(f"{self.path}: {exc}") from exc

    def _on_writer(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._writer, fn)

    # --- below runs on the writer thread ---

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._exclusive:
            self._lock.acquire()  # before anything touches the file
        problem = self._inspect() if self.path.exists() and self.path.stat().st_size else None
        if problem is not None:
            moved = move_aside(self.path)
            self.moved_aside = (moved, problem)
            log.error("buffer file moved aside; starting a fresh buffer "
                      "(recover rows with: edge-gateway buffer salvage PATH)",
                      extra={"moved_to": str(moved), "problem": problem})
            if self.metrics is not None:
                self.metrics.buffer_files_moved_aside.labels(problem.split(":")[0]).inc()
        # Create the file 0600 before SQLite does (its WAL and SHM files copy the mode).
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._check_version(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.settings.synchronous}")
            conn.execute("PRAGMA busy_timeout = 5000")
            migrate(conn)
            self._claim_for_gateway(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._reader.submit(self._open_reader).result()

    def _open_read_only(self) -> None:
        if not self.path.is_file():
            raise BufferMissingError(f"no buffer at {self.path}")
        mode = self._read_only_mode()
        try:
            conn = sqlite3.connect(f"file:{self.path}?{mode}", uri=True, check_same_thread=False)
            problem = self._read_only_problem(conn)
        except sqlite3.DatabaseError as exc:
            raise BufferReadError(f"{self.path}: cannot be read as a buffer: {exc}") from exc
        if problem is not None:
            conn.close()
            raise BufferReadError(f"{self.path}: {problem}")
        self._reader_conn = conn

    def _read_only_mode(self) -> str:
        """How `status` opens the file: never writing the database or its WAL.

        immutable=1 ignores the WAL, so it is only right when there is none (a clean stop
        merged it), and it leaves no side files. When a -wal exists (a daemon runs, or one
        was killed with its last commits still in the WAL), mode=ro reads the WAL too: a
        read-only connection never writes the database or the WAL and never checkpoints;
        at most it rebuilds the -shm index, under SQLite's locks, as every reader does, so
        a daemon that starts meanwhile is the ordinary multi-process case. (A copy of
        db+wal would cost a copy of up to buffer.max_bytes for each `status`.)
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if self._lock.held_by_someone() or wal.exists():
            return "mode=ro"
        return "immutable=1"

    def _read_only_problem(self, conn: sqlite3.Connection) -> str | None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            return "not an edge-gateway buffer (the daemon moves such a file aside at start)"
        if version != SCHEMA_VERSION:
            return (f"buffer schema v{version}, this gateway reads v{SCHEMA_VERSION} "
                    "(start the daemon of the matching version once)")
        row = conn.execute("SELECT value FROM buffer_meta WHERE key = 'gateway_id'").fetchone()
        if row is not None and row[0] != self._gateway_id:
            return f"buffer belongs to gateway {row[0]!r}, config says {self._gateway_id!r}"
        return None

    def _open_reader(self) -> None:
        self._reader_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._reader_conn.execute("PRAGMA busy_timeout = 5000")

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
            if self.settings.check_integrity_on_start:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    return f"corrupt: {verdict}"
        except sqlite3.DatabaseError as exc:
            return f"corrupt: {exc}"
        finally:
            conn.close()
        return None

    def _check_version(self, conn: sqlite3.Connection) -> None:
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
