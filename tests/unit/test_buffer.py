"""SqliteBuffer on real files: durable commits, dedup, ownership checks, permissions."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from edge.buffer import SqliteBuffer
from edge.buffer.schema import SCHEMA_VERSION
from edge.errors import BufferSchemaError
from edge.metrics import GatewayMetrics
from edge.records import QuarantineRecord, Reading
from edge.settings import BufferSettings


def _reading(sensor: str, ts_us: int, value: float) -> Reading:
    return Reading(sensor, "asset-1", ts_us, value, "degC", None, 0, ts_us + 5)


def _buffer(path: Path, gateway_id: str = "gw-1") -> SqliteBuffer:
    return SqliteBuffer(BufferSettings(path=path), gateway_id)


async def test_committed_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "buffer.sqlite"
    async with _buffer(path) as buffer:
        result = await buffer.readings.commit_batch(
            [_reading("s1", 1, 1.0), _reading("s2", 1, 2.0)],
            [QuarantineRecord(9, "factory/x", b"\xff", "invalid_utf8", "bad bytes", "mqtt")],
        )
    assert (result.inserted, result.duplicates, result.quarantined) == (2, 0, 1)
    async with _buffer(path) as buffer:
        depths = await buffer.status.depths()
    assert depths["readings"].rows == 2 and depths["readings"].unsynced == 2
    assert depths["readings"].oldest_unsynced_us == 6
    assert depths["quarantine"].rows == 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT payload, reason FROM quarantine").fetchone() == (b"\xff", "invalid_utf8")


async def test_redelivered_readings_are_counted_as_duplicates_not_stored_twice(tmp_path: Path) -> None:
    async with _buffer(tmp_path / "b.sqlite") as buffer:
        await buffer.readings.commit_batch([_reading("s1", 1, 1.0), _reading("s1", 2, 2.0)], [])
        result = await buffer.readings.commit_batch([_reading("s1", 2, 2.0), _reading("s1", 3, 3.0)], [])
        assert (result.inserted, result.duplicates) == (1, 1)
        assert (await buffer.status.depths())["readings"].rows == 3


async def test_buffer_is_private_wal_and_fully_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    async with _buffer(path) as buffer:
        await buffer.readings.commit_batch([_reading("s1", 1, 1.0)], [])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pragmas = await buffer.connection.write(lambda conn: [
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "user_version")])
        assert pragmas == ["wal", 2, SCHEMA_VERSION]  # synchronous 2 is FULL


async def test_a_foreign_sqlite_file_is_moved_aside_untouched_and_a_fresh_buffer_starts(
    tmp_path: Path
) -> None:
    path = tmp_path / "b.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=path), "gw-1", metrics) as buffer:
        assert buffer.moved_aside is not None
        moved, problem = buffer.moved_aside
        await buffer.readings.commit_batch([_reading("s1", 1, 1.0)], [])
    assert problem.startswith("foreign")
    assert moved.read_bytes() == before, "moved, never overwritten"
    assert moved.name.startswith("b.sqlite.corrupt-")
    assert metrics.buffer_files_moved_aside.labels("foreign")._value.get() == 1


async def test_a_non_sqlite_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    async with _buffer(path) as buffer:
        assert buffer.moved_aside is not None and buffer.moved_aside[1].startswith("corrupt")
        assert (await buffer.status.depths())["readings"].rows == 0
    assert list(tmp_path.glob("b.sqlite.corrupt-*"))


async def test_a_damaged_buffer_is_moved_aside_and_salvage_recovers_the_readable_rows(
    tmp_path: Path
) -> None:
    path = tmp_path / "b.sqlite"
    async with _buffer(path) as buffer:
        for start in range(0, 20_000, 2_000):
            await buffer.readings.commit_batch([_reading(f"s{k % 7}", k, float(k))
                                       for k in range(start, start + 2_000)], [])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for n in range(60, 64):  # scribble over four pages in the middle of the table
        data[n * page:(n + 1) * page] = b"\xde\xad" * (page // 2)
    path.write_bytes(bytes(data))

    async with _buffer(path) as buffer:
        assert buffer.moved_aside is not None
        old, problem = buffer.moved_aside
        assert problem.startswith("corrupt")
        report = await buffer.salvage_from(old)
        rows = (await buffer.status.depths())["readings"].rows
    assert report.recovered["readings"] == rows
    assert 19_000 < rows < 20_000, "all but the readings on the damaged pages"
    print(f"salvaged {rows} of 20000 readings; unreadable {report.unreadable['readings']}")


async def test_the_size_cap_evicts_synced_rows_first_then_unsynced_and_counts_them(
    tmp_path: Path
) -> None:
    metrics = GatewayMetrics()
    settings = BufferSettings(path=tmp_path / "b.sqlite", max_bytes=1024**2)
    async with SqliteBuffer(settings, "gw-1", metrics) as buffer:
        await buffer.readings.commit_batch([_reading("s", k, 1.0) for k in range(8_000)], [])
        await buffer.sync.mark_synced("readings", 4_000)
        for start in range(8_000, 40_000, 4_000):
            buffer.readings._cap._next_check = 0.0
            batch = [_reading("s", k, 1.0) for k in range(start, start + 4_000)]
            await buffer.readings.commit_batch(batch, [])
        depths = await buffer.status.depths()
    synced = metrics.buffer_evicted.labels("readings", "synced")._value.get()
    unsynced = metrics.buffer_evicted.labels("readings", "cap_reached_unsynced")._value.get()
    assert synced == 4_000, "every synced reading went first"
    assert unsynced > 0 and depths["readings"].rows == 40_000 - synced - unsynced
    conn = sqlite3.connect(settings.path)
    oldest = conn.execute("SELECT min(ts_us) FROM readings").fetchone()[0]
    assert oldest == 4_000 + unsynced, "oldest unsynced rows went next, in order"


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


async def test_a_settled_task_stays_while_an_alert_it_held_is_open_then_goes(tmp_path: Path) -> None:
    """Purging a done task's versions while its alert stayed open let the alert's next event
    start the same task id again, open and without its history (issue 12 review F15)."""
    from datetime import UTC, datetime, timedelta

    from edge.records import AlertRecord, TaskRecord

    t0 = datetime(2026, 11, 24, 8, tzinfo=UTC)

    def alert(state: str, k: int) -> AlertRecord:
        return AlertRecord(alert_id="a1", asset_id="pump", sensor_id="pump/temp", detector="silence",
                           severity="critical", state=state, reason="silent",  # type: ignore[arg-type]
                           opened_at=t0, updated_at=t0 + timedelta(seconds=k),
                           resolved_at=t0 + timedelta(seconds=k) if state != "open" else None)

    def task(state: str, k: int) -> TaskRecord:
        return TaskRecord(task_id="t1", asset_id="pump", cause="no_data", priority="high",
                          state=state, description="check", alert_ids=["a1"],  # type: ignore[arg-type]
                          created_at=t0, updated_at=t0 + timedelta(seconds=k))

    def tasks_left() -> list[str]:
        with sqlite3.connect(tmp_path / "b.sqlite") as conn:
            return [r[0] for r in conn.execute("SELECT state FROM tasks ORDER BY seq")]

    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        await buffer.alerts.append([alert("open", 0)])
        await buffer.tasks.append([task("open", 0)])
        await buffer.tasks.append([task("cancelled", 1)])
        for kind in ("alerts", "tasks"):
            await buffer.sync.mark_synced(kind, 10)
        far_future_us = 10**18
        await buffer.sync.purge_synced(far_future_us)
        assert tasks_left() == ["cancelled"], "kept: its alert is still open"
        await buffer.alerts.append([alert("resolved", 2)])
        await buffer.sync.mark_synced("alerts", 10)
        await buffer.sync.purge_synced(far_future_us)
        assert tasks_left() == [], "the alert resolved: nothing needs the settled task now"
