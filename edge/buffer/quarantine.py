"""QuarantineLog: the rejected messages, listed for people and replayed after a config fix.

Rows are never changed except `replayed_us`, set once a row's message was replayed through
the pipeline and committed; a replayed row is never replayed again (idempotent).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from edge.buffer.connection import BufferConnection
from edge.buffer.schema import transaction
from edge.records import QuarantineEntry

_COLUMNS = "seq, received_us, source, payload, reason, detail, replayed_us, transport"
_LIST = (f"SELECT {_COLUMNS} FROM quarantine WHERE (? IS NULL OR reason = ?) "
         "AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?")
# Reasons that are properties of the bytes alone: no config change makes such a payload
# decode, so an unfiltered replay does not spend its pages on them (ask by reason to).
# A payload_too_large row keeps only the first max_payload_bytes: no config reads it whole.
UNFIXABLE_REASONS = ("invalid_json", "invalid_utf8", "empty_payload", "invalid_protobuf",
                     "unsupported_compression", "payload_too_large")
_UNREPLAYED = (f"SELECT {_COLUMNS} FROM quarantine WHERE replayed_us IS NULL AND seq > ? "
               "AND (? IS NULL OR reason = ?) AND transport != 'buffer' "
               f"AND (? IS NOT NULL OR reason NOT IN ({', '.join('?' * len(UNFIXABLE_REASONS))})) "
               "ORDER BY seq LIMIT ?")
_MARK = "UPDATE quarantine SET replayed_us = ? WHERE seq = ? AND replayed_us IS NULL"


class QuarantineLog:
    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection

    async def page(self, reason: str | None, limit: int,
                   before_seq: int | None) -> list[QuarantineEntry]:
        """Newest first; `before_seq` continues from the previous page."""
        rows = await self._connection.read(_select, _LIST,
                                           (reason, reason, before_seq, before_seq, limit))
        return [QuarantineEntry._make(row) for row in rows]

    async def unreplayed(self, reason: str | None, limit: int,
                         after_seq: int = 0) -> list[QuarantineEntry]:
        """Oldest first from `after_seq` on, rows that can be replayed and were not yet
        (a row the buffer made, a conflict, has no message to replay)."""
        rows = await self._connection.read(
            _select, _UNREPLAYED,
            (after_seq, reason, reason, reason, *UNFIXABLE_REASONS, limit))
        return [QuarantineEntry._make(row) for row in rows]

    async def mark_replayed(self, seqs: Sequence[int], at_us: int) -> None:
        if seqs:
            await self._connection.write(_mark, [(at_us, seq) for seq in seqs])


def _select(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _mark(conn: sqlite3.Connection, rows: list[tuple[int, int]]) -> None:
    with transaction(conn):
        conn.executemany(_MARK, rows)
