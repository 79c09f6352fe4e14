"""MaintenanceSchedulerAgent: turns alerts into maintenance tasks and runs their life cycle.

Consumes: `AnomalyDetectedEvent`; operator decisions through `decide` (the decision service).
Publishes: `MaintenanceTaskCreatedEvent` when a task is created, updated, escalated, decided
or recovered; the task version is written to the buffer first (and synced from there).
Config: `maintenance.*` (priority matrix, due dates, escalation, causes, recovery),
`assets.<id>.criticality`.

Rules: the priority comes from alert severity x asset criticality; there is one open task
per asset and cause (a further alert updates it, never duplicates it). A done or cancelled
task is final: no alert merges into it, and an alert it held that is still open (the
operator completed the work while the sensor was still abnormal) neither reopens it nor
joins another task: its updates are that settled case. A new opening after it gets a new
task. A task whose alert stays open beyond `escalate_after_s` is
raised one priority step (again after each further span), unless its open alerts are all
snoozed. A forecast makes its task due before the earliest predicted crossing (less the
forecast's age and a margin: `_forecast_due`).
States follow edge/maintenance/tasks.py: operators acknowledge, assign, start,
complete and cancel; a task whose alerts all resolved and stayed quiet for
`recovery_quiet_s` is done by recovery (`close_on_recovery`). Creation, due dates, escalation
and every transition follow the gateway's clock; the alert keeps the reading time as
evidence (`details.first_alert_at`). Task ids derive from (gateway, asset, cause, opening
time of the first alert), so a replay finds the same task. Open tasks are restored from the
buffer after a restart. A task completed with `fault_found` is kept as a labelled example.

Retry policy: retried (3 attempts), because `process` is idempotent under retry: the agent's
view of open tasks changes only after the task version is in the buffer, so a retry after a
failed write derives the same change again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from edge.agents.base import BaseAgent
from edge.bus import EventBus
from edge.detection.finding import SEVERITY_RANK
from edge.events import AnomalyDetectedEvent, BaseEventModel, MaintenanceTaskCreatedEvent
from edge.maintenance import tasks as task_rules
from edge.maintenance.decisions import DecisionRequest, Rejection, UnknownTarget, decision_record
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, DecisionRecord, LabelRecord, TaskRecord
from edge.settings import PRIORITIES, AssetSettings, MaintenanceSettings, Priority
from edge.times import as_utc

log = logging.getLogger(__name__)

TaskChange = Literal["created", "updated", "escalated", "decided", "recovered"]
# A forecast's task is due this long before the early end of the predicted interval: a tenth
# of the time left, at least five minutes (and never before now).
FORECAST_MARGIN_SHARE = 0.1
FORECAST_MARGIN_S = 300.0


class TaskLog(Protocol):
    """The buffer's task log, as this agent sees it."""

    async def append(self, items: Sequence[TaskRecord], decision: DecisionRecord | None = None,
                     labels: Sequence[LabelRecord] = ()) -> None: ...

    async def open_items(self) -> list[TaskRecord]: ...

    async def get(self, item_id: str) -> TaskRecord | None: ...

    async def holding_alert(self, alert_id: str) -> list[TaskRecord]: ...


def task_id(gateway_id: str, asset_key: str, cause: str, first_alert_opened_at: datetime,
            salt: str = "") -> str:
    stamp = round(first_alert_opened_at.timestamp() * 1_000_000)
    key = f"{gateway_id}|{asset_key}|{cause}|{stamp}" + (f"|{salt}" if salt else "")
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _raised(priority: Priority) -> Priority:
    return PRIORITIES[min(PRIORITIES.index(priority) + 1, len(PRIORITIES) - 1)]


def _key(task: TaskRecord) -> tuple[str, str]:
    return task.details.get("asset_key", task.asset_id or ""), task.cause


class OpenAlerts(Protocol):
    """The buffer's alert log, as far as the scheduler reads it (snoozes at start)."""

    async def open_items(self) -> list[AlertRecord]: ...


