"""Field trial item 10: a burst or backfill never opens silence alerts."""

from __future__ import annotations

from pathlib import Path

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, SilenceSettings
from edge.detection.silence import SilenceDetector
from edge.events import DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings

NOW = 1_795_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_burst_of_readings_then_nothing_opens_no_silence_alert(tmp_path: Path) -> None:
    """Item 10: 60,000 readings over 100 sensors in one burst gave 100 silence alerts 6 s later."""
    clock = Clock(NOW)
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
            settings=DetectionSettings(), sensors={}, alerts=buffer.alerts,
            readings=buffer.readings, positions=buffer.meta, clock=clock)
        await agent.start()
        # Ten minutes of history per sensor (one reading a second), all arriving within 1 s.
        burst = [Reading(f"s{n % 100}", "a", int((NOW - 600 + n // 100) * 1e6), float(n % 7),
                         None, None, 0, int((NOW + n / 60_000) * 1e6)) for n in range(60_000)]
        for start in range(0, 60_000, 5_000):
            chunk = tuple(burst[start:start + 5_000])
            result = await buffer.readings.commit_batch(chunk, [])
            await agent.process(DataProcessedEvent(source="t", readings=chunk,
                                                   first_seq=result.first_seq,
                                                   last_seq=result.last_seq))
        for later_s in (6, 60, 3600):
            clock.now = NOW + later_s
            await agent.tick()
        silence = [a for a in await buffer.alerts.latest() if a.detector == "silence"]
        assert silence == [], f"{len(silence)} silence alerts after a burst"
        await agent.stop()


def test_a_sensor_that_reports_live_is_judged_silent_when_it_stops() -> None:
    """Item 10: the period comes from reading time, and a live sensor still gets its alert."""
    detector = SilenceDetector(SilenceSettings())
    for k in range(30):
        detector.update(NOW + k * 2.0, NOW + k * 2.0 + 0.05)  # every 2 s, arriving live
    assert detector.check(NOW + 60 + 5) is None
    finding = detector.check(NOW + 60 + 30)
    assert finding is not None and "usually every 2.0 s" in finding.reason


def test_a_backfill_followed_by_live_readings_is_judged_only_once_it_is_live() -> None:
    """Item 10: old readings arriving at once teach nothing about liveness."""
    detector = SilenceDetector(SilenceSettings())
    for k in range(600):  # ten minutes of history, delivered in 0.6 s
        detector.update(NOW - 600 + k, NOW + k / 1000)
    assert detector.check(NOW + 30) is None
