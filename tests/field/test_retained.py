"""Review of field trial item 8: the memory of taken retained messages stays small and cheap."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.ports import AckToken
from edge.ingest.replay import QuarantineReplay
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.records import CommitResult, QuarantineRecord, Reading, RetainedTaken
from edge.settings import BufferSettings, IngestLimits, SubscriptionSettings
from tests.support.gateway import buffer_rows

TOPIC = "f/pump/temp"
MAPPER = TopicMapper([SubscriptionSettings(topic="f/#", template="f/{asset}/{sensor}")])


class _CountingWriter:
    """The buffer's readings store, counting the retained entries each commit writes."""

    def __init__(self, buffer: SqliteBuffer) -> None:
        self._readings = buffer.readings
        self.retained_written = 0

    async def commit_batch(self, readings: Sequence[Reading], quarantine: Sequence[QuarantineRecord],
                           retained: Sequence[RetainedTaken] = ()) -> CommitResult:
        self.retained_written += len(retained)
        return await self._readings.commit_batch(readings, quarantine, retained)

    def __getattr__(self, name: str) -> object:
        return getattr(self._readings, name)


def _pipeline(writer: object, path: Path, limits: IngestLimits) -> IngestPipeline:
    metrics = GatewayMetrics()
    return IngestPipeline(EventBus(metrics), metrics, writer=writer,  # type: ignore[arg-type]
                          mapper=MAPPER, validator=ReadingValidator(limits, {}), limits=limits,
                          batching=BufferSettings(path=path, max_batch_rows=1,
                                                  max_batch_delay_ms=0))


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


async def test_live_messages_on_a_retained_topic_do_not_write_the_memory_each_time(
    tmp_path: Path,
) -> None:
    """Review of item 8: every live message on a topic that carries retained messages cost
    an upsert of retained_taken; only what came with the retain flag is written at once,
    the live updates once a minute and at shutdown."""
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        writer = _CountingWriter(buffer)
        pipeline = _pipeline(writer, buffer.path, IngestLimits())
        runner = asyncio.create_task(pipeline.run())
        pipeline.submit(TOPIC, b"7.5", None, AckToken(0), retained=True)
        for value in range(100):
            await asyncio.sleep(0)
            pipeline.submit(TOPIC, f"{value}.25".encode(), None, AckToken(0))
        await asyncio.sleep(0.2)
        written_while_running = writer.retained_written
        await pipeline.drain()
        await runner
        assert written_while_running == 1, f"{written_while_running} retained_taken writes"
        remembered = await buffer.readings.retained_taken(0, 100)
    assert remembered[TOPIC].digest == _digest(b"99.25"), "the last live value, at shutdown"
    assert buffer_rows(tmp_path / "b.sqlite", "SELECT count(*) FROM readings") == [(101,)]


async def test_the_memory_forgets_topics_not_seen_for_long_and_is_capped(tmp_path: Path) -> None:
    """Review of item 8: retained_taken was never pruned nor capped."""
    now_us = int(time.time() * 1e6)
    old_us = now_us - 30 * 86_400_000_000
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        await buffer.readings.commit_batch([], [], [
            *(RetainedTaken(f"old/{n}", b"d", old_us) for n in range(50)),
            *(RetainedTaken(f"new/{n}", b"d", now_us - n) for n in range(10))])
        pipeline = _pipeline(buffer.readings, buffer.path,
                             IngestLimits(max_sensors=5, sensor_idle_release_s=7 * 86_400))
        runner = asyncio.create_task(pipeline.run())
        await asyncio.sleep(0.2)
        await pipeline.drain()
        await runner
    kept = buffer_rows(tmp_path / "b.sqlite", "SELECT topic FROM retained_taken ORDER BY topic")
    assert kept == [(f"new/{n}",) for n in range(5)], kept


async def test_a_replay_leaves_the_topics_retained_memory_alone(tmp_path: Path) -> None:
    """Review of item 8: replaying a quarantine row overwrote its topic's stored digest, so
    the retained copy already taken would be taken again at the next restart."""
    limits = IngestLimits()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        await buffer.readings.commit_batch([], [QuarantineRecord(
            int(time.time() * 1e6), TOPIC, orjson.dumps({"sensor_id": "m/new", "value": 8.5}),
            "unknown_sensor", "not configured", "mqtt")],
            [RetainedTaken(TOPIC, _digest(b"7.5"), int(time.time() * 1e6))])
        pipeline = _pipeline(buffer.readings, buffer.path, limits)
        runner = asyncio.create_task(pipeline.run())
        replay = QuarantineReplay(pipeline, buffer.quarantine, mapper=MAPPER,
                                  validator=ReadingValidator(limits, {}), limits=limits,
                                  commit_timeout_s=10)
        assert (await replay.replay(None, 10)).replayed == 1
        await pipeline.drain()
        await runner
    assert buffer_rows(tmp_path / "b.sqlite", "SELECT digest FROM retained_taken") == [
        (_digest(b"7.5"),)]
