"""A decision id is an idempotency key: the same decision again changes nothing, the same
id for a different decision is a conflict (refused, counted, never applied). The real
decision service and SQLite decision log; HTTP answers it with 409."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.maintenance.decisions import DecisionParams, DecisionRequest, decision_record
from edge.metrics import GatewayMetrics
from edge.operator.service import DecisionService
from edge.records import DecisionRecord
from edge.settings import BufferSettings
from tests.unit.test_http_boundary import OPERATOR, FakeApi, api, client

__all__ = ["api", "client"]  # the HTTP fixtures


class TaskDecider:
    """Stands in for the scheduler: applies every decision and stores it."""

    def __init__(self, buffer: SqliteBuffer) -> None:
        self.buffer = buffer
        self.applied: list[DecisionRequest] = []

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        self.applied.append(request)
        record = decision_record(request, received_at, "applied", "task open -> acknowledged")
        await self.buffer.decisions.append(record)
        return record


def _request(decision_id: str, action: str = "acknowledge", target: str = "t1",
             actor: str = "jane", **params: object) -> DecisionRequest:
    return DecisionRequest(decision_id=decision_id, target_kind="task", target_id=target,
                           action=action, actor=actor, origin="http",
                           params=DecisionParams(**params))  # type: ignore[arg-type]


async def test_the_same_id_for_another_decision_is_a_counted_conflict_never_applied(
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        decider = TaskDecider(buffer)
        service = DecisionService({"task": decider}, buffer.decisions, EventBus(metrics), metrics)
        first = await service.submit(_request("d-1"))
        assert first.status == "applied"
        again = await service.submit(_request("d-1", actor="jane on the tablet"))
        assert again.status == "duplicate" and again.record == first.record
        for other in (_request("d-1", action="cancel"), _request("d-1", target="t2"),
                      _request("d-1", action="assign", assignee="bob")):
            result = await service.submit(other)
            assert result.status == "conflict", other
            assert result.record.outcome == "rejected"
            assert "already used for acknowledge on task t1" in result.record.outcome_detail
        assert [r.decision_id for r in decider.applied] == ["d-1"], "applied once, no more"
        stored = await buffer.decisions.get("d-1")
        assert stored == first.record, "the first decision stays as it was"
    conflicts = metrics.decisions.labels("http", "conflict")._value.get()
    assert conflicts == 3


async def test_a_conflict_answers_409_with_what_the_id_was_used_for(
    client: httpx.AsyncClient, api: FakeApi,
) -> None:
    api.status_of = "conflict"
    response = await client.post("/api/v1/tasks/t1/decisions", headers=OPERATOR, json={
        "decision_id": "d-1", "action": "cancel", "actor": "jane"})
    assert response.status_code == 409
    assert response.json()["status"] == "conflict"
