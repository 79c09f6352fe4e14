"""Field trial item 7: the gateway's clock decides task times; suspect reading times are flagged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.agents.maintenance import MaintenanceSchedulerAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import AnomalyDetectedEvent
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.settings import (
    BufferSettings,
    IngestLimits,
    MaintenanceSettings,
    SensorSettings,
    SubscriptionSettings,
)
from tests.support.gateway import buffer_rows

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_a_task_is_created_due_and_escalated_on_the_gateways_clock(tmp_path: Path) -> None:
    """Item 7: readings stamped 2 h ago gave a task created 2 h ago, escalated twice in 30 s."""
    metrics = GatewayMetrics()
    clock_s = NOW.timestamp()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = MaintenanceSchedulerAgent(
            "maintenance", EventBus(metrics), metrics, gateway_id="gw",
            settings=MaintenanceSettings(), assets={}, store=buffer.tasks, clock=lambda: clock_s)
        await agent.start()
        opened = NOW - timedelta(hours=2)
        await agent.process(AnomalyDetectedEvent(
            source="t", alert_id="a1", asset_id="pump", sensor_id="pump/temp", detector="limits",
            severity="critical", score=1.0, value=99.0, reading_ts=opened, reason="too hot",
            opened_at=opened))
        clock_s += 30
        await agent.check_escalations()
        await agent.check_escalations()
        await agent.stop()
        tasks = await buffer.tasks.latest()
    assert len(tasks) == 1
    task = tasks[0]
    assert task.created_at == NOW, f"created {task.created_at}, the gateway's clock says {NOW}"
    assert task.due_at == NOW + timedelta(seconds=MaintenanceSettings().due_after_s["high"])
    assert task.priority == "high" and task.details.get("escalations") == 0
    assert task.details["first_alert_at"] == opened.isoformat().replace("+00:00", "Z")


async def test_readings_stamped_before_the_floor_are_stored_flagged_counted_and_not_judged(
    tmp_path: Path,
) -> None:
    """Item 7: readings stamped 1970 (or long ago) gave tasks due in 1970."""
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    sensors = {"pump/temp": SensorSettings(limits=LimitSettings(max=90.0))}
    limits = IngestLimits()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", bus, metrics, gateway_id="gw", settings=DetectionSettings(),
            sensors=sensors, alerts=buffer.alerts, readings=buffer.readings,
            positions=buffer.meta)
        await agent.start()
        await bus.start()
        pipeline = IngestPipeline(
            bus, metrics, writer=buffer.readings,
            mapper=TopicMapper([SubscriptionSettings(topic="f/#", template="f/{asset}/{sensor}")]),
            validator=ReadingValidator(limits, sensors), limits=limits,
            batching=BufferSettings(path=buffer.path))
        runner = asyncio.create_task(pipeline.run())
        forty_days_ago = datetime.now(UTC) - timedelta(days=40)
        stamps = [datetime(1970, 1, 1, 0, 0, k, tzinfo=UTC) for k in range(3)] + [
            forty_days_ago + timedelta(seconds=k) for k in range(3)]
        for n, stamp in enumerate(stamps):
            payload = {"ts": stamp.isoformat(), "value": 150.0 + n}
            pipeline.submit("f/pump/temp", orjson.dumps(payload), None, 0)  # type: ignore[arg-type]
        await pipeline.drain()
        await runner
        await bus.stop()
        await agent.stop()
        alerts = await buffer.alerts.latest()
    flags = [row[0] for row in buffer_rows(tmp_path / "b.sqlite", "SELECT flags FROM readings")]
    assert len(flags) == 6, "stored, not dropped"
    assert all(flag & 4 for flag in flags), f"flags {flags}: clock_suspect is bit 4"
    assert metrics.readings_clock_suspect._value.get() == 6
    assert alerts == [], "readings with a suspect clock are not fed to detection"
