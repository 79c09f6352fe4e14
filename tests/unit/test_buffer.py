"""SqliteBuffer on real files: durable commits, dedup, ownership checks, permissions."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from edge.buffer import SqliteBuffer
from edge.buffer.schema import SCHEMA_VERSION
from edge.errors import BufferSchemaError
from edge.records import QuarantineRecord, Reading
from edge.settings import BufferSettings


def _reading(sensor: str, ts_us: int, value: float) -> Reading:
    return Reading(sensor, "asset-1", ts_us, value, "degC", None, 0, ts_us + 5)


def _buffer(path: Path, gateway_id: str = "gw-1") -> SqliteBuffer:
    return SqliteBuffer(BufferSettings(path=path), gateway_id)


async def test_committed_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "buffer.sqlite"
    async with _buffer(path) as buffer:
        result = await buffer.commit_batch(
            [_reading("s1", 1, 1.0), _reading("s2", 1, 2.0)],
            [QuarantineRecord(9, "factory/x", b"\xff", "invalid_utf8", "bad bytes")],
        )
    assert (result.inserted, result.duplicates, result.quarantined) == (2, 0, 1)
    async with _buffer(path) as buffer:
        depths = await buffer.depths()
    assert depths["readings"].rows == 2 and depths["readings"].unsynced == 2
    assert depths["readings"].oldest_unsynced_us == 6
    assert depths["quarantine"].rows == 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT payload, reason FROM quarantine").fetchone() == (b"\xff", "invalid_utf8")


async def test_redelivered_readings_are_counted_as_duplicates_not_stored_twice(tmp_path: Path) -> None:
    async with _buffer(tmp_path / "b.sqlite") as buffer:
        await buffer.commit_batch([_reading("s1", 1, 1.0), _reading("s1", 2, 2.0)], [])
        result = await buffer.commit_batch([_reading("s1", 2, 2.0), _reading("s1", 3, 3.0)], [])
        assert (result.inserted, result.duplicates) == (1, 1)
        assert (await buffer.depths())["readings"].rows == 3


async def test_buffer_is_private_wal_and_fully_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    async with _buffer(path) as buffer:
        await buffer.commit_batch([_reading("s1", 1, 1.0)], [])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert buffer._conn is not None
        assert buffer._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert buffer._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert buffer._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(BufferSchemaError, match="another program"):
        async with _buffer(path):
            pass
    assert path.read_bytes() == before


async def test_a_non_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BufferSchemaError, match="not a usable SQLite file"):
        async with _buffer(path):
            pass


async def test_a_buffer_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    async with _buffer(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(BufferSchemaError, match="newer"):
        async with _buffer(path):
            pass


async def test_another_gateways_buffer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    async with _buffer(path, "gw-1"):
        pass
    with pytest.raises(BufferSchemaError, match="belongs to gateway 'gw-1'"):
        async with _buffer(path, "gw-2"):
            pass
