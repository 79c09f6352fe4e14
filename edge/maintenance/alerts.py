"""What operators can decide about an alert, as pure code.

- acknowledge: someone has seen it (`details.acknowledged`); it stays open.
- snooze: no escalation and no repeated notification until `params.until`; it stays open.
- close: an operator ends it; the detector does not open the same condition again until
  the sensor has been normal (the alert life cycle's resolve rule), so it does not flap.
- false_alarm: closes it like `close`, and feeds back into detection (feedback.py).
- undo_false_alarm: takes that feedback back (the alert stays closed).
Resolved and closed alerts take only undo_false_alarm (after a false alarm).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.maintenance.decisions import DecisionRequest, Rejection
from edge.records import LEARNED_DETECTORS, AlertRecord

_OPEN_ACTIONS = ("acknowledge", "snooze", "close", "false_alarm")
ALERT_STATES = ("open", "resolved", "closed")
# What the list filters (HTTP `state=`, the CLI's --state) select: a state, or `active`, the
# alerts still to be dealt with. Acknowledged and snoozed alerts stay `open` (the decision
# is in their details), so `active` is every open one, acknowledged and snoozed included.
ALERT_FILTERS: dict[str, tuple[str, ...]] = {**{state: (state,) for state in ALERT_STATES},
                                            "active": ("open",)}


def allowed_actions(alert: AlertRecord) -> tuple[str, ...]:
    if alert.state == "open":
        return _OPEN_ACTIONS
    false_alarm = alert.details.get("false_alarm")
    if false_alarm:
        return ("undo_false_alarm",) if "undone" not in false_alarm else ()
    # A learned detector's alert often resolves on its own before anyone walks to it: calling
    # it a false alarm afterwards is a label about the past, and still teaches the detector.
    return ("false_alarm",) if alert.state == "resolved" and \
        alert.detector in LEARNED_DETECTORS else ()


def decide(alert: AlertRecord, request: DecisionRequest, now: datetime) -> AlertRecord:
    """The alert's next version after `request`, or Rejection with what is allowed."""
    allowed = allowed_actions(alert)
    if request.action not in allowed:
        raise Rejection(f"a {alert.state} alert does not allow {request.action!r}", allowed)
    stamp = max(now, alert.updated_at)
    who = {"by": request.actor, "at": _iso(now), "origin": request.origin,
           "decision_id": request.decision_id, "note": request.note}
    details: dict[str, Any] = dict(alert.details)
    changes: dict[str, Any] = {"updated_at": stamp}
    if request.action == "acknowledge":
        details["acknowledged"] = who
    elif request.action == "snooze":
        assert request.params.until is not None
        details["snoozed_until"] = _iso(request.params.until)
        details["snoozed"] = who
    elif request.action in ("close", "false_alarm"):
        if alert.state == "open":  # a resolved alert stays resolved: only the label is added
            changes.update(state="closed", resolved_at=stamp)
            details["closed"] = {**who, "reason": request.params.reason or request.note}
        if request.action == "false_alarm":
            details["false_alarm"] = {**who, "reason": request.params.reason or request.note}
    else:  # undo_false_alarm
        details["false_alarm"] = {**details["false_alarm"], "undone": who}
    changes["details"] = details
    return alert.model_copy(update=changes)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
