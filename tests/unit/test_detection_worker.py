"""Detection in its own process (`detection.worker: process`, the daemon's default): it decides
exactly what the inline engine decides, survives being SIGKILLed (a new worker recovers
from the saved position: no lost fault, no second alert), and never outlives the daemon.
Real child processes and a real SQLite buffer."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.agents.detection_host import (
    DetectionHost,
    DetectionWorkerError,
    InlineDetection,
    WorkerDetection,
)
from edge.agents.detection_shards import ShardedDetection
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.session import DetectionSession
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, SensorSettings

T0 = time.time() - 3600  # recent: the worker judges false-alarm spans on the real clock
SENSOR = "pump/temp"
SENSORS = {sensor: SensorSettings(limits=LimitSettings(max=90.0))
           for sensor in (SENSOR, "pump/flow")}


def _readings(values: list[float], start_s: float, sensor: str = SENSOR) -> tuple[Reading, ...]:
    return tuple(Reading(sensor, "pump", int((start_s + i) * 1e6), v, None, None, 0,
                         int((start_s + i) * 1e6)) for i, v in enumerate(values))


def _signal(count: int) -> list[float]:
    """Normal with a step at the end that the learned detectors and the limit both see."""
    return [50.0 + (i % 7) * 0.1 for i in range(count - 40)] + [95.0] * 20 + [50.0] * 20


async def test_the_worker_decides_exactly_what_the_inline_engine_decides() -> None:
    settings = DetectionSettings()
    readings = _readings(_signal(600), T0) + _readings(_signal(600), T0, "pump/flow")
    inline = InlineDetection(DetectionSession("gw", settings, {}, {}, time.time))
    worker = WorkerDetection("gw", settings, {}, {})
    await worker.start()
    try:
        by_worker = await worker.judge(readings)
        by_inline = await inline.judge(readings)
        assert by_worker == by_inline and any(c.change == "open" for c in by_worker)
        assert (worker.open_count, worker.sensor_count) == (inline.open_count, 2)
        assert await worker.tick(T0 + 4000) == await inline.tick(T0 + 4000)
        assert len(await worker.snapshot()) > 1000
    finally:
        await worker.stop()


def _worker_of(detection: DetectionHost, sensor: str) -> WorkerDetection:
    """The process that holds `sensor` (one of several when sharded)."""
    if isinstance(detection, ShardedDetection):
        return detection.workers[detection.owner(sensor, "pump")]
    assert isinstance(detection, WorkerDetection)
    return detection


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_killed_worker_is_replaced_and_recovers_without_losing_or_repeating_an_alert(
    tmp_path: Path, workers: int,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
            settings=DetectionSettings(workers=workers), sensors=SENSORS, alerts=buffer.alerts,
            readings=buffer.readings, positions=buffer.meta, worker=True)
        await agent.start()

        async def commit_and_tell(readings: tuple[Reading, ...]) -> None:
            result = await buffer.readings.commit_batch(readings, [])
            await agent.process(DataProcessedEvent(source="t", readings=readings,
                                                   first_seq=result.first_seq,
                                                   last_seq=result.last_seq))

        await commit_and_tell(_readings([50.0] * 100, T0))
        await commit_and_tell(_readings([99.0] * 5, T0 + 100))  # a limit breach: one alert
        await agent.tick()  # stores the position
        before = {a.alert_id for a in await buffer.alerts.open_items()}
        assert "limits" in {a.detector for a in await buffer.alerts.open_items()}

        first_pid = _worker_of(agent.detection, SENSOR).pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        # The next batch reaches a dead worker: a breach on another sensor, which must not be lost.
        await commit_and_tell(_readings([99.0] * 5, T0 + 105, "pump/flow"))
        assert metrics.detection_worker_restarts._value.get() == 1
        assert _worker_of(agent.detection, SENSOR).pid != first_pid
        await commit_and_tell(_readings([99.0] * 5, T0 + 110))  # the first breach goes on
        for _ in range(3):  # the tick catches up what the dead worker missed
            await agent.tick()
        assert agent.judged_seq == await buffer.readings.last_seq() == 115
        open_alerts = await buffer.alerts.open_items()
        assert {a.sensor_id for a in open_alerts} == {"pump/flow", SENSOR}, "nothing lost"
        assert {a.alert_id for a in open_alerts if a.sensor_id == SENSOR} == before, \
            "the same alerts go on: none opened a second time"
        await agent.stop()


async def test_the_worker_ignores_sigterm_and_exits_when_the_daemon_is_gone() -> None:
    worker = WorkerDetection("gw", DetectionSettings(), {}, {})
    await worker.start()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGTERM)  # systemctl stop reaches the whole process group
    assert await worker.close("s", "limits") is False, "still answering after SIGTERM"
    process = worker._process
    assert process is not None and process.stdin is not None
    process.stdin.close()  # what a SIGKILLed daemon leaves it: the end of its input
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_a_stopped_worker_counts_as_dead_after_the_call_timeout() -> None:
    worker = WorkerDetection("gw", DetectionSettings(), {}, {}, call_timeout_s=1.0)
    await worker.start()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGSTOP)  # stuck: alive, but it never answers
    with pytest.raises(DetectionWorkerError, match="did not answer 'tick'"):
        await worker.tick(T0)
    process = worker._process
    assert process is not None
    assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL
    await worker.restart()
    assert await worker.tick(T0) == [] and worker.pid != process.pid
    await worker.stop()
