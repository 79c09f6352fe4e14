"""MetaStore: small named values that must survive a restart (`buffer_meta`).

Used for positions that are not sync cursors, e.g. how far the anomaly agent has judged
the readings, so a restart judges what was committed but not yet judged.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from edge.buffer.connection import BufferConnection
from edge.buffer.schema import transaction

_GET = "SELECT value FROM buffer_meta WHERE key = ?"
_SET = ("INSERT INTO buffer_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


class MetaStore:
    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection

    async def get_int(self, key: str) -> int | None:
        return await self._connection.read(_get_int, key)

    async def set_int(self, key: str, value: int) -> None:
        await self._connection.write(set_meta, key, str(value))

    async def get_snapshot(self, key: str) -> tuple[bytes, int] | None:
        """A saved blob and the position it was taken at (None: none saved)."""
        return await self._connection.read(_get_snapshot, key)

    async def set_snapshot(self, key: str, data: bytes, position: int) -> None:
        """Save a blob and its position in one transaction (a crash keeps both or neither)."""
        await self._connection.write(_set_snapshot, key, data, position)

    async def get_json(self, key: str) -> Any:
        return await self._connection.read(_get_json, key)

    async def set_json(self, key: str, value: Any) -> None:
        await self._connection.write(set_meta, key, orjson.dumps(value).decode())


def _get_int(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute(_GET, (key,)).fetchone()
    return int(row[0]) if row is not None else None


def _get_json(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute(_GET, (key,)).fetchone()
    return orjson.loads(row[0]) if row is not None else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Within the caller's transaction (a position stored with what it made)."""
    conn.execute(_SET, (key, value))




def _get_snapshot(conn: sqlite3.Connection, key: str) -> tuple[bytes, int] | None:
    data = conn.execute(_GET, (key,)).fetchone()
    position = _get_int(conn, key + ".position")
    if data is None or position is None or not isinstance(data[0], bytes):
        return None
    return data[0], position


def _set_snapshot(conn: sqlite3.Connection, key: str, data: bytes, position: int) -> None:
    # A blob in the TEXT column: SQLite keeps blobs as they are (no affinity conversion).
    with transaction(conn):
        conn.execute(_SET, (key, data))
        conn.execute(_SET, (key + ".position", str(position)))
