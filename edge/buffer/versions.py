"""VersionLog: the alert and task logs, one class for both.

Each state change of an alert or task is a new row (its JSON body); the latest row per id is
the item's state. Agents append and restore what is open; the HTTP API lists the latest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from edge.buffer.connection import BufferConnection
from edge.buffer.decisions import insert_decision
from edge.buffer.meta import set_meta
from edge.buffer.retention import VERSIONED, open_states_sql
from edge.buffer.schema import STARTED_FIELD, transaction
from edge.records import AlertRecord, DecisionRecord, LabelRecord, TaskRecord
from edge.times import datetime_to_us

ItemT = TypeVar("ItemT", AlertRecord, TaskRecord)


class VersionLog(Generic[ItemT]):
    """The versions of one kind of item (`alerts` with AlertRecord, `tasks` with TaskRecord)."""

    def __init__(self, connection: BufferConnection, kind: str, model: type[ItemT]) -> None:
        id_column, _ = VERSIONED[kind]
        self._connection = connection
        self._model: type[BaseModel] = model
        self._id_column = id_column
        latest = f"seq IN (SELECT max(seq) FROM {kind} GROUP BY {id_column})"
        self._started_field = STARTED_FIELD[kind]
        self._insert = (f"INSERT INTO {kind} ({id_column}, state, updated_us, started_us, body) "
                        "VALUES (?, ?, ?, ?, ?)")
        self._one = f"SELECT body FROM {kind} WHERE {id_column} = ? ORDER BY seq DESC LIMIT 1"
        self._open = f"SELECT body FROM {kind} WHERE {latest} AND {open_states_sql(kind)} ORDER BY seq"
        self._count_open = f"SELECT count(*) FROM {kind} WHERE {latest} AND {open_states_sql(kind)}"
        self._holding = (f"SELECT body FROM {kind} WHERE {latest} AND EXISTS (SELECT 1 FROM "
                         f"json_each({kind}.body, '$.alert_ids') WHERE value = ?) ORDER BY seq DESC")
        # Pages by (started_us, id), which no update moves (the latest version's seq does).
        self._latest = (
            f"SELECT coalesce(started_us, 0), {id_column}, body FROM {kind} WHERE {latest} "
            "AND (? IS NULL OR state IN (SELECT value FROM json_each(?))) "
            "AND (? IS NULL OR coalesce(started_us, 0) < ? OR "
            f"(coalesce(started_us, 0) = ? AND {id_column} < ?)) "
            f"ORDER BY coalesce(started_us, 0) DESC, {id_column} DESC LIMIT ?")

    async def append(self, items: Sequence[ItemT], decision: DecisionRecord | None = None,
                     labels: Sequence[LabelRecord] = (),
                     position: tuple[str, int] | None = None) -> None:
        """Log new versions (each state change is a row; the central side keeps the latest).

        With the decision that made them (and the labels it confirmed), and the position of
        the agent that made them (`buffer_meta` key and value), in one transaction: a
        decision is never stored without its effect, nor the effect without it, and a crash
        cannot keep the versions but lose the position that says they were made.
        """
        rows = [(getattr(item, self._id_column), item.state, datetime_to_us(item.updated_at),
                 datetime_to_us(getattr(item, self._started_field)), item.model_dump_json())
                for item in items]
        if rows or decision is not None:
            await self._connection.write(_insert_all, self._insert, rows, decision, labels,
                                         position=position)

    async def get(self, item_id: str) -> ItemT | None:
        """The latest version of one item."""
        rows = await self._connection.read(_select, self._one, (item_id,))
        return self._parse(rows)[0] if rows else None

    async def open_items(self) -> list[ItemT]:
        """The latest version of every item whose latest version is open."""
        return self._parse(await self._connection.read(_select, self._open, ()))

    async def holding_alert(self, alert_id: str) -> list[ItemT]:
        """The latest version of every item whose `alert_ids` hold `alert_id` (tasks), newest
        first; a scan of the latest versions, for the rare alert that no open task holds."""
        return self._parse(await self._connection.read(_select, self._holding, (alert_id,)))

    async def count_open(self) -> int:
        rows = await self._connection.read(_select, self._count_open, ())
        return int(rows[0][0])

    async def latest(self, state: str | None = None, limit: int = 1000) -> list[ItemT]:
        """The latest version of each item, newest first; optionally only in `state`."""
        return [item for _, item in await self.page((state,) if state else None, limit, None)]

    async def page(self, states: Sequence[str] | None, limit: int,
                   after: str | None) -> list[tuple[str, ItemT]]:
        """(cursor, item) of the latest versions whose state is one of `states` (None: any),
        newest opened/created first, continuing after the item whose cursor is `after`
        (`<started_us>:<id>`, see `cursor_key`)."""
        started, item_id = cursor_key(after) if after is not None else (None, None)
        wanted = orjson.dumps(list(states)).decode() if states is not None else None
        rows = await self._connection.read(
            _select, self._latest, (wanted, wanted, started, started, started, item_id, limit))
        items = self._parse([(body,) for _, _, body in rows])
        return [(f"{started_us}:{row_id}", item)
                for (started_us, row_id, _), item in zip(rows, items, strict=True)]

    def _parse(self, rows: list[tuple[Any, ...]]) -> list[ItemT]:
        return [self._model.model_validate_json(str(body)) for (body,) in rows]  # type: ignore[misc]


def cursor_key(cursor: str) -> tuple[int, str]:
    """(started_us, id) of a list cursor `<started_us>:<id>`; ValueError if it is not one."""
    started, _, item_id = cursor.partition(":")
    if not started.isdigit() or not item_id:
        raise ValueError(f"not a list cursor: {cursor[:40]!r}")
    return int(started), item_id


def _insert_all(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]],
                decision: DecisionRecord | None, labels: Sequence[LabelRecord], *,
                position: tuple[str, int] | None) -> None:
    with transaction(conn):
        if position is not None:
            set_meta(conn, position[0], str(position[1]))
        if rows:
            conn.executemany(sql, rows)
        if decision is not None:
            insert_decision(conn, decision)
        for label in labels:
            conn.execute("INSERT OR IGNORE INTO labels (label_id, created_us, body) VALUES (?, ?, ?)",
                         (label.label_id, datetime_to_us(label.created_at), label.model_dump_json()))


def _select(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()
