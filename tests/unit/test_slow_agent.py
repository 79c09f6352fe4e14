"""A slow agent never stalls commits or acks; it catches up from the buffer, and the lag shows.

Real pipeline, real SQLite buffer, real bus, the real anomaly agent held back by a gate (an
agent that sleeps): the pipeline commits and acknowledges every batch meanwhile, the
watchdog keeps its pings, the overflow is counted, and a fault that was only in dropped
events still opens its alert once the agent catches up.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import BaseEventModel
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, IngestLimits, SensorSettings, SubscriptionSettings
from edge.systemd import SystemdNotifier

T0 = int(time.time()) - 30_000  # recent: older readings are clock_suspect, not judged


class SlowAnomalyAgent(AnomalyDetectionAgent):
    """The real agent, but each event waits for `gate` first."""

    gate: asyncio.Event

    async def process(self, event: BaseEventModel) -> None:
        await self.gate.wait()
        await super().process(event)


class Acks:
    def __init__(self) -> None:
        self.count = 0

    def acknowledge(self, tokens: list[int]) -> None:
        self.count += len(tokens)


async def test_a_slow_agent_does_not_slow_commits_and_catches_up_with_its_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent")
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    sensors = {"pump/temp": SensorSettings(limits=LimitSettings(max=90.0))}
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = SlowAnomalyAgent("anomaly-detection", bus, metrics, gateway_id="gw",
                                 # No clock tick during the test: the catch-up comes from
                                 # the FeedGapEvent (the tick has its own tests).
                                 settings=DetectionSettings(silence_check_interval_s=3600),
                                 sensors=sensors,
                                 alerts=buffer.alerts, readings=buffer.readings, positions=buffer.meta,
                                 clock=lambda: T0 + 10_000)
        agent.gate = asyncio.Event()
        agent.queue_readings = 2_000  # 20,000 readings overflow it while the gate is closed
        pipeline = IngestPipeline(
            bus, metrics, writer=buffer.readings,
            mapper=TopicMapper([SubscriptionSettings(topic="f/#", template="f/{asset}/{sensor}")]),
            validator=ReadingValidator(IngestLimits(), sensors), limits=IngestLimits(),
            batching=BufferSettings(path=buffer.path, max_batch_rows=50, max_batch_delay_ms=0))
        pings: list[str] = []
        notifier = SystemdNotifier(lambda: pipeline.progressing(1.0), send=pings.append)
        await agent.start()
        await bus.start()
        runner = asyncio.create_task(pipeline.run())
        notifier.ready("test")
        watchdog = asyncio.create_task(notifier.feed_watchdog())
        acks = Acks()
        total = 20_000
        started = time.monotonic()
        for n in range(total):
            # One out-of-range reading in the middle: its event is among the dropped ones.
            value = 99.0 if n == total // 2 else 50.0 + (n % 7) * 0.1
            pipeline.submit("f/pump/temp", orjson.dumps({"ts": T0 + n, "value": value}), acks, n)
            if n % 500 == 0:
                await asyncio.sleep(0)
        async with asyncio.timeout(30):
            while acks.count < total:
                await asyncio.sleep(0.01)
        elapsed_s = time.monotonic() - started
        # Every message was committed and acknowledged while the agent had judged nothing.
        assert acks.count == total and agent.judged_seq == 0
        assert (await buffer.status.depths())["readings"].rows == total
        health = pipeline.health(1.0)
        assert health.state == "running" and health.announce_overflows > 0
        assert metrics.bus_overflow.labels("anomaly-detection")._value.get() == health.announce_overflows
        # One ping per 0.05 s while healthy; half of them is plenty of margin for a busy box.
        assert pings.count("WATCHDOG=1") >= int(elapsed_s / 0.05 / 2), "pings went on"
        assert await buffer.alerts.latest() == []

        agent.gate.set()  # the agent wakes up and catches up from the buffer
        last_seq = await buffer.readings.last_seq()
        async with asyncio.timeout(30):
            while agent.judged_seq < last_seq or bus.stats()[0].queued:
                await asyncio.sleep(0.01)
        await bus.stop()  # the last event is handled (and its alerts stored) before this returns
        alerts = await buffer.alerts.latest()
        assert ("limits", 99.0) in [(a.detector, a.value) for a in alerts]
        await pipeline.drain()
        await runner
        watchdog.cancel()
        await agent.stop()
