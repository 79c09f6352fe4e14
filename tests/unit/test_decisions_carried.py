"""What an operator decided about an open alert (acknowledge, snooze) is carried by every
later version the detection engine or the predictor writes: never lost at the next update."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import AnomalyDetectedEvent, DataProcessedEvent
from edge.maintenance import alerts as alert_rules
from edge.maintenance.decisions import DecisionParams, DecisionRequest
from edge.metrics import GatewayMetrics
from edge.prediction.predictor import Predictor
from edge.records import Reading
from edge.settings import BufferSettings, SensorSettings
from tests.unit.test_predictor import FAST, LIMITS, SENSOR, _run

T0 = 1_800_000_000.0


def _request(action: str, alert_id: str, decision_id: str, **params: object) -> DecisionRequest:
    return DecisionRequest(decision_id=decision_id, target_kind="alert", target_id=alert_id,
                           action=action, actor="jane", params=DecisionParams(**params))  # type: ignore[arg-type]


def _event(values: list[float], start_s: float, first_seq: int) -> DataProcessedEvent:
    readings = tuple(Reading("p/t", "p", round((start_s + i) * 1e6), v, None, None, 0,
                             round((start_s + i) * 1e6)) for i, v in enumerate(values))
    return DataProcessedEvent(source="t", readings=readings, first_seq=first_seq,
                              last_seq=first_seq + len(values) - 1)


async def test_acknowledge_and_snooze_survive_the_engines_next_versions(tmp_path: Path) -> None:
    clock = [T0 + 10]
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    seen: list[AnomalyDetectedEvent] = []

    async def record(event: AnomalyDetectedEvent) -> None:
        seen.append(event)

    bus.subscribe("probe", (AnomalyDetectedEvent,), record)  # type: ignore[arg-type]
    await bus.start()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "a", bus, metrics, gateway_id="gw",
            settings=DetectionSettings(update_interval_s=5, silence_check_interval_s=3600),
            sensors={"p/t": SensorSettings(limits=LimitSettings(max=100))},
            alerts=buffer.alerts, readings=buffer.readings, positions=buffer.meta,
            clock=lambda: clock[0])
        await agent.start()
        await agent.process(_event([50.0, 50.0, 120.0], T0, 1))
        [alert] = await buffer.alerts.open_items()
        until = datetime.fromtimestamp(T0 + 3600, UTC)
        now = datetime.fromtimestamp(clock[0], UTC)
        await agent.decide(_request("acknowledge", alert.alert_id, "d-ack"), now)
        await agent.decide(_request("snooze", alert.alert_id, "d-snooze", until=until), now)
        await agent.process(_event([121.0] * 20, T0 + 3, 4))  # the fault goes on: updates
        latest = await buffer.alerts.get(alert.alert_id)
        assert latest is not None and latest.details["abnormal_readings"] > 1, "a newer version"
        assert latest.details["acknowledged"]["decision_id"] == "d-ack"
        assert latest.details["snoozed"]["decision_id"] == "d-snooze"
        assert latest.details["snoozed_until"] == until.isoformat().replace("+00:00", "Z")
        await agent.process(_event([50.0] * 15, T0 + 23, 24))  # normal again: resolved
        resolved = await buffer.alerts.get(alert.alert_id)
        assert resolved is not None and resolved.state == "resolved"
        assert resolved.details["acknowledged"]["decision_id"] == "d-ack"
        await agent.stop()
    await bus.stop()
    updates = [e for e in seen if e.state == "updated" and e.source == "a"]
    assert updates and all(e.snoozed_until == until for e in updates[-1:])


def test_acknowledge_survives_the_predictors_next_versions() -> None:
    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(predictor, 0.0, 2.0, lambda t: 60.0)
    changes = _run(predictor, 7200.0, 1.5, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    [opened] = [c.alert for c in changes if c.change == "open"]
    decided = alert_rules.decide(opened, _request("acknowledge", opened.alert_id, "d-1"),
                                 opened.updated_at + timedelta(seconds=1))
    assert predictor.take_decided(decided)
    later = _run(predictor, 7200.0 + 5400, 1.0, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    updates = [c.alert for c in later if c.change == "updated"]
    assert updates, "the estimate moved: newer versions"
    assert all(u.details["acknowledged"]["decision_id"] == "d-1" for u in updates)
