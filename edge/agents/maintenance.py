"""MaintenanceSchedulerAgent: turns alerts into maintenance tasks.

Consumes: `AnomalyDetectedEvent`.
Publishes: `MaintenanceTaskCreatedEvent` when a task is created, updated or escalated; the
task version is written to the buffer first (and synced from there).
Config: `maintenance.*` (priority matrix, due dates, escalation, causes), `assets.<id>.criticality`.

Rules: the priority comes from alert severity x asset criticality; there is one open task
per asset and cause (a further alert updates it, never duplicates it); a task whose alert
stays open beyond `escalate_after_s` is raised one priority step (again after each further
span). Creation, due dates and escalation follow the gateway's clock; the alert keeps the
reading time as evidence (`details.first_alert_at`). Task ids derive from (gateway, asset,
cause, opening time of the first alert), so a replay finds the same task. Open tasks are
restored from the buffer after a restart.

Retry policy: retried (3 attempts), because `process` is idempotent under retry: the agent's
view of open tasks changes only after the task version is in the buffer, so a retry after a
failed write derives the same change again.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from edge.metrics import GatewayMetrics
from edge.records import TaskRecord
from edge.settings import PRIORITIES, AssetSettings, MaintenanceSettings, Priority

log = logging.getLogger(__name__)

TaskChange = Literal["created", "updated", "escalated"]


class TaskLog(Protocol):
    """The buffer's task log, as this agent sees it."""

    async def append(self, items: Sequence[TaskRecord]) -> None: ...

    async def open_items(self) -> list[TaskRecord]: ...


def task_id(gateway_id: str, asset_key: str, cause: str, first_alert_opened_at: datetime) -> str:
    stamp = round(first_alert_opened_at.timestamp() * 1_000_000)
    return hashlib.sha256(f"{gateway_id}|{asset_key}|{cause}|{stamp}".encode()).hexdigest()[:24]


def _raised(priority: Priority) -> Priority:
    return PRIORITIES[min(PRIORITIES.index(priority) + 1, len(PRIORITIES) - 1)]


