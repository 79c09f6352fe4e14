"""The task life cycle: open -> acknowledged -> in_progress -> done, or cancelled.

| from \\ action | acknowledge  | assign     | start       | complete | cancel    |
| open          | acknowledged | (same)     | in_progress | done     | cancelled |
| acknowledged  | -            | (same)     | in_progress | done     | cancelled |
| in_progress   | -            | (same)     | -           | done     | cancelled |
| done          | -            | -          | -           | -        | -         |
| cancelled     | -            | -          | -           | -        | -         |

Every transition is a new version, stamped on the gateway's clock, with who and why in
`details.history`. `recover` (not an operator action) closes an open or acknowledged task
whose alerts all resolved and stayed quiet: done, `resolution` resolved_by_recovery. From
any other state it is refused (Rejection), so recovery never overwrites what a person
decided: a task someone started, completed or cancelled stays as they left it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.maintenance.decisions import DecisionRequest, Rejection
from edge.records import TaskRecord

OPEN_STATES = ("open", "acknowledged", "in_progress")
TERMINAL_STATES = ("done", "cancelled")
RECOVERABLE_STATES = ("open", "acknowledged")
TASK_STATES = (*OPEN_STATES, *TERMINAL_STATES)
# What the list filters select: a state, or `active` (open, acknowledged, in_progress).
TASK_FILTERS: dict[str, tuple[str, ...]] = {**{state: (state,) for state in TASK_STATES},
                                           "active": OPEN_STATES}
_NEXT: dict[str, dict[str, str]] = {
    "open": {"acknowledge": "acknowledged", "assign": "open", "start": "in_progress",
             "complete": "done", "cancel": "cancelled"},
    "acknowledged": {"assign": "acknowledged", "start": "in_progress", "complete": "done",
                     "cancel": "cancelled"},
    "in_progress": {"assign": "in_progress", "complete": "done", "cancel": "cancelled"},
    "done": {},
    "cancelled": {},
}


def allowed_actions(state: str) -> tuple[str, ...]:
    return tuple(_NEXT.get(state, {}))


def decide(task: TaskRecord, request: DecisionRequest, now: datetime) -> TaskRecord:
    """The task's next version after `request`, or Rejection with what is allowed."""
    next_state = _NEXT.get(task.state, {}).get(request.action)
    if next_state is None:
        raise Rejection(f"a task that is {task.state} does not allow {request.action!r}",
                        allowed_actions(task.state))
    changes: dict[str, Any] = {"state": next_state}
    params = request.params
    if request.action == "assign":
        changes["assignee"] = params.assignee
    if request.action == "complete":
        changes["resolution"] = "fault_found" if params.fault_found else (
            "no_fault_found" if params.fault_found is False else "completed")
    if request.action == "cancel":
        changes["resolution"] = "cancelled"
    # What was done, as given: "no fault found" (False) and 0 h are answers too.
    work = {key: value for key, value in (("parts", params.parts), ("labour_h", params.labour_h),
                                           ("fault_found", params.fault_found))
            if value is not None and value != []}
    entry = {"at": _iso(now), "action": request.action, "from": task.state, "to": next_state,
             "actor": request.actor, "origin": request.origin, "note": request.note,
             "decision_id": request.decision_id, **({"work": work} if work else {})}
    return _next_version(task, now, changes, entry)


def recover(task: TaskRecord, now: datetime, quiet_s: float) -> TaskRecord:
    """Done by recovery: every alert of the task resolved and stayed quiet for `quiet_s`.

    Raises Rejection unless the task is open or acknowledged (a person's decision stands)."""
    if task.state not in RECOVERABLE_STATES:
        raise Rejection(f"a task that is {task.state} is not closed by recovery",
                        allowed_actions(task.state))
    entry = {"at": _iso(now), "action": "recover", "from": task.state, "to": "done",
             "actor": "gateway", "origin": "gateway",
             "note": f"all alerts resolved and quiet for {quiet_s:g} s"}
    return _next_version(task, now, {"state": "done", "resolution": "resolved_by_recovery"}, entry)


def _next_version(task: TaskRecord, now: datetime, changes: dict[str, Any],
                  entry: dict[str, Any]) -> TaskRecord:
    """Every version carries the task's recent history: the last HISTORY_KEPT entries (each
    decision is kept whole in the decisions log), so versions do not grow without bound."""
    history = [*task.details.get("history", []), entry]
    details = {**task.details, "history": history[-HISTORY_KEPT:]}
    if len(history) > HISTORY_KEPT:
        details["history_dropped"] = int(task.details.get("history_dropped", 0)) + \
            len(history) - HISTORY_KEPT
    stamp = max(now, task.updated_at)
    return task.model_copy(update={**changes, "updated_at": stamp, "details": details})


HISTORY_KEPT = 20


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
