"""Field trial item 12: a same-key reading with a different value is a conflict, never silent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, CentralSettings, IngestLimits, SubscriptionSettings
from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.gateway import buffer_rows

TS = int(time.time()) - 60


async def test_a_conflicting_duplicate_is_quarantined_with_both_values(tmp_path: Path) -> None:
    """Item 12: value 1 then value 2 for the same sensor and ts: value 2 vanished as a duplicate."""
    metrics = GatewayMetrics()
    limits = IngestLimits()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        pipeline = IngestPipeline(
            EventBus(metrics), metrics, writer=buffer.readings,
            mapper=TopicMapper([SubscriptionSettings(topic="f/#", template="f/{asset}/{sensor}")]),
            validator=ReadingValidator(limits, {}), limits=limits,
            batching=BufferSettings(path=buffer.path, max_batch_rows=1))
        runner = asyncio.create_task(pipeline.run())
        for value in (1.0, 1.0, 2.0):  # the original, an exact repeat, a conflict
            pipeline.submit("f/pump/temp", orjson.dumps({"ts": TS, "value": value}), None, 0)  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
        await pipeline.drain()
        await runner
    readings = buffer_rows(tmp_path / "b.sqlite", "SELECT value FROM readings")
    assert readings == [(1.0,)]
    assert metrics.readings_duplicate._value.get() == 1, "the exact repeat is a duplicate"
    quarantined = buffer_rows(tmp_path / "b.sqlite", "SELECT reason, detail FROM quarantine")
    assert len(quarantined) == 1, "the conflicting value must not vanish"
    reason, detail = quarantined[0]
    assert reason == "conflicting_duplicate" and "1.0" in detail and "2.0" in detail
    assert metrics.readings_rejected.labels("conflicting_duplicate")._value.get() == 1


def test_a_conflict_with_a_row_already_purged_locally_is_kept_visible_centrally(
    tmp_path: Path,
) -> None:
    """Item 12: after the first row was purged, central ON CONFLICT DO NOTHING dropped value 2."""
    with fresh_database() as database:
        metrics = asyncio.run(_sync_twice(tmp_path / "b.sqlite", dsn_for(database)))
        stored = asyncio.run(central_rows(database, "SELECT value FROM sensor_readings"))
        exists = asyncio.run(central_rows(
            database, "SELECT to_regclass('sensor_reading_conflicts') IS NOT NULL"))[0][0]
        conflicts = asyncio.run(central_rows(
            database, "SELECT sensor_id, stored_value, received_value FROM sensor_reading_conflicts"
        )) if exists else []
    assert [r[0] for r in stored] == [1.0], "the first value stays"
    assert [tuple(r) for r in conflicts] == [("pump/temp", 1.0, 2.0)]
    assert metrics.sync_conflicts._value.get() == 1


async def _sync_twice(path: Path, dsn: str) -> GatewayMetrics:
    metrics = GatewayMetrics()
    settings = CentralSettings(dsn=dsn, sslmode="disable", idle_interval_s=0.05,  # type: ignore[arg-type]
                               keep_synced_s=0)
    first = Reading("pump/temp", "pump", TS * 1_000_000, 1.0, None, None, 0, TS * 1_000_000)
    async with SqliteBuffer(BufferSettings(path=path), "gw") as buffer:
        for reading in (first, first._replace(value=2.0, received_us=first.received_us + 5)):
            await buffer.readings.commit_batch([reading], [])
            syncer = CentralSyncer(settings, "gw", "test", source=buffer.sync, metrics=metrics)
            task = asyncio.create_task(syncer.run())
            while (await buffer.status.depths())["readings"].unsynced:
                await asyncio.sleep(0.02)
            await syncer.close()
            await task
            await buffer.sync.purge_synced(older_than_us=2**62)  # gone from the buffer
    return metrics
