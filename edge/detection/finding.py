"""What a detector reports while it sees a problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One abnormal reading (or gap) as a detector judged it."""

    detector: str
    severity: Severity
    score: float
    value: float
    ts: float  # seconds since the epoch: the reading's time (the check time for silence)
    reason: str
    window: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # merged into the alert's details
