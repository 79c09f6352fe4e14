"""Scheduler rules, notification topics and the anomaly agent's restart path (real buffer)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.agents.maintenance import MaintenanceSchedulerAgent
from edge.agents.notification import NotificationAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import AnomalyDetectedEvent, DataProcessedEvent, MaintenanceTaskCreatedEvent
from edge.metrics import GatewayMetrics
from edge.notify.webhook import WebhookSender
from edge.records import Reading
from edge.settings import AssetSettings, BufferSettings, MaintenanceSettings, SensorSettings, WebhookSettings
from tests.support.services import free_port

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _alert(alert_id: str = "a1", *, state: str = "open", severity: str = "critical",
           detector: str = "limits", asset: str | None = "press-1",
           opened: datetime = T0) -> AnomalyDetectedEvent:
    return AnomalyDetectedEvent(
        source="test", alert_id=alert_id, asset_id=asset, sensor_id="press-1/pressure",
        detector=detector, severity=severity, score=3.0, value=200.0, reading_ts=opened,  # type: ignore[arg-type]
        reason="value 200 is above the critical limit 180", state=state, opened_at=opened)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _scheduler(tmp_path: Path, clock: Clock) -> tuple[MaintenanceSchedulerAgent, SqliteBuffer,
                                                             list[MaintenanceTaskCreatedEvent]]:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    seen: list[MaintenanceTaskCreatedEvent] = []

    async def record(event: Any) -> None:
        seen.append(event)

    bus.subscribe("probe", (MaintenanceTaskCreatedEvent,), record)
    buffer = SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw")
    await buffer.__aenter__()
    agent = MaintenanceSchedulerAgent(
        "maintenance", bus, metrics, gateway_id="gw", settings=MaintenanceSettings(),
        assets={"press-1": AssetSettings(criticality="high")}, store=buffer.tasks, clock=clock)
    await bus.start()
    await agent.start()
    return agent, buffer, seen


async def test_priority_comes_from_severity_and_criticality_and_tasks_are_not_duplicated(
    tmp_path: Path
) -> None:
    clock = Clock(T0.timestamp())
    agent, buffer, seen = await _scheduler(tmp_path, clock)
    await agent.process(_alert("a1"))
    await agent.process(_alert("a1", state="updated"))
    await agent.process(_alert("a2", opened=T0 + timedelta(minutes=5)))  # same asset, same cause
    await agent.process(_alert("z1", detector="outlier", severity="warning"))  # another cause
    tasks = await buffer.tasks.open_items()
    await buffer.close()
    await asyncio.sleep(0.05)
    by_cause = {t.cause: t for t in tasks}
    assert set(by_cause) == {"out_of_range", "abnormal_readings"}
    assert by_cause["out_of_range"].priority == "urgent"  # critical x high
    assert by_cause["abnormal_readings"].priority == "high"  # warning x high
    assert by_cause["out_of_range"].alert_ids == ["a1", "a2"]
    assert by_cause["out_of_range"].due_at == T0 + timedelta(hours=4)
    assert [e.change for e in seen if e.cause == "out_of_range"] == ["created", "updated"]


async def test_info_alerts_make_no_task_and_an_open_task_is_restored_after_restart(
    tmp_path: Path
) -> None:
    clock = Clock(T0.timestamp())
    agent, buffer, _ = await _scheduler(tmp_path, clock)
    await agent.process(_alert("i1", severity="info"))
    assert await buffer.tasks.open_items() == []
    await agent.process(_alert("a1", severity="warning"))
    await buffer.close()
    restarted, buffer, seen = await _scheduler(tmp_path, clock)
    await restarted.process(_alert("a1", severity="warning", state="updated"))
    tasks = await buffer.tasks.open_items()
    await buffer.close()
    await asyncio.sleep(0.05)
    assert len(tasks) == 1 and seen == [], "the restored task already knows this alert"


async def test_a_task_whose_alert_stays_open_is_escalated_once_per_span(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    agent, buffer, seen = await _scheduler(tmp_path, clock)
    await agent.process(_alert("a1", severity="warning", asset="pump-9"))  # medium criticality
    clock.now += 1800
    await agent.check_escalations()
    await asyncio.sleep(0.05)  # let the bus deliver
    assert [e.change for e in seen] == ["created"]
    clock.now += 1800
    await agent.check_escalations()
    await agent.check_escalations()  # same span: no second escalation
    clock.now += 3600
    await agent.check_escalations()
    await asyncio.sleep(0.05)
    assert [(e.change, e.priority) for e in seen] == [
        ("created", "medium"), ("escalated", "high"), ("escalated", "urgent")]
    await agent.process(_alert("a1", severity="warning", asset="pump-9", state="resolved"))
    clock.now += 36_000
    await agent.check_escalations()
    await asyncio.sleep(0.05)
    # The resolved alert is recorded; nothing is left to escalate, and after a quiet spell
    # the task is done by recovery.
    assert [(e.change, e.state) for e in seen[3:]] == [("updated", "open"), ("recovered", "done")]
    await buffer.close()


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload, retain))


async def test_alert_topic_is_retained_while_open_and_cleared_when_the_last_alert_resolves() -> None:
    metrics = GatewayMetrics()
    publisher = FakePublisher()
    agent = NotificationAgent("n", EventBus(metrics), metrics, topic_prefix="edge/gw", qos=1,
                              publisher=publisher)
    topic = "edge/gw/alerts/press-1/press-1/pressure"
    await agent.process(_alert("a1"))
    await agent.process(_alert("a2", detector="outlier"))
    await agent.process(_alert("a1", state="resolved"))
    assert publisher.sent[-1][0] == topic and publisher.sent[-1][2] is True
    assert json.loads(publisher.sent[-1][1])["alert_id"] == "a2", "a2 is still open: it is the state"
    await agent.process(_alert("a2", detector="outlier", state="resolved"))
    assert publisher.sent[-2][2] is False and json.loads(publisher.sent[-2][1])["state"] == "resolved"
    assert publisher.sent[-1] == (topic, b"", True), "retained state cleared"


def _snoozed(alert_id: str, until: datetime, score: float) -> AnomalyDetectedEvent:
    return _alert(alert_id, state="updated").model_copy(
        update={"snoozed_until": until, "score": score})


async def test_updates_of_a_snoozed_alert_are_held_and_resume_when_the_snooze_ends() -> None:
    metrics = GatewayMetrics()
    publisher = FakePublisher()
    clock = Clock(T0.timestamp())
    agent = NotificationAgent("n", EventBus(metrics), metrics, topic_prefix="edge/gw", qos=1,
                              publisher=publisher, clock=clock)
    await agent.process(_alert("a1"))
    until = T0 + timedelta(hours=1)
    await agent.process(_snoozed("a1", until, 4.0))
    clock.now += 600
    await agent.process(_snoozed("a1", until, 5.0))
    agent.tick()
    assert len(publisher.sent) == 1, "muted while snoozed"
    clock.now = until.timestamp() + 1  # the snooze is over: no further update needed
    agent.tick()
    assert len(publisher.sent) == 2 and publisher.sent[-1][2] is True
    assert json.loads(publisher.sent[-1][1])["score"] == 5.0, "the newest held update"
    await agent.process(_snoozed("a1", until, 6.0))  # after the snooze: published at once
    assert len(publisher.sent) == 3
    agent.tick()
    assert len(publisher.sent) == 3, "nothing held twice"


async def test_a_snooze_time_without_offset_is_read_as_utc_not_a_crash() -> None:
    metrics = GatewayMetrics()
    publisher = FakePublisher()
    clock = Clock(T0.timestamp())
    agent = NotificationAgent("n", EventBus(metrics), metrics, topic_prefix="edge/gw", qos=1,
                              publisher=publisher, clock=clock)
    naive = (T0 + timedelta(hours=1)).replace(tzinfo=None)
    await agent.process(_snoozed("a1", naive, 4.0))  # an older buffer's snooze
    assert publisher.sent == []
    clock.now += 3601
    agent.tick()
    assert len(publisher.sent) == 1


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str | None, bytes]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if _Hook.failures_left > 0:
            _Hook.failures_left -= 1
            self.send_response(503)
        else:
            _Hook.received.append((self.headers.get("authorization"), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


async def test_webhook_posts_with_the_token_retries_5xx_and_rate_limits(tmp_path: Path) -> None:
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received, _Hook.failures_left = [], 1
    token = tmp_path / "token"
    token.write_text("hook-secret")
    metrics = GatewayMetrics()
    settings = WebhookSettings(url=f"http://127.0.0.1:{port}/hook", token_file=token,
                               max_per_minute=2, retries=2)
    try:
        async with WebhookSender(settings, metrics) as sender:
            for n in range(3):
                sender.send(json.dumps({"n": n}).encode())
            async with asyncio.timeout(10):
                while len(_Hook.received) < 2:
                    await asyncio.sleep(0.05)
    finally:
        server.shutdown()
    assert [json.loads(body)["n"] for _, body in _Hook.received] == [0, 1]
    assert _Hook.received[0][0] == "Bearer hook-secret"
    assert metrics.notifications.labels("webhook", "rate_limited")._value.get() == 1
    assert metrics.notifications.labels("webhook", "sent")._value.get() == 2


def _readings(values: list[float], start_s: float, sensor: str = "p/t") -> tuple[Reading, ...]:
    return tuple(Reading(sensor, "p", int((start_s + i) * 1e6), v, None, None, 0,
                         int((start_s + i) * 1e6)) for i, v in enumerate(values))


async def test_anomaly_agent_keeps_one_alert_across_a_restart_mid_fault(tmp_path: Path) -> None:
    now = T0.timestamp()
    sensors = {"p/t": SensorSettings(limits=LimitSettings(max=100))}
    settings = DetectionSettings(resolve_after_s=5, resolve_after_readings=3)

    async def run(values: list[float], start_s: float) -> None:
        metrics = GatewayMetrics()
        async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
            agent = AnomalyDetectionAgent("a", EventBus(metrics), metrics, gateway_id="gw",
                                          settings=settings, sensors=sensors,
                                          alerts=buffer.alerts, readings=buffer.readings,
                                          positions=buffer.meta,
                                          clock=lambda: start_s)
            await agent.start()  # restores open alerts, warms up on what the buffer holds
            readings = _readings(values, start_s)
            result = await buffer.readings.commit_batch(readings, [])
            await agent.process(DataProcessedEvent(source="t", readings=readings,
                                                   first_seq=result.first_seq,
                                                   last_seq=result.last_seq))
            await agent.stop()

    await run([50.0] * 20 + [120.0] * 10, now)  # the fault starts
    await run([121.0] * 10 + [50.0] * 10, now + 30)  # a new process, fault goes on, then ends
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        alerts = await buffer.alerts.latest()
    limits = [a for a in alerts if a.detector == "limits"]
    assert len(limits) == 1 and limits[0].state == "resolved"
