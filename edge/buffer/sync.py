"""SyncStore: the buffer as the central syncer sees it (implements cloud_sync's SyncSource).

Rows come out oldest first after a per-kind cursor (`sync_cursors`); the syncer advances
the cursor only after the central commit, so a crash in between replays rows, which the
central side's keys make harmless. The SELECT column lists are derived from `ReadingRow`
and `VersionRow`, the same types the central COPY is derived from.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edge.buffer.connection import BufferConnection
from edge.buffer.retention import LOGS, SYNCED_KINDS, TIME_COLUMN, removable_synced
from edge.buffer.schema import EPOCH_KEY
from edge.records import ReadingRow, VersionRow

_READINGS = f"SELECT {', '.join(ReadingRow._fields)} FROM readings WHERE seq > ? ORDER BY seq LIMIT ?"


def _iso(column: str) -> str:
    """An integer-microseconds column as RFC 3339 with all six decimals (UTC)."""
    return (f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000000, 'unixepoch') || '.' || "
            f"printf('%06d', {column} % 1000000) || 'Z'")


# States are rows, not JSON: their body is made here, with the central table's field names.
_BODIES = {"states": (
    "json_object('sensor_id', sensor_id, 'asset_id', asset_id, 'time', " + _iso("ts_us")
    + ", 'state', state, 'quality', quality, 'flags', flags, 'received_at', "
    + _iso("received_us") + ")")}
# Alert and task versions carry their place in this buffer's log: the central side keeps
# the one with the highest (buffer_epoch_us, version_seq) (cloud_sync/statements.py).
for _kind in ("alerts", "tasks"):
    _BODIES[_kind] = ("json_set(body, '$.buffer_epoch_us', (SELECT CAST(value AS INTEGER) FROM "
                      f"buffer_meta WHERE key = '{EPOCH_KEY}'), '$.version_seq', seq)")
_VERSIONS = {kind: f"SELECT seq, {id_column}, {_BODIES.get(kind, 'body')} FROM {kind} "
                   "WHERE seq > ? ORDER BY seq LIMIT ?"
             for kind, id_column in LOGS.items()}
_PURGE = {kind: f"DELETE FROM {kind} WHERE seq IN (SELECT seq FROM {kind} WHERE "
                f"{removable_synced(kind)} AND {TIME_COLUMN[kind]} < :older_than "
                "ORDER BY seq LIMIT :limit)"
          for kind in SYNCED_KINDS}


class SyncStore:
    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection

    async def sync_cursor(self, kind: str) -> int:
        """The last sequence number of `kind` that the central database has."""
        return await self._connection.read(_cursor, kind)

    async def read_readings(self, after_seq: int, limit: int) -> list[ReadingRow]:
        """Up to `limit` readings after `after_seq`, oldest first."""
        rows = await self._connection.read(_select, _READINGS, (after_seq, limit))
        return list(map(ReadingRow._make, rows))

    async def read_versions(self, kind: str, after_seq: int, limit: int) -> list[VersionRow]:
        """Up to `limit` rows of a log (alert/task versions, decisions, labels), oldest first."""
        rows = await self._connection.read(_select, _VERSIONS[kind], (after_seq, limit))
        return list(map(VersionRow._make, rows))

    async def mark_synced(self, kind: str, up_to_seq: int) -> None:
        """Record that the central database has every `kind` row up to `up_to_seq`."""
        await self._connection.write(_advance, kind, up_to_seq)

    async def purge_synced(self, older_than_us: int, limit: int = 50_000) -> int:
        """Delete synced rows received before `older_than_us` (in chunks: short write locks)."""
        return await self._connection.write(_purge, older_than_us, limit)


def _select(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _cursor(conn: sqlite3.Connection, kind: str) -> int:
    row = conn.execute("SELECT last_seq FROM sync_cursors WHERE kind = ?", (kind,)).fetchone()
    return int(row[0]) if row else 0


def _advance(conn: sqlite3.Connection, kind: str, up_to_seq: int) -> None:
    conn.execute("INSERT INTO sync_cursors (kind, last_seq) VALUES (?, ?) ON CONFLICT (kind) "
                 "DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)", (kind, up_to_seq))


def _purge(conn: sqlite3.Connection, older_than_us: int, limit: int) -> int:
    cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
    deleted = 0
    for kind in SYNCED_KINDS:
        deleted += conn.execute(_PURGE[kind], {"cursor": cursors.get(kind, 0),
                                               "older_than": older_than_us, "limit": limit}).rowcount
    return deleted
