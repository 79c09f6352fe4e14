"""DecisionLog: every operator decision and what came of it (the `decisions` table).

A decision id is unique: looking it up first is how a repeated decision is recognised and
answered with its first outcome. Decisions are written in the same transaction as the
alert or task version they produced (versions.py), and synced to maintenance_decisions.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edge.buffer.connection import BufferConnection
from edge.buffer.schema import transaction
from edge.records import DecisionRecord
from edge.times import datetime_to_us

_INSERT = ("INSERT INTO decisions (decision_id, target_kind, target_id, outcome, received_us, body) "
           "VALUES (?, ?, ?, ?, ?, ?)")


class DecisionLog:
    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection

    async def get(self, decision_id: str) -> DecisionRecord | None:
        rows = await self._connection.read(
            _select, "SELECT body FROM decisions WHERE decision_id = ?", (decision_id,))
        return DecisionRecord.model_validate_json(rows[0][0]) if rows else None

    async def for_target(self, target_id: str, limit: int = 100) -> list[DecisionRecord]:
        rows = await self._connection.read(
            _select, "SELECT body FROM decisions WHERE target_id = ? ORDER BY seq DESC LIMIT ?",
            (target_id, limit))
        return [DecisionRecord.model_validate_json(body) for (body,) in rows]

    async def append(self, decision: DecisionRecord) -> None:
        """A decision with no effect to store beside it (rejected, or unknown target)."""
        await self._connection.write(_append, decision)


def insert_decision(conn: sqlite3.Connection, decision: DecisionRecord) -> None:
    conn.execute(_INSERT, (decision.decision_id, decision.target_kind, decision.target_id,
                           decision.outcome, datetime_to_us(decision.received_at),
                           decision.model_dump_json()))


def _append(conn: sqlite3.Connection, decision: DecisionRecord) -> None:
    with transaction(conn):
        insert_decision(conn, decision)


def _select(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()
