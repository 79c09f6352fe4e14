"""Operator decisions (the HumanDecision event of the seed architecture).

A decision is an immutable record: who decided what about which alert or task, when, from
where, and what came of it. The same `decision_id` applied twice changes nothing: the
second time answers with the first outcome. The same id with other content (another target,
action or params: `same_content`) is a conflict, refused and counted, never taken for a
repeat. HTTP, MQTT commands and decisions made in the central database all arrive as a
`DecisionRequest` and go through one code path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.records import DecisionRecord, Origin, Outcome, TargetKind

ALERT_ACTIONS = ("acknowledge", "snooze", "close", "false_alarm", "undo_false_alarm")
TASK_ACTIONS = ("acknowledge", "assign", "start", "complete", "cancel")
ACTIONS: dict[str, tuple[str, ...]] = {"alert": ALERT_ACTIONS, "task": TASK_ACTIONS}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"


class DecisionParams(BaseModel):
    """What some actions need: `snooze` an end, `assign` someone, `complete` what was done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    until: datetime | None = Field(
        default=None, description="snooze: until when; RFC 3339 with a UTC offset (a time "
                                  "without one is refused).")
    assignee: str | None = Field(default=None, max_length=128, description="assign: who.")
    reason: str | None = Field(default=None, max_length=500,
                               description="false_alarm, cancel, close: why.")
    fault_found: bool | None = Field(
        default=None, description="complete: true keeps the case as a labelled fault.")
    parts: list[str] = Field(default_factory=list, max_length=50,
                             description="complete: parts used.")
    labour_h: float | None = Field(default=None, ge=0, le=10_000,
                                   description="complete: hours of work.")

    @field_validator("assignee", "reason")
    @classmethod
    def _params_storable(cls, text: str | None) -> str | None:
        return _storable(text) if text is not None else None

    @field_validator("parts")
    @classmethod
    def _parts_storable(cls, parts: list[str]) -> list[str]:
        return [_storable(part) for part in parts]

    @field_validator("until")
    @classmethod
    def _until_has_offset(cls, until: datetime | None) -> datetime | None:
        # Refused, not guessed: a wall-clock time without a zone means different instants on
        # the tablet, the gateway and the central server.
        if until is not None and until.tzinfo is None:
            raise ValueError("needs a UTC offset (e.g. 2026-11-27T08:00:00Z or +01:00)")
        return until


class DecisionRequest(BaseModel):
    """A decision as it arrives from any way in, before it is applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=ID_PATTERN,
                             description="Idempotency key: the same id twice changes nothing.")
    target_kind: TargetKind
    target_id: str = Field(pattern=ID_PATTERN)
    action: str
    actor: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)
    params: DecisionParams = DecisionParams()
    decided_at: datetime | None = Field(default=None,
                                        description="When it was decided (default: received).")
    origin: Origin = "gateway"

    @field_validator("actor", "note")
    @classmethod
    def _text_storable(cls, text: str) -> str:
        return _storable(text)

    @model_validator(mode="after")
    def _known_action(self) -> DecisionRequest:
        allowed = ACTIONS[self.target_kind]
        if self.action not in allowed:
            raise ValueError(f"action {self.action!r} is not one of {list(allowed)} for a "
                             f"{self.target_kind}")
        if self.action == "snooze" and self.params.until is None:
            raise ValueError("snooze needs params.until")
        if self.action == "assign" and not self.params.assignee:
            raise ValueError("assign needs params.assignee")
        if self.decided_at is not None and self.decided_at.tzinfo is None:
            raise ValueError("decided_at needs a UTC offset")
        return self


def _storable(text: str) -> str:
    """Text every store can hold: PostgreSQL refuses NUL in text and jsonb."""
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


def decision_record(request: DecisionRequest, received_at: datetime, outcome: Outcome,
                    detail: str, allowed: tuple[str, ...] = ()) -> DecisionRecord:
    """What is stored (and synced) for `request`: applied, or rejected with what is allowed."""
    return DecisionRecord(
        decision_id=request.decision_id, target_kind=request.target_kind,
        target_id=request.target_id, action=request.action, actor=request.actor,
        note=request.note, params=request.params.model_dump(mode="json", exclude_defaults=True),
        origin=request.origin, decided_at=request.decided_at or received_at,
        received_at=received_at, outcome=outcome, outcome_detail=detail,
        allowed_actions=list(allowed))


def same_content(previous: DecisionRecord, request: DecisionRequest) -> bool:
    """Whether `request` repeats `previous` (same target, action and params): a retry.

    Who and the note may differ (a retry from another screen); what it does may not."""
    return (previous.target_kind, previous.target_id, previous.action, previous.params) == (
        request.target_kind, request.target_id, request.action,
        request.params.model_dump(mode="json", exclude_defaults=True))


def conflict_detail(previous: DecisionRecord) -> str:
    return (f"decision id {previous.decision_id!r} was already used for {previous.action} on "
            f"{previous.target_kind} {previous.target_id} (params {previous.params}): use a new "
            "decision id for a different decision")


Status = Literal["applied", "rejected", "unknown_target", "duplicate", "conflict"]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What came of a submitted decision (duplicate: that id was applied before; conflict:
    that id was used for another decision, `record` is this one refused, not stored)."""

    status: Status
    record: DecisionRecord


class Rejection(Exception):
    """A decision the target's state does not allow; `allowed` says what it does allow."""

    def __init__(self, detail: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.allowed = allowed


class UnknownTarget(Exception):
    """No alert or task with that id."""


def first_error(exc: Exception) -> str:
    """A malformed decision's first problem in one line (`params.until: ...`), as MQTT
    responses and central outcome details give it."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
