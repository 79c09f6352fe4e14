"""DecisionPuller: decisions made centrally reach the gateway they are for.

An engineer (or a central app) inserts a row into maintenance_decisions with this gateway's
id; the syncer pulls the rows whose outcome is still NULL, hands each to the gateway's one
decision path (`DecisionSink`, the same as HTTP and MQTT commands), and writes the outcome
back. Selecting by `outcome IS NULL` instead of a sequence cursor means a row that commits
late is still found. Applying is idempotent by decision id, so a crash between applying and
writing the outcome back only re-applies it as a duplicate (same outcome, no change). A
decision made at the gateway arrives centrally with its outcome set, so it is never pulled.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

import orjson
from pydantic import ValidationError

from cloud_sync.writer import CentralDecision, CentralWriter
from edge.maintenance.decisions import DecisionRequest, first_error
from edge.metrics import GatewayMetrics
from edge.records import DecisionRecord

log = logging.getLogger(__name__)
_BATCH = 100


class DecisionSink(Protocol):
    """The gateway's one decision path."""

    async def decide(self, request: DecisionRequest) -> DecisionRecord: ...


class DecisionPuller:
    def __init__(self, sink: DecisionSink, metrics: GatewayMetrics) -> None:
        self._sink = sink
        self._metrics = metrics

    async def pull(self, writer: CentralWriter) -> int:
        """Apply the pending central decisions; how many were settled."""
        pending = await writer.pending_decisions(_BATCH)
        for row in pending:
            record = await self._apply(row)  # counted where it is decided, once
            await writer.settle_decision(record)
        return len(pending)

    async def _apply(self, row: CentralDecision) -> DecisionRecord:
        try:
            params = orjson.loads(row.params) if isinstance(row.params, str | bytes) else row.params
            request = DecisionRequest(
                decision_id=row.decision_id, target_kind=row.target_kind,
                target_id=row.target_id, action=row.action, actor=row.actor, note=row.note or "",
                params=params or {}, decided_at=row.decided_at, origin="central")
        except (ValidationError, orjson.JSONDecodeError) as exc:
            detail = first_error(exc)
            log.warning("central decision is malformed; rejected",
                        extra={"decision_id": row.decision_id, "error": detail})
            self._metrics.decisions.labels("central", "rejected").inc()
            now = datetime.now(UTC)
            return DecisionRecord(
                decision_id=row.decision_id, target_kind="task" if row.target_kind != "alert"
                else "alert", target_id=row.target_id[:128], action=row.action[:64],
                actor=row.actor[:128], note="", params={}, origin="central",
                decided_at=row.decided_at, received_at=now, outcome="rejected",
                outcome_detail=f"malformed: {detail}")
        return await self._sink.decide(request)

