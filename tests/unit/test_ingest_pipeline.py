"""IngestPipeline with a real SQLite buffer: acknowledgement only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson

from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.errors import BufferWriteError
from edge.events import BaseEventModel, DataProcessedEvent
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.records import CommitResult, QuarantineRecord, Reading, RetainedTaken
from edge.settings import BufferSettings, IngestLimits, SubscriptionSettings


class RecordingAcks:
    def __init__(self) -> None:
        self.tokens: list[int] = []

    def acknowledge(self, tokens: list[int]) -> None:
        self.tokens.extend(tokens)


class GatedWriter:
    """The real buffer behind a gate the test opens; can fail the first commits."""

    def __init__(self, buffer: SqliteBuffer, failures: int = 0) -> None:
        self.buffer = buffer
        self.gate = asyncio.Event()
        self.failures = failures
        self.commits = 0
        self.rows: list[int] = []  # readings per commit
        self.quarantined: list[int] = []  # quarantine rows per commit

    async def commit_batch(self, readings: Sequence[Reading], quarantine: Sequence[QuarantineRecord],
                           retained: Sequence[RetainedTaken] = ()) -> CommitResult:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise BufferWriteError("disk full (simulated)")
        self.commits += 1
        self.rows.append(len(readings))
        self.quarantined.append(len(quarantine))
        return await self.buffer.readings.commit_batch(readings, quarantine, retained)

    async def retained_taken(self, since_us: int, limit: int) -> dict[str, RetainedTaken]:
        return await self.buffer.readings.retained_taken(since_us, limit)


def _agent(writer: GatedWriter, metrics: GatewayMetrics, bus: EventBus,
           **batching: object) -> IngestPipeline:
    subs = [SubscriptionSettings(topic="f/#", template="f/{asset}/{sensor}")]
    return IngestPipeline(
        bus, metrics, writer=writer, mapper=TopicMapper(subs),
        validator=ReadingValidator(IngestLimits(), {}), limits=IngestLimits(),
        batching=BufferSettings(path=writer.buffer.path, **batching),  # type: ignore[arg-type]
    )


def _payload(n: int) -> bytes:
    return orjson.dumps({"ts": 1_700_000_000 + n, "value": n})


async def _until(predicate: object, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_messages_are_acknowledged_only_after_their_commit(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    processed: list[DataProcessedEvent] = []

    async def on_processed(event: BaseEventModel) -> None:
        assert isinstance(event, DataProcessedEvent)
        processed.append(event)

    bus.subscribe("probe", (DataProcessedEvent,), on_processed)
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        writer = GatedWriter(buffer)
        agent = _agent(writer, metrics, bus)
        acks = RecordingAcks()
        await bus.start()
        runner = asyncio.create_task(agent.run())
        for n in range(10):
            agent.submit("f/pump/temp", _payload(n), acks, 1000 + n)
        agent.submit("f/pump/temp", b"not json", acks, 2000)
        await asyncio.sleep(0.1)
        assert acks.tokens == [], "nothing may be acknowledged before the commit"
        writer.gate.set()
        await _until(lambda: len(acks.tokens) == 11)
        assert acks.tokens == [*range(1000, 1010), 2000]  # arrival order, poison included
        assert (await buffer.status.depths())["readings"].rows == 10
        assert (await buffer.status.depths())["quarantine"].rows == 1
        await agent.drain()
        await runner
        await bus.stop()
    assert sum(len(e.readings) for e in processed) == 10
    assert metrics.readings_rejected.labels("invalid_json")._value.get() == 1
    assert metrics.readings_accepted._value.get() == 10


async def test_a_failing_commit_is_retried_and_nothing_is_acked_meanwhile(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        writer = GatedWriter(buffer, failures=2)
        agent = _agent(writer, metrics, bus)
        acks = RecordingAcks()
        runner = asyncio.create_task(agent.run())
        agent.submit("f/pump/temp", _payload(1), acks, 7)
        writer.gate.set()
        await _until(lambda: metrics.buffer_commit_errors._value.get() == 2)
        await _until(lambda: acks.tokens == [7])
        assert writer.commits == 1
        await agent.drain()
        await runner


async def test_qos0_messages_beyond_the_pending_limit_are_dropped_and_counted(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(GatedWriter(buffer), metrics, EventBus(metrics), max_pending_messages=1000)
        acks = RecordingAcks()
        for n in range(1000):
            agent.submit("f/a/b", _payload(n), None, 0)
        agent.submit("f/a/b", _payload(5000), None, 0)  # QoS 0: refused
        agent.submit("f/a/b", _payload(5001), acks, 1)  # QoS 1: always taken
    assert agent.pending_count == 1001
    assert metrics.messages_dropped.labels("backpressure")._value.get() == 1


async def test_drain_commits_everything_pending_then_returns(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        writer = GatedWriter(buffer)
        writer.gate.set()
        agent = _agent(writer, metrics, EventBus(metrics), max_batch_rows=100)
        acks = RecordingAcks()
        for n in range(1050):
            agent.submit("f/a/b", _payload(n), acks, n)
        await agent.drain()
        await asyncio.wait_for(agent.run(), 10)
        assert len(acks.tokens) == 1050
        assert writer.commits == 11  # batches of at most 100
        assert (await buffer.status.depths())["readings"].rows == 1050


async def _committed_in_batches_of_100(tmp_path: Path,
                                       payloads: list[bytes]) -> tuple[GatedWriter, list[int]]:
    """Submit every payload (QoS 1), drain, and return the writer (rows per commit) and the
    acknowledged tokens."""
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        writer = GatedWriter(buffer)
        writer.gate.set()
        agent = _agent(writer, metrics, EventBus(metrics), max_batch_rows=100,
                       max_batch_delay_ms=0)
        acks = RecordingAcks()
        for n, payload in enumerate(payloads):
            agent.submit("f/a/b", payload, acks, n)
        await agent.drain()
        await asyncio.wait_for(agent.run(), 10)
    return writer, acks.tokens


async def test_a_batch_of_many_reading_messages_is_cut_at_max_batch_rows(tmp_path: Path) -> None:
    """Batches count rows, not messages, from the first batch on: a burst of 30-reading
    messages commits in transactions of about max_batch_rows, never in one huge one (which
    would hold every acknowledgement back and leave validation idle while it commits)."""
    writer, acked = await _committed_in_batches_of_100(tmp_path, [
        orjson.dumps([{"ts": 1_700_000_000 + 30 * n + k, "value": k} for k in range(30)])
        for n in range(40)])
    assert acked == list(range(40))
    assert sum(writer.rows) == 1200
    assert max(writer.rows) == 120  # stops at the message that reaches 100 rows
    assert len(writer.rows) == 10


async def test_a_flood_of_bad_messages_is_cut_at_max_batch_rows_too(tmp_path: Path) -> None:
    """Quarantine rows count: 250 malformed messages and one good one are not one commit."""
    writer, acked = await _committed_in_batches_of_100(tmp_path,
                                                       [b"{not json"] * 250 + [_payload(1)])
    assert acked == list(range(251))
    assert writer.quarantined == [100, 100, 50] and writer.rows == [0, 0, 1]
