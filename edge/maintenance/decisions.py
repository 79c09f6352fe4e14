"""Operator decisions (the HumanDecision event of the seed architecture).

A decision is an immutable record: who decided what about which alert or task, when, from
where, and what came of it. The same `decision_id` applied twice changes nothing: the
second time answers with the first outcome. HTTP, MQTT commands and decisions made in the
central database all arrive as a `DecisionRequest` and go through one code path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TargetKind = Literal["alert", "task"]
Origin = Literal["gateway", "http", "mqtt", "central", "cli"]
Outcome = Literal["applied", "rejected"]

ALERT_ACTIONS = ("acknowledge", "snooze", "close", "false_alarm", "undo_false_alarm")
TASK_ACTIONS = ("acknowledge", "assign", "start", "complete", "cancel")
ACTIONS: dict[str, tuple[str, ...]] = {"alert": ALERT_ACTIONS, "task": TASK_ACTIONS}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"


class DecisionParams(BaseModel):
    """What some actions need: `snooze` an end, `assign` someone, `complete` what was done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    until: datetime | None = Field(default=None, description="snooze: until when (with offset).")
    assignee: str | None = Field(default=None, max_length=128, description="assign: who.")
    reason: str | None = Field(default=None, max_length=500,
                               description="false_alarm, cancel, close: why.")
    fault_found: bool | None = Field(
        default=None, description="complete: true keeps the case as a labelled fault.")
    parts: list[str] = Field(default_factory=list, max_length=50,
                             description="complete: parts used.")
    labour_h: float | None = Field(default=None, ge=0, le=10_000,
                                   description="complete: hours of work.")


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


class DecisionRecord(BaseModel):
    """A decision and what came of it: buffered, synced to maintenance_decisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str
    target_kind: TargetKind
    target_id: str
    action: str
    actor: str
    note: str
    params: dict[str, Any]
    origin: Origin
    decided_at: datetime
    received_at: datetime
    outcome: Outcome
    outcome_detail: str
    allowed_actions: list[str] = Field(default_factory=list,
                                       description="What the target allowed (when rejected).")


class Rejection(Exception):
    """A decision the target's state does not allow; `allowed` says what it does allow."""

    def __init__(self, detail: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.allowed = allowed


class UnknownTarget(Exception):
    """No alert or task with that id."""
