"""Bus retries of the anomaly agent: a transient alert-write failure loses no alert.

The agent is retried by the bus (it is idempotent under retry): after the first attempt
failed to store the alert, the retry stores and announces it, exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.errors import BufferWriteError
from edge.events import AnomalyDetectedEvent, BaseEventModel, DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, Reading
from edge.settings import BufferSettings, SensorSettings

T0 = 1_700_000_000.0


class FlakyAlertLog:
    """The real alert log, failing the first `failures` appends (disk full for a moment)."""

    def __init__(self, inner: object, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    async def append(self, items: Sequence[AlertRecord],
                     position: tuple[str, int] | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise BufferWriteError("database or disk is full (simulated)")
        await self._inner.append(items, position=position)  # type: ignore[attr-defined]

    async def open_items(self) -> list[AlertRecord]:
        return await self._inner.open_items()  # type: ignore[attr-defined, no-any-return]

    async def latest(self, state: str | None = None, limit: int = 1000) -> list[AlertRecord]:
        return await self._inner.latest(state, limit)  # type: ignore[attr-defined, no-any-return]


def _readings(values: list[float], start_s: float) -> tuple[Reading, ...]:
    return tuple(Reading("pump/temp", "pump", int((start_s + i) * 1e6), v, None, None, 0,
                         int((start_s + i) * 1e6)) for i, v in enumerate(values))


async def _run(tmp_path: Path, failures: int, batches: list[list[float]]) -> tuple[
        list[AnomalyDetectedEvent], list[AlertRecord], GatewayMetrics]:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    announced: list[AnomalyDetectedEvent] = []

    async def probe(event: BaseEventModel) -> None:
        assert isinstance(event, AnomalyDetectedEvent)
        announced.append(event)

    bus.subscribe("probe", (AnomalyDetectedEvent,), probe)
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", bus, metrics, gateway_id="gw", settings=DetectionSettings(),
            sensors={"pump/temp": SensorSettings(limits=LimitSettings(max=90.0))},
            alerts=FlakyAlertLog(buffer.alerts, failures), readings=buffer.readings, positions=buffer.meta,
            clock=lambda: T0)
        await agent.start()
        await bus.start()
        start = T0
        for values in batches:
            readings = _readings(values, start)
            start += len(values)
            result = await buffer.readings.commit_batch(readings, [])
            await bus.publish(DataProcessedEvent(source="test", readings=readings,
                                                 first_seq=result.first_seq,
                                                 last_seq=result.last_seq))
        await asyncio.sleep(0.2)
        await bus.stop()
        await agent.stop()
        stored = await buffer.alerts.latest()
    return announced, stored, metrics


async def test_after_a_transient_alert_write_failure_the_alert_is_stored_and_announced_once(
    tmp_path: Path,
) -> None:
    announced, stored, metrics = await _run(tmp_path, failures=1,
                                            batches=[[50.0] * 5 + [95.0] * 3])
    assert metrics.bus_handler_errors.labels("anomaly-detection")._value.get() == 1
    assert [(e.detector, e.state) for e in announced] == [("limits", "open")]
    assert [(a.detector, a.state) for a in stored] == [("limits", "open")]
    assert announced[0].alert_id == stored[0].alert_id
    assert metrics.bus_dead_letters.labels("anomaly-detection")._value.get() == 0


async def test_when_every_retry_fails_the_alert_still_goes_out_with_the_next_event(
    tmp_path: Path,
) -> None:
    announced, stored, metrics = await _run(tmp_path, failures=3,
                                            batches=[[50.0] * 5 + [95.0] * 3, [96.0] * 2])
    assert metrics.bus_dead_letters.labels("anomaly-detection")._value.get() == 1
    opened = [e for e in announced if e.state == "open"]
    assert len(opened) == 1 and opened[0].detector == "limits"
    assert len({a.alert_id for a in stored}) == 1 and stored[0].state == "open"
