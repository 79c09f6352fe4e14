"""The central database goes away for 60 s while readings keep arriving, then returns;
and a flapping link that also cuts connections in the middle of a batch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import (
    PG_PORT,
    alert_versions,
    central_rows,
    dsn_for,
    fresh_database,
    readings,
)
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

OUTAGE_S = 60
RATE_PER_TICK = 500  # readings every 100 ms


@pytest.fixture
def central_db() -> Iterator[str]:
    with fresh_database() as name:
        yield name


async def _produce(buffer: SqliteBuffer, stop: asyncio.Event, produced: list[int]) -> None:
    while not stop.is_set():
        await buffer.readings.commit_batch(readings(RATE_PER_TICK, start=produced[0]), [])
        produced[0] += RATE_PER_TICK
        await asyncio.sleep(0.1)


async def _drain(buffer: SqliteBuffer, syncer: CentralSyncer, sync_task: asyncio.Task[None]) -> None:
    """Wait until the central side has every reading, then stop the syncer."""
    async with asyncio.timeout(120):
        while (await buffer.status.depths())["readings"].unsynced:
            await asyncio.sleep(0.1)
    await syncer.close()
    await sync_task


async def _counts(database: str) -> tuple[int, int]:
    """(rows, distinct (sensor, time) keys) in the central readings table."""
    row = (await central_rows(
        database, "SELECT count(*), count(DISTINCT (sensor_id, time)) FROM sensor_readings"))[0]
    return int(row[0]), int(row[1])


async def _watch_alert(database: str, seen: list[tuple[float, int]], stop: asyncio.Event) -> None:
    """Record how many readings the central side had when the outage alert first appeared."""
    while not stop.is_set() and not seen:
        rows = await central_rows(database, "SELECT (SELECT count(*) FROM anomaly_alerts), "
                                  "(SELECT count(*) FROM sensor_readings)")
        if rows[0][0]:
            seen.append((time.monotonic(), rows[0][1]))
        await asyncio.sleep(0.02)


async def test_a_60s_outage_loses_nothing_duplicates_nothing_and_logs_two_transitions(
    tmp_path: Path, central_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cloud_sync.syncer")
    with tcp_proxy(PG_PORT) as proxy:
        await _run_outage(tmp_path, central_db, proxy, caplog)


async def _run_outage(tmp_path: Path, database: str, proxy: TcpProxy,
                      caplog: pytest.LogCaptureFixture) -> None:
    settings = CentralSettings(dsn=dsn_for(database, proxy.port), sslmode="disable",  # type: ignore[arg-type]
                               idle_interval_s=0.05, connect_timeout_s=2,
                               reconnect={"initial_delay_s": 0.2, "max_delay_s": 2.0})
    produced = [0]
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw-1") as buffer:
        syncer = CentralSyncer(settings, "gw-1", "test", source=buffer.sync, metrics=GatewayMetrics())
        sync_task = asyncio.create_task(syncer.run())
        stop = asyncio.Event()
        producer = asyncio.create_task(_produce(buffer, stop, produced))
        await asyncio.sleep(2)
        proxy.cut()
        await asyncio.sleep(OUTAGE_S / 2)
        await buffer.alerts.append(alert_versions(1, 1))  # raised during the outage
        await asyncio.sleep(OUTAGE_S / 2)
        seen: list[tuple[float, int]] = []
        watcher = asyncio.create_task(_watch_alert(database, seen, stop))
        proxy.restore()
        await asyncio.sleep(2)
        stop.set()
        await producer
        await _drain(buffer, syncer, sync_task)
        await watcher

    total, distinct = await _counts(database)
    print(f"\nreconciliation (60 s outage): published {produced[0]} / central {total} / "
          f"duplicates {total - distinct}")
    assert total == distinct == produced[0]
    assert seen, "the alert never reached the central database"
    assert seen[0][1] < produced[0] - 100_000, "the alert waited behind the readings backlog"
    messages = [r.getMessage() for r in caplog.records if r.name == "cloud_sync.syncer"]
    assert messages.count("central database offline; buffering and retrying with backoff") == 1
    assert messages.count("central database online") == 2  # first contact, then recovery


async def test_a_flapping_link_and_cuts_in_the_middle_of_batches_lose_and_duplicate_nothing(
    tmp_path: Path, central_db: str
) -> None:
    with tcp_proxy(PG_PORT) as proxy:
        settings = CentralSettings(dsn=dsn_for(central_db, proxy.port), sslmode="disable",  # type: ignore[arg-type]
                                   idle_interval_s=0.05, connect_timeout_s=2, batch_rows=2_000,
                                   reconnect={"initial_delay_s": 0.1, "max_delay_s": 1.0})
        produced = [0]
        async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw-1") as buffer:
            syncer = CentralSyncer(settings, "gw-1", "test", source=buffer.sync, metrics=GatewayMetrics())
            sync_task = asyncio.create_task(syncer.run())
            stop = asyncio.Event()
            producer = asyncio.create_task(_produce(buffer, stop, produced))
            for flap in range(8):  # down and up every 1.5 s
                await asyncio.sleep(1.5)
                if flap % 2:
                    proxy.cut_after_bytes(30_000)  # the next COPY is cut half way
                else:
                    proxy.cut()
                    await asyncio.sleep(1.5)
                    proxy.restore()
            stop.set()
            await producer
            await _drain(buffer, syncer, sync_task)
        total, distinct = await _counts(central_db)
        print(f"\nreconciliation (flapping): published {produced[0]} / central {total} / "
              f"duplicates {total - distinct} / connections {proxy.connections}")
        assert total == distinct == produced[0]
        assert proxy.connections > 4, "the link really flapped"
