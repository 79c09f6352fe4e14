"""The buffer's size cap and what gives way when it is reached (guarantee 4).

Policy, in this order, oldest rows first, until the used size is below 95 % of the cap:
  1. readings the central database already has (they are only kept for local queries);
  2. alerts and tasks versions, decisions, labels, states and catalogue entries the
     central database already has (never the latest version of an open item);
  3. quarantine rows (raw rejected payloads, kept for inspection);
  4. readings and states not yet synced (data loss: counted, logged);
  5. alert and task versions, decisions and labels not yet synced (last: maintenance work).
The sensor catalogue's latest entries are never evicted (small, and what names mean).
Every evicted row is counted by kind and reason. Runs on the writer thread, between commits.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from edge.buffer.retention import removable_synced
from edge.buffer.schema import transaction
from edge.logs import RateLimitedLog
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)
_CHUNK = 5_000
_TARGET = 0.95
_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Eviction:
    kind: str
    reason: str
    rows: int


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes in use by the database (free pages excluded; the file does not shrink)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


_STEPS: tuple[tuple[str, str, str], ...] = (
    ("readings", "synced", removable_synced("readings")),
    ("alerts", "synced", removable_synced("alerts")),
    ("tasks", "synced", removable_synced("tasks")),
    ("decisions", "synced", removable_synced("decisions")),
    ("labels", "synced", removable_synced("labels")),
    ("states", "synced", removable_synced("states")),
    ("catalog", "synced", removable_synced("catalog")),
    ("quarantine", "cap_reached", "1"),
    ("readings", "cap_reached_unsynced", "seq > :cursor"),
    ("states", "cap_reached_unsynced", "seq > :cursor"),
    ("alerts", "cap_reached_unsynced", "seq > :cursor"),
    ("tasks", "cap_reached_unsynced", "seq > :cursor"),
    ("decisions", "cap_reached_unsynced", "seq > :cursor"),
    ("labels", "cap_reached_unsynced", "seq > :cursor"),
)


def enforce_cap(conn: sqlite3.Connection, max_bytes: int) -> list[Eviction]:
    """Delete rows by the policy above until below 95 % of `max_bytes`; what was deleted."""
    if used_bytes(conn) <= max_bytes:
        return []
    cursors = dict(conn.execute("SELECT kind, last_seq FROM sync_cursors").fetchall())
    evictions: list[Eviction] = []
    for kind, reason, condition in _STEPS:
        deleted = 0
        while used_bytes(conn) > max_bytes * _TARGET:
            with transaction(conn):
                count = conn.execute(
                    f"DELETE FROM {kind} WHERE seq IN (SELECT seq FROM {kind} WHERE {condition} "
                    f"ORDER BY seq LIMIT {_CHUNK})", {"cursor": cursors.get(kind, 0)},
                ).rowcount
            if count == 0:
                break
            deleted += count
        if deleted:
            evictions.append(Eviction(kind, reason, deleted))
        if used_bytes(conn) <= max_bytes * _TARGET:
            break
    return evictions


class CapGuard:
    """Checks the cap at most once a second after commits, and reports what it evicted."""

    def __init__(self, max_bytes: int, metrics: GatewayMetrics | None) -> None:
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._log = RateLimitedLog(log, interval_s=30)
        self._next_check = 0.0

    def respect(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + _CHECK_INTERVAL_S
        for eviction in enforce_cap(conn, self._max_bytes):
            if self._metrics is not None:
                self._metrics.buffer_evicted.labels(eviction.kind, eviction.reason).inc(eviction.rows)
            self._log.warning(f"{eviction.kind}:{eviction.reason}", "buffer cap reached: rows evicted",
                              kind=eviction.kind, reason=eviction.reason, rows=eviction.rows,
                              max_bytes=self._max_bytes)
