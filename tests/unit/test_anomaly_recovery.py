"""The anomaly agent across the ways its detection can be interrupted: a daemon killed
without a snapshot, a worker lost under an operator's decision, a call abandoned half way.
Real SQLite buffers and, where a worker is involved, real child processes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import pytest

from edge.agents.anomaly import JUDGED_SEQ_KEY, AnomalyDetectionAgent
from edge.agents.detection_host import DetectionWorkerError, InlineDetection, WorkerDetection
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.errors import BufferReadError
from edge.events import DataProcessedEvent
from edge.maintenance.decisions import DecisionRequest
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, Reading
from edge.settings import BufferSettings, SensorSettings

SENSOR = "pump/temp"
START = time.time() - 1800  # inside the default warm-up window (one hour) of the real clock


def _decision(decision_id: str, alert: AlertRecord, action: str) -> DecisionRequest:
    """An operator's decision about `alert` over HTTP."""
    return DecisionRequest(decision_id=decision_id, target_kind="alert",
                           target_id=alert.alert_id, action=action, actor="op", origin="http")


def _readings(values: list[float], start_s: float) -> tuple[Reading, ...]:
    return tuple(Reading(SENSOR, "pump", int((start_s + i) * 1e6), v, None, None, 0,
                         int((start_s + i) * 1e6)) for i, v in enumerate(values))


def _normal(count: int) -> list[float]:
    noise = random.Random(7)
    return [noise.gauss(50.0, 1.0) for _ in range(count)]


def _agent(buffer: SqliteBuffer, metrics: GatewayMetrics, *, worker: bool = False,
           sensors: dict[str, SensorSettings] | None = None) -> AnomalyDetectionAgent:
    return AnomalyDetectionAgent("anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
                                 settings=DetectionSettings(workers=1), sensors=sensors or {},
                                 alerts=buffer.alerts, readings=buffer.readings,
                                 positions=buffer.meta, worker=worker)


async def _commit_and_tell(buffer: SqliteBuffer, agent: AnomalyDetectionAgent,
                           readings: tuple[Reading, ...]) -> None:
    result = await buffer.readings.commit_batch(readings, [])
    await agent.process(DataProcessedEvent(source="t", readings=readings,
                                           first_seq=result.first_seq, last_seq=result.last_seq))


async def test_an_alert_is_stored_with_its_position_so_a_killed_daemon_repeats_nothing(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, metrics, sensors={SENSOR: SensorSettings(
            limits=LimitSettings(max=90.0))})
        await agent.start()
        await _commit_and_tell(buffer, agent, _readings([50.0] * 10 + [95.0] * 3, START))
        assert [a.detector for a in await buffer.alerts.open_items()] == ["limits"]
        # No tick ran: the position that goes with the stored alert is saved already.
        assert await buffer.meta.get_int(JUDGED_SEQ_KEY) == agent.judged_seq == 13


async def test_without_a_snapshot_a_sensor_with_an_open_alert_relearns_before_it_is_restored(
    tmp_path: Path,
) -> None:
    """Restored first, its alerting detector would learn nothing from the warm-up readings
    and stay blind; relearned first, it knows the sensor again."""
    path = tmp_path / "b.sqlite"
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=path), "gw") as buffer:
        agent = _agent(buffer, metrics)
        await agent.start()
        await _commit_and_tell(buffer, agent, _readings(_normal(600) + [80.0] * 3, START))
        opened = {a.detector for a in await buffer.alerts.open_items()}
        assert "outlier" in opened, opened
        # The daemon is SIGKILLed here: no stop, no snapshot.
    async with SqliteBuffer(BufferSettings(path=path), "gw") as buffer:
        assert await buffer.meta.get_snapshot("anomaly_detection.models") is None
        agent = _agent(buffer, metrics)
        await agent.start()
        assert isinstance(agent.detection, InlineDetection)
        model = agent.detection.session.engine._models[SENSOR]
        assert model.learned and model._outlier is not None
        assert model._outlier.level.count >= 600, "the warm-up readings were learned"
        assert agent.detection.open_count >= 1, "and the open alert is back"


async def test_a_decision_while_the_worker_is_dead_is_applied_after_it_is_recovered(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, metrics, worker=True, sensors={SENSOR: SensorSettings(
            limits=LimitSettings(max=90.0))})
        await agent.start()
        try:
            await _commit_and_tell(buffer, agent, _readings([50.0] * 10 + [95.0] * 3, START))
            (alert,) = await buffer.alerts.open_items()
            assert isinstance(agent.detection, WorkerDetection) and agent.detection.pid
            os.kill(agent.detection.pid, signal.SIGKILL)
            request = _decision("d-1", alert, "acknowledge")
            record = await agent.decide(request, alert.updated_at)
            assert record.outcome == "applied"
            assert metrics.detection_worker_restarts._value.get() == 1
            stored = await buffer.alerts.get(alert.alert_id)
            assert stored is not None and stored.details["acknowledged"]["by"] == "op"
        finally:
            await agent.stop()


