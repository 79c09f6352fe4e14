"""StatusReader: how full the buffer is, per kind, for `status`, `/api/v1/status` and metrics."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.buffer.connection import BufferConnection
from edge.buffer.retention import KINDS, TIME_COLUMN


@dataclass(frozen=True, slots=True)
class KindDepth:
    rows: int
    unsynced: int
    oldest_unsynced_us: int | None


class StatusReader:
    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection

    async def depths(self) -> dict[str, KindDepth]:
        """Rows, unsynced rows and the oldest unsynced row's time, per kind."""
        return await self._connection.read(_depths)

    async def oldest_unsynced_reading_us(self) -> int | None:
        """Arrival time of the oldest reading the central side lacks (cheap: one index probe)."""
        return await self._connection.read(_oldest_unsynced)


def _oldest_unsynced(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(
        "SELECT received_us FROM readings WHERE seq > coalesce("
        "(SELECT last_seq FROM sync_cursors WHERE kind = 'readings'), 0) ORDER BY seq LIMIT 1"
    ).fetchone()
    return int(row[0]) if row else None


def _depths(conn: sqlite3.Connection) -> dict[str, KindDepth]:
    cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
    result = {}
    for kind in KINDS:
        # Quarantine rows are never synced: all of them count as local, unsynced rows.
        last = cursors.get(kind, 0)
        rows, unsynced, oldest = conn.execute(
            f"SELECT (SELECT count(*) FROM {kind}),"
            f" (SELECT count(*) FROM {kind} WHERE seq > ?),"
            f" (SELECT {TIME_COLUMN[kind]} FROM {kind} WHERE seq > ? ORDER BY seq LIMIT 1)",
            (last, last),
        ).fetchone()
        result[kind] = KindDepth(rows, unsynced, oldest)
    return result
