"""An operator's false alarm feeds back into detection: the condition is silenced for a span,
the sensor's false-alert budget is cut, both survive a restart, `status` shows them, and an
undo takes them back; only for the learned detector named in the alert, never for a
datasheet limit. The real agent, engine and SQLite buffer."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.feedback import FEEDBACK_KEY, STEP, FeedbackBook
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import DataProcessedEvent
from edge.maintenance.decisions import DecisionRequest
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, SensorSettings
from edge.status import build_status, render

T0 = 1_800_000_000.0
SENSOR = "pump-1/temp"


class Feed:
    """Readings for the agent, one event each, with buffer sequence numbers."""

    def __init__(self) -> None:
        self.seq = 0
        self.ts = T0

    def event(self, *values: float) -> DataProcessedEvent:
        readings = []
        for value in values:
            self.ts += 1.0
            ts_us = round(self.ts * 1e6)
            readings.append(Reading(SENSOR, "pump-1", ts_us, value, None, None, 0, ts_us))
        first = self.seq + 1
        self.seq += len(readings)
        return DataProcessedEvent(source="test", readings=tuple(readings), first_seq=first,
                                  last_seq=self.seq)


def _agent(buffer: SqliteBuffer, clock: list[float], max_: float = 50.0) -> AnomalyDetectionAgent:
    metrics = GatewayMetrics()
    return AnomalyDetectionAgent(
        "anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
        settings=DetectionSettings(silence_check_interval_s=3600, false_alarm_suppress_s=3600),
        sensors={SENSOR: SensorSettings(asset="pump-1", limits=LimitSettings(max=max_))},
        alerts=buffer.alerts, readings=buffer.readings, positions=buffer.meta,
        clock=lambda: clock[0])


def _normal(count: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [20.0 + rng.gauss(0.0, 1.0) for _ in range(count)]


async def _learned(agent: AnomalyDetectionAgent, feed: Feed) -> None:
    """Past the learning period (200 readings, 300 s): the outlier detector judges."""
    await agent.process(feed.event(*_normal(400)))


def _decision(action: str, alert_id: str, decision_id: str) -> DecisionRequest:
    return DecisionRequest(decision_id=decision_id, target_kind="alert", target_id=alert_id,
                           action=action, actor="jane", note="valve test, not a fault")


async def test_a_false_alarm_silences_the_condition_cuts_the_budget_and_can_be_undone(
    tmp_path: Path,
) -> None:
    clock = [T0 + 1000]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock, max_=500.0)
        await agent.start()
        await _learned(agent, feed)
        await agent.process(feed.event(45.0))  # far outside what it learned
        [alert] = await buffer.alerts.open_items()
        assert alert.detector == "outlier"
        record = await agent.decide(_decision("false_alarm", alert.alert_id, "d-fa-1"),
                                    datetime.fromtimestamp(clock[0], UTC))
        assert record.outcome == "applied" and "budget x0.333" in record.outcome_detail
        assert await buffer.alerts.open_items() == []
        # Normal, then far out again: a candidate, silenced. (After one 25-sigma reading its
        # tails are heavier: 45 again is no longer a candidate at a third of the budget, and
        # the step back to normal ends the excursion rather than being one.)
        await agent.process(feed.event(*_normal(12, 8), 300.0, 310.0))
        assert await buffer.alerts.open_items() == [], "silenced for false_alarm_suppress_s"
        assert agent.detection.session.drain_candidate_counts().get("rejected_false_alarm_feedback", 0) >= 1
        await agent.stop()

        status = await build_status(buffer, mqtt_connected=None, central="not configured")
        [entry] = status.detection_feedback
        assert (entry.sensor_id, entry.detector, entry.false_alarms) == (SENSOR, "outlier", 1)
        assert entry.budget_factor == 0.3333 and entry.suppressed_until is not None
        assert "false alarms  : outlier on pump-1/temp: 1, sensor budget x0.3333" in render(status)

        restarted = _agent(buffer, clock, max_=500.0)  # the book survives a restart
        await restarted.start()
        assert restarted.feedback.suppressed(SENSOR, "outlier", clock[0])
        clock[0] += 3601  # the span is over: the condition alerts again
        await restarted.process(feed.event(*_normal(12, 9), 300.0))
        [again] = await buffer.alerts.open_items()
        assert again.alert_id != alert.alert_id and again.detector == "outlier"
        closed = await buffer.alerts.get(alert.alert_id)
        assert closed is not None
        undone = await restarted.decide(_decision("undo_false_alarm", alert.alert_id, "d-undo-1"),
                                        datetime.fromtimestamp(clock[0], UTC))
        assert "feedback undone" in undone.outcome_detail
        assert restarted.feedback.budget_factor(SENSOR) == 1.0
        await restarted.stop()
        status = await build_status(buffer, mqtt_connected=None, central="not configured")
        assert status.detection_feedback == []


async def test_a_false_alarm_on_a_datasheet_limit_silences_nothing(tmp_path: Path) -> None:
    clock = [T0 + 100]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock)
        await agent.start()
        await agent.process(feed.event(20.0, 21.0, 60.0))  # beyond the datasheet max
        [alert] = await buffer.alerts.open_items()
        assert alert.detector == "limits"
        record = await agent.decide(_decision("false_alarm", alert.alert_id, "d-fa-1"),
                                    datetime.fromtimestamp(clock[0], UTC))
        assert record.outcome == "applied" and "datasheet limit always alerts" in record.outcome_detail
        await agent.process(feed.event(*[20.0] * 12, 61.0))  # normal, then beyond max again
        [again] = await buffer.alerts.open_items()
        assert again.detector == "limits" and again.alert_id != alert.alert_id
        assert agent.feedback.views() == []
        assert agent.detection.session.drain_candidate_counts().get("rejected_false_alarm_feedback", 0) == 0
        await agent.stop()


async def test_an_older_books_entry_for_a_datasheet_limit_is_dropped(tmp_path: Path) -> None:
    clock = [T0 + 100]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        await buffer.meta.set_json(FEEDBACK_KEY, [{
            "sensor_id": SENSOR, "detector": "limits", "false_alarms": 1,
            "suppressed_until": T0 + 86_400, "decisions": ["d-old"]}])
        agent = _agent(buffer, clock)
        await agent.start()
        await agent.process(feed.event(20.0, 61.0))
        [alert] = await buffer.alerts.open_items()
        assert alert.detector == "limits"
        await agent.stop()


async def test_undoing_one_false_alarm_leaves_anothers_suppression_in_force(tmp_path: Path) -> None:
    clock = [T0 + 1000]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock, max_=500.0)
        await agent.start()
        await _learned(agent, feed)
        await agent.process(feed.event(45.0))
        [first] = await buffer.alerts.open_items()
        await agent.decide(_decision("false_alarm", first.alert_id, "d-fa-1"),
                           datetime.fromtimestamp(clock[0], UTC))
        clock[0] += 3601  # the first span is over; the condition comes back and is called
        await agent.process(feed.event(*_normal(12, 8), 300.0))  # a false alarm again
        [second] = await buffer.alerts.open_items()
        await agent.decide(_decision("false_alarm", second.alert_id, "d-fa-2"),
                           datetime.fromtimestamp(clock[0], UTC))
        clock[0] += 60
        undone = await agent.decide(_decision("undo_false_alarm", first.alert_id, "d-undo-1"),
                                    datetime.fromtimestamp(clock[0], UTC))
        assert "1 false alarm(s)" in undone.outcome_detail
        assert agent.feedback.suppressed(SENSOR, "outlier", clock[0]), "d-fa-2 still holds"
        assert agent.feedback.budget_factor(SENSOR) == pytest.approx(1 / 3)
        await agent.process(feed.event(*_normal(12, 9), 300.0))
        assert await buffer.alerts.open_items() == [], "still silenced by the second decision"
        await agent.stop()

        restarted = _agent(buffer, clock, max_=500.0)  # per decision, across a restart too
        await restarted.start()
        assert restarted.feedback.suppressed(SENSOR, "outlier", clock[0])
        await restarted.decide(_decision("undo_false_alarm", second.alert_id, "d-undo-2"),
                               datetime.fromtimestamp(clock[0], UTC))
        assert not restarted.feedback.suppressed(SENSOR, "outlier", clock[0])
        assert restarted.feedback.views() == []
        await restarted.stop()


def test_an_older_books_single_span_is_read_as_each_decisions_span() -> None:
    book = FeedbackBook(3600)
    book.load([{"sensor_id": SENSOR, "detector": "drift", "false_alarms": 2,
                "suppressed_until": T0 + 3600, "decisions": ["d-1", "d-2"]}])
    book.undo(SENSOR, "drift", "d-1")
    assert book.suppressed(SENSOR, "drift", T0) and book.sensitivity_factor(SENSOR, "drift") == STEP


def test_a_false_alarm_on_silence_keeps_that_sensors_silence_quiet() -> None:
    """Silence is judged by the clock, not by a reading: the suppression must hold there too
    (a silence alert called a false alarm opened again at the next pause: review F2)."""
    from edge.detection.engine import DetectionEngine

    opened = {}
    for suppressed in (False, True):
        engine = DetectionEngine("gw")
        engine.suppressed = lambda sensor, detector, s=suppressed: s and detector == "silence"
        for k in range(300):
            engine.observe("motor-1/temp", "motor-1", T0 + k, 20.0 + (k % 7) * 0.1, T0 + k)
        changes = engine.tick(T0 + 299 + 60)
        opened[suppressed] = [c.alert.detector for c in changes if c.change == "open"]
    assert opened == {False: ["silence"], True: []}


async def test_a_resolved_alert_of_a_learned_detector_can_still_be_called_a_false_alarm(
    tmp_path: Path,
) -> None:
    """A learned detector's alert often resolves before anyone reaches it; false_alarm was
    refused then, so the detector never learned (review F4). It stays resolved, gets the
    label, and the feedback applies; a datasheet limit's resolved alert takes no label."""
    clock = [T0 + 1000]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock, max_=500.0)
        await agent.start()
        await _learned(agent, feed)
        await agent.process(feed.event(45.0))
        [alert] = await buffer.alerts.open_items()
        await agent.process(feed.event(*_normal(30, 8)))
        resolved = await buffer.alerts.get(alert.alert_id)
        assert resolved is not None and resolved.state == "resolved"
        record = await agent.decide(_decision("false_alarm", alert.alert_id, "d-late"),
                                    datetime.fromtimestamp(clock[0], UTC))
        assert record.outcome == "applied" and "budget x0.333" in record.outcome_detail
        labelled = await buffer.alerts.get(alert.alert_id)
        assert labelled is not None and labelled.state == "resolved"
        assert labelled.details["false_alarm"]["decision_id"] == "d-late"
        assert agent.feedback.suppressed(SENSOR, "outlier", clock[0])
        await agent.process(feed.event(600.0))  # beyond the datasheet limit (500)
        [limit] = [a for a in await buffer.alerts.open_items() if a.detector == "limits"]
        await agent.process(feed.event(*_normal(30, 9)))
        from edge.maintenance.alerts import allowed_actions
        limit_now = await buffer.alerts.get(limit.alert_id)
        assert limit_now is not None and limit_now.state == "resolved"
        assert allowed_actions(limit_now) == ()
        await agent.stop()


async def test_a_close_holds_across_a_restart_while_the_condition_lasts(tmp_path: Path) -> None:
    """The mute of a closed condition lived in memory only: every restart reopened what an
    operator had closed (review F3). It comes back from the buffer and lifts once normal."""
    clock = [T0 + 1000]
    feed = Feed()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock)  # datasheet max 50
        await agent.start()
        await agent.process(feed.event(60.0, 61.0))
        [alert] = await buffer.alerts.open_items()
        await agent.decide(DecisionRequest(target_kind="alert", target_id=alert.alert_id,
                                           action="close", actor="jane", note="known"),
                           datetime.fromtimestamp(clock[0], UTC))
        await agent.stop()
        restarted = _agent(buffer, clock)
        await restarted.start()
        await restarted.process(feed.event(62.0, 63.0))
        assert await buffer.alerts.open_items() == [], "closed while the condition lasts"
        await restarted.process(feed.event(*_normal(12), 64.0))
        [again] = await buffer.alerts.open_items()
        assert again.alert_id != alert.alert_id, "normal again, then a new fault: a new alert"
        await restarted.stop()
