"""Which buffered rows may be deleted: the one rule that purge and eviction share.

A synced row (its `seq` at or below the kind's sync cursor) may go, except the latest version
of an alert or task that is still open (it is what a restart restores), and the latest
version of a settled task that holds a still-open alert (it keeps the task final). Purge applies the
rule to rows older than `central.keep_synced_s`; eviction (buffer cap) applies it first and
only then takes unsynced rows (eviction.py).
"""

from __future__ import annotations

# The log tables of versioned items, with their id column and the states that mean "open".
VERSIONED: dict[str, tuple[str, tuple[str, ...]]] = {
    "alerts": ("alert_id", ("open",)),
    "tasks": ("task_id", ("open", "acknowledged", "in_progress")),
    "catalog": ("sensor_id", ("current",)),  # the latest entry of a sensor always stays
}
# Append-only records synced like alert and task versions (one row per id; states are
# keyed by sensor and time, their JSON body made when they are read).
RECORDS: dict[str, str] = {"decisions": "decision_id", "labels": "label_id",
                           "states": "sensor_id || '@' || ts_us"}
# Every log the syncer drains with its (seq, id, JSON body) rows, in that order.
LOGS: dict[str, str] = {**{kind: id_ for kind, (id_, _) in VERSIONED.items()}, **RECORDS}
SYNCED_KINDS = ("readings", *LOGS)
KINDS = (*SYNCED_KINDS, "quarantine")
TIME_COLUMN = {"readings": "received_us", "alerts": "updated_us", "tasks": "updated_us",
               "decisions": "received_us", "labels": "created_us", "quarantine": "received_us",
               "states": "received_us", "catalog": "updated_us"}


def open_states_sql(kind: str) -> str:
    """`state IN (...)` for the open states of a versioned kind (constants, not user data)."""
    _, states = VERSIONED[kind]
    return "state IN (" + ", ".join(f"'{state}'" for state in states) + ")"


def removable_synced(kind: str) -> str:
    """SQL condition on rows of `kind` that the central side has and a restart does not need.

    Uses the named parameter `:cursor` (the kind's sync cursor).
    """
    if kind not in VERSIONED:
        return "seq <= :cursor"
    id_column, _ = VERSIONED[kind]
    latest = f"(SELECT max(seq) FROM {kind} AS b WHERE b.{id_column} = {kind}.{id_column})"
    keep = open_states_sql(kind)
    if kind == "tasks":
        # A done or cancelled task is final while an alert it held is still open: its latest
        # version is what tells the scheduler so (else the alert's next event would start
        # the same task id again, open, without its history).
        keep = f"({keep} OR {_HOLDS_AN_OPEN_ALERT})"
    return f"seq <= :cursor AND (NOT {keep} OR seq < {latest})"


_HOLDS_AN_OPEN_ALERT = (
    "EXISTS (SELECT 1 FROM json_each(tasks.body, '$.alert_ids') AS held "
    "JOIN alerts AS a ON a.alert_id = held.value WHERE a.state = 'open' "
    "AND a.seq = (SELECT max(seq) FROM alerts AS b WHERE b.alert_id = a.alert_id))")
