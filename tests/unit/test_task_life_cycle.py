"""The task life cycle in the scheduler, with a real SQLite buffer: a done or cancelled task
is final (an alert it held that is still open neither reopens it nor joins another task, a
new opening gets a new task), and recovery never overwrites what a person decided."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agents.maintenance import MaintenanceSchedulerAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.events import AnomalyDetectedEvent
from edge.maintenance import tasks as task_rules
from edge.maintenance.decisions import DecisionParams, DecisionRequest, Rejection
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, TaskRecord
from edge.settings import AssetSettings, BufferSettings, MaintenanceSettings

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _alert(alert_id: str, state: str = "open", opened: datetime = T0) -> AnomalyDetectedEvent:
    return AnomalyDetectedEvent(
        source="test", alert_id=alert_id, asset_id="press-1", sensor_id="press-1/pressure",
        detector="limits", severity="critical", score=3.0, value=200.0, reading_ts=opened,
        reason="value 200 is above the critical limit 180", state=state,  # type: ignore[arg-type]
        opened_at=opened)


def _request(task_id: str, action: str, decision_id: str, **params: object) -> DecisionRequest:
    return DecisionRequest(decision_id=decision_id, target_kind="task", target_id=task_id,
                           action=action, actor="jane", note="bearing replaced",
                           params=DecisionParams(**params))  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def _scheduler(buffer: SqliteBuffer, clock: Clock) -> MaintenanceSchedulerAgent:
    metrics = GatewayMetrics()
    return MaintenanceSchedulerAgent(
        "maintenance", EventBus(metrics), metrics, gateway_id="gw",
        settings=MaintenanceSettings(recovery_quiet_s=600),
        assets={"press-1": AssetSettings(criticality="high")}, store=buffer.tasks,
        alerts=buffer.alerts, clock=clock)


async def _versions(buffer: SqliteBuffer, task_id: str) -> int:
    with sqlite3.connect(f"file:{buffer.path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE task_id = ?",
                                (task_id,)).fetchone()[0])


async def test_a_done_task_is_not_reopened_by_its_still_open_alert_and_a_new_opening_gets_a_new_task(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_alert("a1"))
        [task] = await buffer.tasks.open_items()
        clock.now += 60
        await agent.decide(_request(task.task_id, "complete", "d-1", fault_found=True),
                           datetime.fromtimestamp(clock.now, UTC))
        versions = await _versions(buffer, task.task_id)
        clock.now += 60
        await agent.process(_alert("a1", state="updated"))  # the sensor is still abnormal
        assert await buffer.tasks.open_items() == []
        assert await _versions(buffer, task.task_id) == versions, "nothing merged into it"
        await agent.stop()

        restarted = _scheduler(buffer, clock)  # the rule holds after a restart too
        await restarted.start()
        await restarted.process(_alert("a1", state="updated"))
        assert await buffer.tasks.open_items() == []
        clock.now += 60
        await restarted.process(_alert("a2", opened=T0 + timedelta(minutes=3)))  # a new fault
        [new_task] = await buffer.tasks.open_items()
        assert new_task.task_id != task.task_id and new_task.alert_ids == ["a2"]
        await restarted.process(_alert("a1", state="updated"))  # a1 does not join it
        assert (await buffer.tasks.get(new_task.task_id)).alert_ids == ["a2"]  # type: ignore[union-attr]
        done = await buffer.tasks.get(task.task_id)
        assert done is not None and (done.state, done.resolution) == ("done", "fault_found")
        await restarted.stop()


async def test_recovery_never_closes_a_task_that_a_person_completed(tmp_path: Path) -> None:
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_alert("a1"))
        [task] = await buffer.tasks.open_items()
        await agent.decide(_request(task.task_id, "complete", "d-1", fault_found=True),
                           datetime.fromtimestamp(clock.now, UTC))
        await agent.process(_alert("a1", state="updated"))
        await agent.process(_alert("a1", state="resolved"))
        clock.now += 3600
        await agent.check_escalations()
        final = await buffer.tasks.get(task.task_id)
        assert final is not None and (final.state, final.resolution) == ("done", "fault_found")
        assert [h["action"] for h in final.details["history"]] == ["complete"]
        await agent.stop()


async def test_an_alert_a_person_closed_is_no_recovery_the_task_waits_for_a_person(
    tmp_path: Path,
) -> None:
    """Closing an alert (or calling it a false alarm) says "seen, stop nagging", not "it
    recovered": the task was auto-completed as resolved_by_recovery while the fault went on
    (issue 12 review F7). A resolved alert still counts."""
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_alert("a1"))
        await agent.process(_alert("a2"))
        await agent.process(_alert("a1", state="closed"))
        await agent.process(_alert("a2", state="resolved"))
        clock.now += 3600
        await agent.check_escalations()
        [task] = await buffer.tasks.open_items()
        assert task.state == "open" and task.details["closed_alert_ids"] == ["a1"]
        assert "quiet_since" not in task.details
        await agent.stop()


async def test_a_snooze_outlives_a_restart_and_its_task_does_not_escalate(tmp_path: Path) -> None:
    """Snoozes lived only in the scheduler's memory: after a restart the snoozed alert's task
    escalated (issue 12 review F6). They are read back from the open alerts."""
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_alert("a1").model_copy(update={"severity": "warning"}))
        await agent.stop()
        [created] = await buffer.tasks.open_items()
        until = T0 + timedelta(hours=8)
        await buffer.alerts.append([AlertRecord(
            alert_id="a1", asset_id="press-1", sensor_id="press-1/pressure", detector="limits",
            severity="warning", state="open", reason="above", opened_at=T0, updated_at=T0,
            details={"snoozed_until": until.isoformat()})])
        restarted = _scheduler(buffer, clock)
        await restarted.start()
        clock.now += 4 * 3600
        await restarted.check_escalations()
        [task] = await buffer.tasks.open_items()
        assert task.priority == created.priority != "urgent"
        assert not task.details.get("escalations")
        clock.now += 5 * 3600  # the snooze is over: escalation resumes
        await restarted.check_escalations()
        [task] = await buffer.tasks.open_items()
        assert task.details.get("escalations") == 1 and task.priority != created.priority
        await restarted.stop()


async def test_recovery_takes_the_buffers_latest_version_over_what_it_holds(tmp_path: Path) -> None:
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_alert("a1"))
        await agent.process(_alert("a1", state="resolved"))
        [task] = await buffer.tasks.open_items()
        # Cancelled by a person through another writer of the same buffer (the agent's
        # memory is stale): recovery must not write done over it.
        cancelled = task_rules.decide(task, _request(task.task_id, "cancel", "d-9"),
                                      datetime.fromtimestamp(clock.now, UTC))
        await buffer.tasks.append([cancelled])
        clock.now += 3600
        await agent.check_escalations()
        final = await buffer.tasks.get(task.task_id)
        assert final is not None and final.state == "cancelled"
        versions = await _versions(buffer, task.task_id)
        clock.now += 3600
        await agent.check_escalations()  # it let go of the closed task: nothing more
        assert await _versions(buffer, task.task_id) == versions
        await agent.stop()


@pytest.mark.parametrize("state", ["in_progress", "done", "cancelled"])
def test_recover_is_refused_from_any_state_but_open_or_acknowledged(state: str) -> None:
    task = TaskRecord(task_id="t1", asset_id="p", cause="out_of_range", priority="high",
                      state=state, description="x", created_at=T0, updated_at=T0,  # type: ignore[arg-type]
                      resolution="cancelled" if state == "cancelled" else None)
    with pytest.raises(Rejection):
        task_rules.recover(task, T0 + timedelta(hours=1), 600)


def _forecast(alert_id: str, reading_ts: datetime, due_within_s: float,
              state: str = "open") -> AnomalyDetectedEvent:
    return _alert(alert_id, state=state, opened=reading_ts).model_copy(update={
        "detector": "forecast", "severity": "warning", "due_within_s": due_within_s,
        "reason": "predicted to reach max 180 in ~6 h, 80 % interval 4-9 h"})


@pytest.mark.parametrize("late_s", [0.0, 3600.0, 5 * 3600.0])
async def test_a_forecasts_task_is_due_before_the_earliest_crossing_and_never_before_now(
    tmp_path: Path, late_s: float,
) -> None:
    """The crossing may come 4 h after the forecast's reading; the scheduler sees it on
    time, an hour late (a catch-up), or after the crossing could already have come."""
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        clock.now = T0.timestamp() + late_s
        await agent.process(_forecast("f1", T0, 4 * 3600))
        [task] = await buffer.tasks.open_items()
        earliest_crossing = T0 + timedelta(hours=4)
        now = datetime.fromtimestamp(clock.now, UTC)
        assert task.due_at is not None and task.due_at >= now
        if now < earliest_crossing:
            assert task.due_at < earliest_crossing
            assert earliest_crossing - task.due_at >= timedelta(minutes=5), "with a margin"
        else:
            assert task.due_at == now
        await agent.stop()


async def test_an_updated_forecast_brings_the_due_time_forward_never_back(tmp_path: Path) -> None:
    clock = Clock()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _scheduler(buffer, clock)
        await agent.start()
        await agent.process(_forecast("f1", T0, 4 * 3600))
        [first] = await buffer.tasks.open_items()
        clock.now += 600
        sooner = T0 + timedelta(minutes=10)
        await agent.process(_forecast("f1", sooner, 2 * 3600, state="updated"))
        [second] = await buffer.tasks.open_items()
        assert second.due_at is not None and first.due_at is not None
        assert second.due_at < sooner + timedelta(hours=2) and second.due_at < first.due_at
        clock.now += 600
        await agent.process(_forecast("f1", sooner + timedelta(minutes=10), 8 * 3600,
                                      state="updated"))
        [third] = await buffer.tasks.open_items()
        assert third.due_at == second.due_at
        await agent.stop()


def test_a_forecast_event_counts_its_interval_from_the_forecasts_reading_time() -> None:
    from edge.agents.prediction import forecast_event
    from edge.prediction.predictor import Predictor
    from tests.unit.test_predictor import FAST, LIMITS, SENSOR, _run

    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(predictor, 0.0, 2.0, lambda t: 60.0)
    changes = _run(predictor, 7200.0, 1.5, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    [opened] = [c for c in changes if c.change == "open"]
    # A decision stamped later on the gateway's clock must not move what the interval counts from.
    decided = opened.alert.model_copy(update={
        "updated_at": opened.alert.updated_at + timedelta(hours=1)})
    event = forecast_event("prediction", type(opened)("updated", decided))
    assert event.reading_ts == opened.alert.opened_at
    assert event.due_within_s == opened.alert.details["interval_s"][0]


async def test_the_buffers_lists_filter_by_several_states(tmp_path: Path) -> None:
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        for k, state in enumerate(["open", "acknowledged", "in_progress", "done", "cancelled"]):
            await buffer.tasks.append([TaskRecord(
                task_id=f"t{k}", asset_id="p", cause="c", priority="high", state=state,  # type: ignore[arg-type]
                description="x", created_at=T0 + timedelta(seconds=k), updated_at=T0)])
        active = await buffer.tasks.page(task_rules.TASK_FILTERS["active"], 10, None)
        assert [task.task_id for _, task in active] == ["t2", "t1", "t0"]
        assert [t.task_id for t in await buffer.tasks.latest("done")] == ["t3"]
        assert len(await buffer.tasks.latest()) == 5


def test_complete_keeps_every_work_field_given_no_fault_and_zero_hours_included() -> None:
    task = TaskRecord(task_id="t1", asset_id="p", cause="out_of_range", priority="high",
                      state="in_progress", description="x", created_at=T0, updated_at=T0)
    done = task_rules.decide(task, _request("t1", "complete", "d-1", fault_found=False,
                                            labour_h=0.0, parts=["seal"]), T0)
    assert done.resolution == "no_fault_found"
    assert done.details["history"][-1]["work"] == {"parts": ["seal"], "labour_h": 0.0,
                                                   "fault_found": False}


def test_a_tasks_versions_carry_only_its_recent_history() -> None:
    """Each version carried the whole history: 300 decisions with long notes made the buffer
    grow quadratically (issue 12 review F12). The decisions log keeps every decision."""
    from edge.maintenance.tasks import HISTORY_KEPT

    task = TaskRecord(task_id="t1", asset_id="press-1", cause="out_of_range", priority="high",
                      state="open", description="inspect", created_at=T0, updated_at=T0)
    for k in range(HISTORY_KEPT + 15):
        action = "acknowledge" if task.state == "open" else "assign"
        task = task_rules.decide(task, _request("t1", action, f"d-{k}", **(
            {"assignee": f"tech-{k}"} if action == "assign" else {})), T0)
    history = task.details["history"]
    assert len(history) == HISTORY_KEPT and task.details["history_dropped"] == 15
    assert history[-1]["decision_id"] == f"d-{HISTORY_KEPT + 14}"