async def test_a_call_abandoned_half_way_leaves_no_reply_for_the_next_call() -> None:
    """Cancelled while the worker worked, the reply would be read by the next call, and every
    answer after it would belong to the call before: the worker is killed instead."""
    worker = WorkerDetection("gw", DetectionSettings(), {}, {})
    await worker.start()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGSTOP)  # the call cannot be answered before it is cancelled
    call = asyncio.create_task(worker.tick(START))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    os.kill(worker.pid, signal.SIGCONT)
    with pytest.raises(DetectionWorkerError, match="not running"):
        await worker.close(SENSOR, "limits")
    process = worker._process
    assert process is not None
    assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL
    await worker.restart()
    assert await worker.close(SENSOR, "limits") is False, "a new worker answers in step"
    await worker.stop()


async def _limits_alert_with_worker(buffer: SqliteBuffer, metrics: GatewayMetrics
                                    ) -> tuple[AnomalyDetectionAgent, AlertRecord]:
    agent = _agent(buffer, metrics, worker=True, sensors={SENSOR: SensorSettings(
        limits=LimitSettings(max=90.0))})
    await agent.start()
    await _commit_and_tell(buffer, agent, _readings(_normal(300) + [95.0] * 3, START))
    alerts = [a for a in await buffer.alerts.open_items() if a.detector == "limits"]
    assert len(alerts) == 1
    return agent, alerts[0]


async def test_a_worker_lost_half_way_through_a_decision_gets_all_of_it_again(
    tmp_path: Path,
) -> None:
    """Closed on the old worker, the alert is open again on the new one (restored from the
    store, where the decision is not yet): the close must be sent again with the rest."""
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent, alert = await _limits_alert_with_worker(buffer, metrics)
        detection = agent.detection
        assert isinstance(detection, WorkerDetection)
        original = detection.set_feedback
        calls = 0

        async def dies_first(book: list[dict[str, object]]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:  # after the close, before the feedback
                assert detection.pid is not None
                os.kill(detection.pid, signal.SIGKILL)
            await original(book)

        detection.set_feedback = dies_first  # type: ignore[method-assign]
        open_before = detection.open_count
        try:
            request = _decision("d-2", alert, "false_alarm")
            record = await agent.decide(request, alert.updated_at)
            assert record.outcome == "applied"
            assert metrics.detection_worker_restarts._value.get() == 1
            assert detection.open_count == open_before - 1, "the new worker knows it is closed"
            assert await detection.close(SENSOR, "limits") is False
            stored = await buffer.alerts.get(alert.alert_id)
            assert stored is not None and stored.state == "closed"
        finally:
            await agent.stop()


async def test_a_decision_that_cannot_be_applied_changes_nothing_not_even_the_feedback(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent, alert = await _limits_alert_with_worker(buffer, metrics)
        detection = agent.detection
        assert isinstance(detection, WorkerDetection)

        async def always_lost(sensor_id: str, detector: str) -> bool:
            raise DetectionWorkerError("the detection worker is not running")

        detection.close = always_lost  # type: ignore[method-assign]
        book = agent.feedback.to_json()
        try:
            request = _decision("d-3", alert, "false_alarm")
            with pytest.raises(DetectionWorkerError):
                await agent.decide(request, alert.updated_at)
            assert agent.feedback.to_json() == book
            stored = await buffer.alerts.get(alert.alert_id)
            assert stored is not None and stored.state == "open", "nothing applied"
        finally:
            await agent.stop()


async def test_a_recovery_that_fails_half_way_never_judges_with_the_half_restored_worker(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent, alert = await _limits_alert_with_worker(buffer, metrics)
        detection = agent.detection
        assert isinstance(detection, WorkerDetection) and detection.pid is not None
        original = buffer.alerts.open_items
        failures = 1

        async def fails_once() -> list[AlertRecord]:
            nonlocal failures
            if failures:
                failures -= 1
                raise BufferReadError("the buffer cannot be read")
            return await original()

        buffer.alerts.open_items = fails_once  # type: ignore[method-assign]
        os.kill(detection.pid, signal.SIGKILL)
        with pytest.raises(BufferReadError):  # the bus retries the event
            await _commit_and_tell(buffer, agent, _readings([96.0] * 2, START + 400))
        assert detection._broken, "the half-restored worker is not used"
        await _commit_and_tell(buffer, agent, _readings([97.0] * 2, START + 500))
        for _ in range(2):
            await agent.tick()
        limits = [a for a in await buffer.alerts.open_items() if a.detector == "limits"]
        assert [a.alert_id for a in limits] == [alert.alert_id], "no second alert"
        await agent.stop()