class MaintenanceSchedulerAgent(BaseAgent):
    subscriptions = (AnomalyDetectedEvent,)
    max_attempts = 3
    capabilities = ("task_from_alert", "priority_matrix", "deduplicate_by_asset_and_cause",
                    "escalation")

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: MaintenanceSettings,
                 assets: dict[str, AssetSettings], store: TaskLog,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._gateway_id = gateway_id
        self._settings = settings
        self._assets = assets
        self._store = store
        self._clock = clock
        self._open: dict[tuple[str, str], TaskRecord] = {}
        self._lock = asyncio.Lock()  # the bus worker and the escalation clock take turns
        self._escalation_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for task in await self._store.open_items():
            self._open[(task.details.get("asset_key", task.asset_id or ""), task.cause)] = task
        self._metrics.tasks_open.set(len(self._open))
        await super().start()
        self._escalation_task = asyncio.create_task(self._watch_escalations(), name="escalations")

    async def stop(self) -> None:
        if self._escalation_task is not None:
            self._escalation_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._escalation_task
        await super().stop()

    async def process(self, event: BaseEventModel) -> None:
        if isinstance(event, AnomalyDetectedEvent):
            async with self._lock:
                await self._on_alert(event)

    async def _on_alert(self, item: AnomalyDetectedEvent) -> None:
        cause = self._settings.causes.get(item.detector, item.detector)
        asset_key = item.asset_id or f"sensor:{item.sensor_id}"
        current = self._open.get((asset_key, cause))
        if item.state == "resolved":
            if current is not None and item.alert_id in current.details.get("open_alert_ids", []):
                open_ids = [a for a in current.details["open_alert_ids"] if a != item.alert_id]
                await self._save(current, "updated", {"details": {**current.details,
                                                                 "open_alert_ids": open_ids}})
            return
        if SEVERITY_RANK[item.severity] < SEVERITY_RANK[self._settings.min_severity]:
            return
        priority = self._priority(item)
        if current is None:
            await self._save(self._new_task(item, asset_key, cause, priority), "created", {})
            return
        changes: dict[str, Any] = {}
        if PRIORITIES.index(priority) > PRIORITIES.index(current.priority):
            changes["priority"] = priority
        if item.alert_id not in current.alert_ids:
            changes["alert_ids"] = [*current.alert_ids, item.alert_id]
        open_ids = current.details.get("open_alert_ids", [])
        if item.alert_id not in open_ids:
            changes["details"] = {**current.details, "open_alert_ids": [*open_ids, item.alert_id]}
        if changes:
            await self._save(current, "updated", changes)

    async def check_escalations(self) -> None:
        async with self._lock:
            await self._escalate_due()

    async def _escalate_due(self) -> None:
        now = self._clock()
        span_s = self._settings.escalate_after_s
        for task in list(self._open.values()):
            escalations = int(task.details.get("escalations", 0))
            if not task.details.get("open_alert_ids") or task.priority == "urgent":
                continue
            if now - task.created_at.timestamp() < span_s * (escalations + 1):
                continue
            priority = _raised(task.priority)
            due = datetime.fromtimestamp(now + self._settings.due_after_s[priority], UTC)
            await self._save(task, "escalated", {
                "priority": priority, "due_at": min(task.due_at or due, due),
                "details": {**task.details, "escalations": escalations + 1}})
            log.warning("task escalated", extra={"task_id": task.task_id, "priority": priority})

    def _priority(self, alert: AnomalyDetectedEvent) -> Priority:
        asset = self._assets.get(alert.asset_id or "")
        criticality = asset.criticality if asset is not None else "medium"
        return self._settings.priorities[alert.severity][criticality]

    def _new_task(self, alert: AnomalyDetectedEvent, asset_key: str, cause: str,
                  priority: Priority) -> TaskRecord:
        # Task times are the gateway's (a PLC clock that is off must not make a task due in
        # 1970); the id still derives from the alert, so a replay finds the same task.
        created = datetime.fromtimestamp(self._clock(), UTC)
        return TaskRecord(
            task_id=task_id(self._gateway_id, asset_key, cause, alert.opened_at),
            asset_id=alert.asset_id,
            cause=cause, priority=priority, state="open",
            description=f"Inspect {alert.asset_id or alert.sensor_id}: {cause.replace('_', ' ')} "
                        f"on {alert.sensor_id} ({alert.reason})",
            alert_ids=[alert.alert_id],
            details={"asset_key": asset_key, "open_alert_ids": [alert.alert_id], "escalations": 0,
                     "first_alert_at": alert.opened_at.isoformat().replace("+00:00", "Z")},
            due_at=created + timedelta(seconds=self._settings.due_after_s[priority]),
            created_at=created, updated_at=created)

    async def _save(self, task: TaskRecord, change: TaskChange, updates: dict[str, Any]) -> None:
        if updates:
            stamp = max(datetime.fromtimestamp(self._clock(), UTC), task.updated_at)
            task = task.model_copy(update={**updates, "updated_at": stamp})
        await self._store.append([task])
        self._open[(task.details.get("asset_key", task.asset_id or ""), task.cause)] = task
        self._metrics.tasks_open.set(len(self._open))
        if change == "created":
            log.warning("maintenance task created", extra={"task_id": task.task_id,
                                                           "priority": task.priority,
                                                           "asset_id": task.asset_id})
        await self._publish(MaintenanceTaskCreatedEvent(
            source=self.agent_id, task_id=task.task_id, asset_id=task.asset_id, cause=task.cause,
            priority=task.priority, due_at=task.due_at or task.created_at,
            alert_ids=tuple(task.alert_ids), description=task.description,
            change=change))

    async def _watch_escalations(self) -> None:
        while True:
            await asyncio.sleep(self._settings.check_interval_s)
            try:
                await self.check_escalations()
            except Exception:  # retried next tick
                log.exception("escalation check failed")
