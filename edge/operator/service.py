"""DecisionService: the one code path every operator decision takes (HTTP, MQTT, central, CLI).

1. A decision id seen before answers with its first outcome and changes nothing; the same
   id with other content (target, action, params) is refused as a conflict and counted.
2. The agent that owns the target applies it through the target's state machine and
   stores the new version together with the decision (one transaction).
3. An illegal transition or an unknown target is stored as a rejected decision (synced,
   so the rejection is visible centrally) and answered with the allowed actions.
Decisions are applied one at a time, so two ways in cannot race on one target.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from edge.bus import EventBus
from edge.events import HumanDecisionEvent
from edge.maintenance.decisions import (
    DecisionRequest,
    DecisionResult,
    Rejection,
    Status,
    UnknownTarget,
    conflict_detail,
    decision_record,
    same_content,
)
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, DecisionRecord, TargetKind

log = logging.getLogger(__name__)



class Decider(Protocol):
    """The agent that owns a kind of target (alerts: detection; tasks: the scheduler)."""

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord: ...


class AlertLookup(Protocol):
    async def get(self, item_id: str) -> AlertRecord | None: ...


class AlertRouter:
    """Alert decisions go to the agent that raised the alert (forecasts: prediction)."""

    def __init__(self, alerts: AlertLookup, default: Decider | None,
                 by_detector: dict[str, Decider]) -> None:
        self._alerts = alerts
        self._default = default
        self._by_detector = by_detector

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        alert = await self._alerts.get(request.target_id)
        decider = self._by_detector.get(alert.detector, self._default) if alert else self._default
        if decider is None:
            raise UnknownTarget(f"alert {request.target_id!r}: its agent is disabled")
        return await decider.decide(request, received_at)


class DecisionStore(Protocol):
    async def get(self, decision_id: str) -> DecisionRecord | None: ...

    async def append(self, decision: DecisionRecord) -> None: ...


class DecisionService:
    def __init__(self, deciders: dict[TargetKind, Decider], store: DecisionStore, bus: EventBus,
                 metrics: GatewayMetrics, clock: Callable[[], float] = time.time) -> None:
        self._deciders = deciders
        self._store = store
        self._bus = bus
        self._metrics = metrics
        self._clock = clock
        self._lock = asyncio.Lock()

    async def submit(self, request: DecisionRequest) -> DecisionResult:
        """Apply `request` once; what came of it (duplicate: it was applied before)."""
        async with self._lock:
            previous = await self._store.get(request.decision_id)
            if previous is not None:
                return self._repeated(request, previous)
            result = await self._apply(request)
        self._metrics.decisions.labels(request.origin, result.status).inc()
        log.info("decision", extra={"decision_id": request.decision_id, "origin": request.origin,
                                    "target": f"{request.target_kind}:{request.target_id}",
                                    "action": request.action, "actor": request.actor,
                                    "status": result.status})
        await self._bus.publish(HumanDecisionEvent(source="decisions", decision=result.record))
        return result

    def _repeated(self, request: DecisionRequest, previous: DecisionRecord) -> DecisionResult:
        """A decision id seen before: a retry (duplicate), or a conflict if it differs."""
        if same_content(previous, request):
            self._metrics.decisions.labels(request.origin, "duplicate").inc()
            return DecisionResult("duplicate", previous)
        self._metrics.decisions.labels(request.origin, "conflict").inc()
        detail = conflict_detail(previous)
        log.warning("decision id conflict", extra={
            "decision_id": request.decision_id, "origin": request.origin,
            "target": f"{request.target_kind}:{request.target_id}", "action": request.action})
        received_at = datetime.fromtimestamp(self._clock(), UTC)
        return DecisionResult("conflict", decision_record(request, received_at, "rejected", detail))

    async def decide(self, request: DecisionRequest) -> DecisionRecord:
        """The puller's entry (cloud_sync.decisions_pull.DecisionSink)."""
        return (await self.submit(request)).record

    async def _apply(self, request: DecisionRequest) -> DecisionResult:
        received_at = datetime.fromtimestamp(self._clock(), UTC)
        decider = self._deciders.get(request.target_kind)
        try:
            if decider is None:
                raise UnknownTarget(f"no {request.target_kind}s on this gateway (agent disabled)")
            return DecisionResult("applied", await decider.decide(request, received_at))
        except UnknownTarget as exc:
            record = decision_record(request, received_at, "rejected", f"unknown target: {exc}")
            status: Status = "unknown_target"
        except Rejection as exc:
            record = decision_record(request, received_at, "rejected", exc.detail, exc.allowed)
            status = "rejected"
        await self._store.append(record)
        return DecisionResult(status, record)