class MaintenanceSchedulerAgent(BaseAgent):
    subscriptions = (AnomalyDetectedEvent,)
    max_attempts = 3
    capabilities = ("task_from_alert", "priority_matrix", "deduplicate_by_asset_and_cause",
                    "escalation", "task_life_cycle", "recovery", "fault_labels")

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: MaintenanceSettings,
                 assets: dict[str, AssetSettings], store: TaskLog,
                 alerts: OpenAlerts | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._gateway_id = gateway_id
        self._settings = settings
        self._assets = assets
        self._store = store
        self._alerts = alerts
        self._clock = clock
        self._open: dict[tuple[str, str], TaskRecord] = {}  # tasks not done or cancelled
        self._snoozed: dict[str, datetime] = {}  # alert id -> snoozed until
        # alert id -> the done/cancelled task that holds it (None: looked up, none does);
        # forgotten when the alert resolves or closes.
        self._settled: dict[str, str | None] = {}
        self._lock = asyncio.Lock()  # the bus worker, decisions and the clock take turns

    async def start(self) -> None:
        for task in await self._store.open_items():
            self._open[_key(task)] = task
        if self._alerts is not None:  # snoozes outlive a restart: they are in the alerts
            for alert in await self._alerts.open_items():
                until = alert.details.get("snoozed_until")
                if isinstance(until, str):
                    self._snoozed[alert.alert_id] = as_utc(datetime.fromisoformat(until))
        self._metrics.tasks_open.set(len(self._open))
        await super().start()
        self._tick_every(self._settings.check_interval_s, self.check_escalations)

    async def stop(self) -> None:
        await self._stop_ticking()
        await super().stop()

    async def process(self, event: BaseEventModel) -> None:
        if isinstance(event, AnomalyDetectedEvent):
            async with self._lock:
                await self._on_alert(event)

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        """Apply an operator's decision about a task; stored with the task's new version.

        Raises UnknownTarget, or Rejection (with the allowed actions) for an illegal
        transition: the task's state machine decides, whoever asked.
        """
        async with self._lock:
            current = next((t for t in self._open.values() if t.task_id == request.target_id),
                           None) or await self._store.get(request.target_id)
            if current is None:
                raise UnknownTarget(f"no task {request.target_id!r}")
            updated = task_rules.decide(current, request, received_at)  # may raise Rejection
            record = decision_record(request, received_at, "applied",
                                     f"task {current.state} -> {updated.state}")
            labels = [self._label(updated, request, received_at)] \
                if request.params.fault_found and updated.state == "done" else []
            await self._save(updated, "decided", decision=record, labels=labels)
            return record

    async def check_escalations(self) -> None:
        async with self._lock:
            await self._escalate_due()
            await self._recover_quiet()

    async def _on_alert(self, item: AnomalyDetectedEvent) -> None:
        cause = self._settings.causes.get(item.detector, item.detector)
        asset_key = item.asset_id or f"sensor:{item.sensor_id}"
        current = self._open.get((asset_key, cause))
        if item.snoozed_until is not None:
            self._snoozed[item.alert_id] = item.snoozed_until
        if item.state in ("resolved", "closed"):
            self._snoozed.pop(item.alert_id, None)
            self._settled.pop(item.alert_id, None)
            if current is not None and item.alert_id in current.details.get("open_alert_ids", []):
                await self._save(current, "updated", self._without_alert(
                    current, item.alert_id, recovered=item.state == "resolved"))
            return
        if SEVERITY_RANK[item.severity] < SEVERITY_RANK[self._settings.min_severity]:
            return
        if (current is None or item.alert_id not in current.alert_ids) and \
                await self._settled_task(item.alert_id) is not None:
            return  # its task was completed or cancelled: final, whatever the alert does now
        priority = self._priority(item)
        if current is None:
            await self._save(await self._new_task(item, asset_key, cause, priority), "created")
            return
        changes: dict[str, Any] = {}
        if PRIORITIES.index(priority) > PRIORITIES.index(current.priority):
            changes["priority"] = priority
        due = self._forecast_due(item)
        if due is not None and (current.due_at is None or due < current.due_at):
            changes["due_at"] = due
        if item.alert_id not in current.alert_ids:
            changes["alert_ids"] = [*current.alert_ids, item.alert_id]
        open_ids = current.details.get("open_alert_ids", [])
        if item.alert_id not in open_ids:
            details = {**current.details, "open_alert_ids": [*open_ids, item.alert_id]}
            details.pop("quiet_since", None)
            changes["details"] = details
        if changes:
            await self._save(current, "updated", changes)

    async def _settled_task(self, alert_id: str) -> str | None:
        """The done or cancelled task that holds `alert_id` (None: no such task).

        Known in memory for tasks closed since the start; otherwise looked up in the buffer
        once per alert (after a restart, or for an alert no task has held)."""
        if alert_id not in self._settled:
            holders = await self._store.holding_alert(alert_id)
            self._settled[alert_id] = next(
                (t.task_id for t in holders if t.state in task_rules.TERMINAL_STATES), None)
        return self._settled[alert_id]

    def _without_alert(self, task: TaskRecord, alert_id: str, *,
                       recovered: bool) -> dict[str, Any]:
        """The task's details without `alert_id` among its open alerts. An alert a person
        closed (or called a false alarm) did not recover: the condition may go on, so the
        task then waits for a person, never for recovery."""
        open_ids = [a for a in task.details.get("open_alert_ids", []) if a != alert_id]
        details: dict[str, Any] = {**task.details, "open_alert_ids": open_ids}
        if not recovered:
            details["closed_alert_ids"] = [*task.details.get("closed_alert_ids", []), alert_id]
        if not open_ids and not details.get("closed_alert_ids"):
            details["quiet_since"] = self._now().isoformat()  # recovery counts from here
        return {"details": details}

    async def _escalate_due(self) -> None:
        now = self._clock()
        span_s = self._settings.escalate_after_s
        for task in list(self._open.values()):
            escalations = int(task.details.get("escalations", 0))
            open_ids = task.details.get("open_alert_ids", [])
            if not open_ids or task.priority == "urgent" or self._all_snoozed(open_ids, now):
                continue
            if now - task.created_at.timestamp() < span_s * (escalations + 1):
                continue
            priority = _raised(task.priority)
            due = datetime.fromtimestamp(now + self._settings.due_after_s[priority], UTC)
            await self._save(task, "escalated", {
                "priority": priority, "due_at": min(task.due_at or due, due),
                "details": {**task.details, "escalations": escalations + 1}})
            log.warning("task escalated", extra={"task_id": task.task_id, "priority": priority})

    def _all_snoozed(self, alert_ids: list[str], now: float) -> bool:
        return all(a in self._snoozed and self._snoozed[a].timestamp() > now for a in alert_ids)

    async def _recover_quiet(self) -> None:
        """Done by recovery: open or acknowledged tasks whose alerts all resolved long enough."""
        if not self._settings.close_on_recovery:
            return
        now = self._now()
        quiet_s = self._settings.recovery_quiet_s
        for task in list(self._open.values()):
            quiet_since = task.details.get("quiet_since")
            if task.state not in task_rules.RECOVERABLE_STATES \
                    or task.details.get("open_alert_ids") or quiet_since is None:
                continue
            if (now - datetime.fromisoformat(quiet_since)).total_seconds() < quiet_s:
                continue
            # The buffer has the last word: a person's decision is never overwritten.
            latest = await self._store.get(task.task_id) or task
            try:
                recovered = task_rules.recover(latest, now, quiet_s)
            except Rejection as exc:
                log.info("task not closed by recovery", extra={"task_id": task.task_id,
                                                               "reason": exc.detail})
                self._forget_if_final(latest)
                continue
            await self._save(recovered, "recovered")
            log.info("task done by recovery", extra={"task_id": task.task_id})

    def _forget_if_final(self, task: TaskRecord) -> None:
        held = self._open.get(_key(task))
        if task.state in task_rules.TERMINAL_STATES and held is not None \
                and held.task_id == task.task_id:
            del self._open[_key(task)]
            self._metrics.tasks_open.set(len(self._open))

    def _priority(self, alert: AnomalyDetectedEvent) -> Priority:
        asset = self._assets.get(alert.asset_id or "")
        criticality = asset.criticality if asset is not None else "medium"
        return self._settings.priorities[alert.severity][criticality]

    async def _new_task(self, alert: AnomalyDetectedEvent, asset_key: str, cause: str,
                        priority: Priority) -> TaskRecord:
        # Task times are the gateway's (a PLC clock that is off must not make a task due in
        # 1970); the id still derives from the alert, so a replay finds the same task.
        created = self._now()
        new_id = task_id(self._gateway_id, asset_key, cause, alert.opened_at)
        existing = await self._store.get(new_id)
        if existing is not None and existing.state in task_rules.TERMINAL_STATES:
            # Another alert opened at that very time began a task that is closed: never
            # write a new version over a closed task, give this one its own id.
            new_id = task_id(self._gateway_id, asset_key, cause, alert.opened_at, alert.alert_id)
        return TaskRecord(
            task_id=new_id,
            asset_id=alert.asset_id,
            cause=cause, priority=priority, state="open",
            description=f"Inspect {alert.asset_id or alert.sensor_id}: {cause.replace('_', ' ')} "
                        f"on {alert.sensor_id} ({alert.reason})",
            alert_ids=[alert.alert_id],
            details={"asset_key": asset_key, "open_alert_ids": [alert.alert_id], "escalations": 0,
                     "first_alert_at": alert.opened_at.isoformat().replace("+00:00", "Z"),
                     "sensor_ids": [alert.sensor_id]},
            due_at=min(created + timedelta(seconds=self._settings.due_after_s[priority]),
                       self._forecast_due(alert) or datetime.max.replace(tzinfo=UTC)),
            created_at=created, updated_at=created)

    def _forecast_due(self, alert: AnomalyDetectedEvent) -> datetime | None:
        """A forecast's task is due before the crossing can come: the interval's early end
        (`due_within_s`, counted from the forecast's reading time), less the time since that
        reading (a forecast judged late, or caught up after a restart) and a margin, on the
        gateway's clock; never before now (tests/unit/test_task_life_cycle.py)."""
        if alert.due_within_s is None:
            return None
        now = self._now()
        age_s = min(max(0.0, (now - alert.reading_ts).total_seconds()), alert.due_within_s)
        remaining_s = alert.due_within_s - age_s
        margin_s = max(FORECAST_MARGIN_S, FORECAST_MARGIN_SHARE * remaining_s)
        return now + timedelta(seconds=max(0.0, remaining_s - margin_s))

    def _label(self, task: TaskRecord, request: DecisionRequest, now: datetime) -> LabelRecord:
        first = task.details.get("first_alert_at")
        return LabelRecord(
            label_id=f"label-{task.task_id}", asset_id=task.asset_id,
            sensor_ids=list(task.details.get("sensor_ids", [])), cause=task.cause,
            alert_ids=list(task.alert_ids), task_id=task.task_id,
            window_start=datetime.fromisoformat(first) if first else task.created_at,
            window_end=now, note=request.note, decision_id=request.decision_id, created_at=now)

    async def _save(self, task: TaskRecord, change: TaskChange,
                    updates: dict[str, Any] | None = None, *,
                    decision: DecisionRecord | None = None,
                    labels: Sequence[LabelRecord] = ()) -> None:
        if updates:
            stamp = max(self._now(), task.updated_at)
            task = task.model_copy(update={**updates, "updated_at": stamp})
        await self._store.append([task], decision=decision, labels=labels)
        if task.state in task_rules.TERMINAL_STATES:
            for alert_id in task.details.get("open_alert_ids", []):  # forgotten as they resolve
                self._settled[alert_id] = task.task_id
            held = self._open.get(_key(task))
            if held is not None and held.task_id == task.task_id:
                del self._open[_key(task)]
        else:
            self._open[_key(task)] = task
        self._metrics.tasks_open.set(len(self._open))
        if change == "created":
            log.warning("maintenance task created", extra={"task_id": task.task_id,
                                                           "priority": task.priority,
                                                           "asset_id": task.asset_id})
        await self._publish(MaintenanceTaskCreatedEvent(
            source=self.agent_id, task_id=task.task_id, asset_id=task.asset_id, cause=task.cause,
            priority=task.priority, due_at=task.due_at or task.created_at,
            alert_ids=tuple(task.alert_ids), description=task.description,
            change=change, state=task.state))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

