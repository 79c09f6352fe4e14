"""Operator decisions over HTTP: POST /api/v1/alerts/{id}/decisions and /api/v1/tasks/{id}/decisions,
and the detail views a person deciding needs (an alert or task with its decisions, a
sensor's recent readings). Decisions need the operator token (edge/http/auth.py).

Answers: 200 applied (or `duplicate`: that decision id was decided before with the same
target, action and params, nothing changed; it answers with the first outcome's code, 409 if
that was rejected); 404 no such alert or task; 409 the target's
state does not allow the action, with the actions it allows, or (`conflict`) that decision
id was used before for a different decision; 422 a malformed decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.http.backend import AlertDetail, GatewayApi, ReadingPoint, StatePoint, TaskDetail
from edge.maintenance.decisions import ACTIONS, DecisionParams, DecisionRequest
from edge.records import DecisionRecord, TargetKind

Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")]
_STATUS_CODES = {"applied": 200, "duplicate": 200, "unknown_target": 404, "rejected": 409,
                 "conflict": 409}


class DecisionBody(BaseModel):
    """A decision as an operator posts it; the target comes from the path."""

    model_config = ConfigDict(extra="forbid")

    decision_id: str | None = Field(default=None, description="Idempotency key (default: new).")
    action: str = Field(description=f"alert: {list(ACTIONS['alert'])}; task: {list(ACTIONS['task'])}")
    actor: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)
    params: DecisionParams = DecisionParams()
    decided_at: datetime | None = None


class DecisionAnswer(BaseModel):
    status: Literal["applied", "duplicate", "unknown_target", "rejected", "conflict"]
    detail: str = Field(description="What came of it, in words (a conflict: what the id "
                                    "was used for).")
    decision: DecisionRecord = Field(description="The decision as stored (duplicate: the "
                                                 "first one; conflict: this one, not stored).")
    allowed_actions: list[str]


# The way in a decision is recorded under: `cli` when `edge-gateway alerts|tasks decide`
# sends it (through this same API), `http` otherwise.
WayIn = Annotated[Literal["http", "cli"], Header(alias="X-Edge-Client")]


def decision_routes(api: GatewayApi) -> APIRouter:
    router = APIRouter(tags=["decisions"])

    async def decide(kind: TargetKind, target_id: str, body: DecisionBody,
                     client: WayIn) -> JSONResponse:
        fields: dict[str, Any] = {k: v for k, v in body.model_dump().items()
                                  if v is not None and k != "params"}
        try:
            request = DecisionRequest(**fields, params=body.params, target_kind=kind,
                                      target_id=target_id, origin=client)
        except ValidationError as exc:
            api.request_rejected("invalid_request", f"/api/v1/{kind}s/{target_id}/decisions")
            error = exc.errors()[0]
            return JSONResponse({"detail": f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
                                 .lstrip(": ")}, status_code=422)
        result = await api.decide(request)
        answer = DecisionAnswer(status=result.status, detail=result.record.outcome_detail,
                                decision=result.record,
                                allowed_actions=result.record.allowed_actions)
        # A retry answers as the first time did: a rejected decision stays a 409 (a client
        # retrying after a timeout must not read "duplicate" as applied).
        code = _STATUS_CODES[result.record.outcome if result.status == "duplicate" else result.status]
        return JSONResponse(answer.model_dump(mode="json"), status_code=code)

    @router.post("/api/v1/alerts/{alert_id}/decisions", response_model=DecisionAnswer,
                 responses={404: {"model": DecisionAnswer}, 409: {"model": DecisionAnswer}})
    async def decide_alert(alert_id: Id, body: DecisionBody, client: WayIn = "http") -> JSONResponse:
        """Acknowledge, snooze (params.until), close, false_alarm (params.reason), undo_false_alarm."""
        return await decide("alert", alert_id, body, client)

    @router.post("/api/v1/tasks/{task_id}/decisions", response_model=DecisionAnswer,
                 responses={404: {"model": DecisionAnswer}, 409: {"model": DecisionAnswer}})
    async def decide_task(task_id: Id, body: DecisionBody, client: WayIn = "http") -> JSONResponse:
        """Acknowledge, assign (params.assignee), start, complete (note, params.fault_found,
        parts, labour_h), cancel."""
        return await decide("task", task_id, body, client)

    @router.get("/api/v1/alerts/{alert_id}", responses={404: {}})
    async def alert(alert_id: Id) -> AlertDetail:
        """One alert with the decisions about it, newest first, and what it allows now."""
        detail = await api.alert_detail(alert_id)
        if detail is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return detail

    @router.get("/api/v1/tasks/{task_id}", responses={404: {}})
    async def task(task_id: Id) -> TaskDetail:
        """One task (its history in details.history) with its decisions and allowed actions."""
        detail = await api.task_detail(task_id)
        if detail is None:
            raise HTTPException(404, f"no task {task_id!r}")
        return detail

    @router.get("/api/v1/sensors/{sensor_id:path}/readings", tags=["maintenance"])
    async def readings(sensor_id: str,
                       minutes: Annotated[float, Query(gt=0, le=7 * 24 * 60)] = 60,
                       until: datetime | None = None,
                       limit: Annotated[int, Query(ge=1, le=5000)] = 2000) -> list[ReadingPoint]:
        """A sensor's readings from the buffer (for the chart around an alert), oldest first."""
        if until is not None and until.tzinfo is None:
            raise HTTPException(422, "until needs a UTC offset (e.g. 2026-11-27T08:00:00Z)")
        return await api.sensor_readings(sensor_id, minutes, until, limit)

    @router.get("/api/v1/sensors/{sensor_id:path}/states", tags=["maintenance"])
    async def states(sensor_id: str,
                     minutes: Annotated[float, Query(gt=0, le=7 * 24 * 60)] = 60,
                     until: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 2000) -> list[StatePoint]:
        """A sensor's states from the buffer (equipment states, booleans, text; null for a
        null value), oldest first: what a mapping or Sparkplug B keeps that is not a number."""
        if until is not None and until.tzinfo is None:
            raise HTTPException(422, "until needs a UTC offset (e.g. 2026-11-27T08:00:00Z)")
        return await api.sensor_states(sensor_id, minutes, until, limit)

    return router
