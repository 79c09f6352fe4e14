"""The syncer against the machine's real PostgreSQL: exactly once, in order, idempotent."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cloud_sync.syncer import CentralSyncer
from cloud_sync.writer import LOG_KINDS, CentralWriter
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import (
    alert_versions,
    central_rows,
    dsn_for,
    fill_buffer,
    fresh_database,
)
from tests.support.central import readings as make_readings


@pytest.fixture
def central_db() -> Iterator[str]:
    with fresh_database() as name:
        yield name


def _central(database: str, **overrides: object) -> CentralSettings:
    return CentralSettings(dsn=dsn_for(database), sslmode="disable",  # type: ignore[arg-type]
                           idle_interval_s=0.05, **overrides)


async def _until_synced(buffer: SqliteBuffer, timeout_s: float = 120) -> None:
    async with asyncio.timeout(timeout_s):
        while any(d.unsynced for kind, d in (await buffer.status.depths()).items() if kind != "quarantine"):
            await asyncio.sleep(0.05)


async def sync_buffer(path: Path, gateway_id: str, central: CentralSettings,
                      metrics: GatewayMetrics | None = None) -> GatewayMetrics:
    """Run a syncer over the buffer at `path` until nothing is left unsynced."""
    metrics = metrics or GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=path), gateway_id) as buffer:
        syncer = CentralSyncer(central, gateway_id, "test", source=buffer.sync, metrics=metrics)
        runner = asyncio.create_task(syncer.run())
        await _until_synced(buffer)
        await syncer.close()
        await runner
    return metrics


async def _counts(database: str) -> tuple[int, int, int]:
    rows = await central_rows(database, "SELECT (SELECT count(*) FROM sensor_readings), "
                              "(SELECT count(*) FROM anomaly_alerts), "
                              "(SELECT count(*) FROM maintenance_tasks)")
    return rows[0][0], rows[0][1], rows[0][2]


def _reset_cursors(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM sync_cursors")
    conn.commit()
    conn.close()


async def test_100k_readings_alerts_and_tasks_arrive_exactly_once_and_replays_add_nothing(
    tmp_path: Path, central_db: str
) -> None:
    path = tmp_path / "buffer.sqlite"
    await fill_buffer(path, "gw-1", 100_000, alerts=60, tasks=30)
    metrics = await sync_buffer(path, "gw-1", _central(central_db))
    assert await _counts(central_db) == (100_000, 20, 10)
    assert metrics.sync_rows.labels("readings")._value.get() == 100_000
    readings = await central_rows(central_db, "SELECT count(DISTINCT value), min(time), max(time) "
                                  "FROM sensor_readings WHERE gateway_id = 'gw-1'")
    assert readings[0][0] == 100_000
    assert readings[0][1].timestamp() == 1_700_000_000.0  # µs since epoch, UTC, exactly
    alerts = await central_rows(central_db, "SELECT state, details->>'version' FROM anomaly_alerts "
                                "WHERE alert_id = 'alert-0'")
    assert alerts[0]["state"] == "resolved" and alerts[0][1] == "40"  # the newest version wins
    gateway = await central_rows(central_db, "SELECT last_readings_seq, last_alerts_seq, "
                                 "last_tasks_seq, software_version FROM gateways")
    assert tuple(gateway[0]) == (100_000, 60, 30, "test")

    _reset_cursors(path)  # the same buffer synced a second time
    await sync_buffer(path, "gw-1", _central(central_db))
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)  # a replay from a second copy of the buffer
    _reset_cursors(copy)
    await sync_buffer(copy, "gw-1", _central(central_db))
    assert await _counts(central_db) == (100_000, 20, 10)


async def test_alerts_and_tasks_go_before_a_readings_backlog(tmp_path: Path, central_db: str) -> None:
    path = tmp_path / "buffer.sqlite"
    await fill_buffer(path, "gw-1", 50_000)
    async with SqliteBuffer(BufferSettings(path=path), "gw-1") as buffer:
        await buffer.alerts.append(alert_versions(3, 3))  # arrives after the backlog
        settings = _central(central_db, batch_rows=5_000)
        syncer = CentralSyncer(settings, "gw-1", "test", source=buffer.sync, metrics=GatewayMetrics())
        for kind in ("readings", *LOG_KINDS):
            syncer._positions[kind] = 0
        writer = await CentralWriter.connect(settings, "gw-1", "test")
        try:
            assert await syncer.sync_round(writer) == 3 + 5_000
        finally:
            await writer.close()
            await syncer._cancel_prefetch()
    assert await _counts(central_db) == (5_000, 3, 0)


async def test_twenty_gateways_sync_concurrently_into_one_database(
    tmp_path: Path, central_db: str
) -> None:
    gateways = [f"gw-{n:02d}" for n in range(20)]
    for gateway in gateways:
        await fill_buffer(tmp_path / f"{gateway}.sqlite", gateway, 5_000, alerts=6, tasks=3)
    settings = _central(central_db, batch_rows=1_000)
    await asyncio.gather(*(sync_buffer(tmp_path / f"{g}.sqlite", g, settings) for g in gateways))
    per_gateway = await central_rows(central_db, "SELECT gateway_id, count(*) FROM sensor_readings "
                                     "GROUP BY gateway_id ORDER BY gateway_id")
    assert [(r[0], r[1]) for r in per_gateway] == [(g, 5_000) for g in gateways]
    # alert and task ids are per gateway in real life; here they collide on purpose, and
    # the upsert keeps one row per id whichever gateway wrote it last
    assert await _counts(central_db) == (100_000, 2, 1)
    heartbeats = await central_rows(central_db, "SELECT count(*) FROM gateways "
                                    "WHERE last_readings_seq = 5000")
    assert heartbeats[0][0] == 20


async def test_synced_rows_are_purged_after_the_keep_time_and_unsynced_rows_never(
    tmp_path: Path, central_db: str
) -> None:
    path = tmp_path / "buffer.sqlite"
    await fill_buffer(path, "gw-1", 2_000)
    await sync_buffer(path, "gw-1", _central(central_db, keep_synced_s=0))
    await fill_buffer(path, "gw-1", 0)
    async with SqliteBuffer(BufferSettings(path=path), "gw-1") as buffer:
        depths = await buffer.status.depths()
        assert depths["readings"].rows == 0  # all synced, keep time 0: purged
        await buffer.readings.commit_batch(make_readings(10, start=5_000), [])
        assert await buffer.sync.purge_synced(older_than_us=2**62) == 0  # unsynced rows stay
        assert (await buffer.status.depths())["readings"].rows == 10


async def test_text_postgresql_cannot_hold_never_reaches_the_sync(tmp_path: Path, central_db: str) -> None:
    """NUL in a state is quarantined at ingest, NUL in a name is shown as U+FFFD in the
    catalogue: one such message must not stop central sync for good (review F7)."""
    from tests.unit.test_codec_pipeline import NOW_MS, Pipeline

    path = tmp_path / "buffer.sqlite"
    async with SqliteBuffer(BufferSettings(path=path), "gw-1") as buffer, Pipeline(buffer) as p:
        await p.send(("plant/l1/pump-1", orjson.dumps({
            "ts": NOW_MS, "values": {"temp": 2.5, "mode": "A\u0000B", "key\u0000x": 4.0},
            "state": "RUN"})))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT reason FROM quarantine").fetchall() == [("invalid_state",)]
    await sync_buffer(path, "gw-1", _central(central_db))
    rows = await central_rows(central_db, "SELECT sensor_id, value FROM sensor_readings "
                                          "ORDER BY sensor_id")
    assert [tuple(r) for r in rows] == [("pump-1/key_x", 4.0), ("pump-1/temp", 2.5)]
    names = await central_rows(central_db, "SELECT name FROM sensor_catalog")
    assert "pump-1/key\ufffdx" in {r[0] for r in names}


async def test_a_buffered_version_holding_nul_syncs_and_nothing_behind_it_waits(
    tmp_path: Path, central_db: str,
) -> None:
    """A NUL inside an alert's or task's text (from a buffer written before the ways in refused
    it) once made PostgreSQL refuse the batch forever, and every kind behind it waited
    (issue 12 review F0): it arrives as U+FFFD, and what follows syncs."""
    path = tmp_path / "buffer.sqlite"
    async with SqliteBuffer(BufferSettings(path=path), "gw-1") as buffer:
        [alert] = alert_versions(1, 1)
        await buffer.alerts.append([alert.model_copy(update={"reason": "spike\u0000x",
                                                             "details": {"note": "a\u0000b"}})])
        await buffer.readings.commit_batch(make_readings(10), [])
    await sync_buffer(path, "gw-1", _central(central_db))
    rows = await central_rows(central_db, "SELECT reason, details->>'note' FROM anomaly_alerts")
    assert [tuple(r) for r in rows] == [("spike\ufffdx", "a\ufffdb")]
    assert (await _counts(central_db))[0] == 10
