"""CentralWriter: writes buffer batches into the central database, idempotently.

Readings take the fastest idempotent path measured here: binary COPY into a temporary
staging table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (times are converted
from integer microseconds inside PostgreSQL, so rows go from SQLite to COPY untouched).
Alerts and tasks are upserted from a JSON array, keeping the newest version per id.
Every batch is one transaction that also advances the gateway's row (heartbeat). The SQL
is derived from the central models (cloud_sync/statements.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from cloud_sync.connect import asyncpg_dsn, ssl_argument
from cloud_sync.migrate import known_revisions
from cloud_sync.models import GatewayORM
from cloud_sync.statements import (
    CREATE_STAGE,
    INSERT_LABELS,
    INSERT_READINGS,
    INSERT_STATES,
    RECORD_CONFLICTS,
    STAGE_COLUMNS,
    STAGE_TABLE,
    UPSERT_ALERTS,
    UPSERT_CATALOG,
    UPSERT_DECISIONS,
    UPSERT_TASKS,
)
from edge.errors import EdgeError
from edge.records import DecisionRecord, ReadingRow, VersionRow
from edge.settings import CentralSettings

_LOG_STATEMENTS = {"alerts": UPSERT_ALERTS, "tasks": UPSERT_TASKS, "catalog": UPSERT_CATALOG,
                   "decisions": UPSERT_DECISIONS, "labels": INSERT_LABELS,
                   "states": INSERT_STATES}
LOG_KINDS = tuple(_LOG_STATEMENTS)
BATCHED_LOGS = frozenset({"states"})  # time series: one batch per sync round, like readings
# How far the sync got, per kind: gateways.last_<kind>_seq (checked against the model).
_SEQ_COLUMN = {kind: f"last_{kind}_seq" for kind in ("readings", *LOG_KINDS)}
_PENDING = ("SELECT decision_id, target_kind, target_id, action, actor, note, params, decided_at "
            "FROM maintenance_decisions WHERE gateway_id = $1 AND outcome IS NULL "
            "ORDER BY decided_at, decision_id LIMIT $2")
_SETTLE = ("UPDATE maintenance_decisions SET outcome = $2, outcome_detail = $3, "
           "allowed_actions = $4::jsonb, received_at = $5, applied_at = now() "
           "WHERE gateway_id = $6 AND decision_id = $1 AND outcome IS NULL")


@dataclass(frozen=True, slots=True)
class CentralDecision:
    """A row an engineer (or a central app) inserted into maintenance_decisions."""

    decision_id: str
    target_kind: str
    target_id: str
    action: str
    actor: str
    note: str
    params: Any
    decided_at: datetime
_GATEWAYS = GatewayORM.__table__
if not set(_SEQ_COLUMN.values()) <= set(_GATEWAYS.columns.keys()):
    raise TypeError("gateways lacks a last_<kind>_seq column of cloud_sync/models.py")


def _heartbeat_sql(kind: str | None) -> str:
    if kind is None:
        return ("INSERT INTO gateways (gateway_id, software_version) VALUES ($1, $2) "
                "ON CONFLICT (gateway_id) DO UPDATE SET last_seen = now(), "
                "software_version = EXCLUDED.software_version")
    column = _SEQ_COLUMN[kind]
    return (f"INSERT INTO gateways (gateway_id, software_version, {column}) VALUES ($1, $2, $3) "
            "ON CONFLICT (gateway_id) DO UPDATE SET last_seen = now(), "
            f"software_version = EXCLUDED.software_version, "
            f"{column} = GREATEST(gateways.{column}, EXCLUDED.{column})")


@dataclass(frozen=True, slots=True)
class ReadingsWritten:
    inserted: int
    conflicts: int  # same key as a stored reading, another value: kept in the conflicts table


def _row_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class CentralSchemaError(EdgeError):
    """The central database is reachable but its schema is missing or behind this gateway."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state  # "schema_missing" or "schema_outdated"


async def check_schema(connection: asyncpg.Connection) -> None:
    """Raise CentralSchemaError unless the schema is at (or past) this gateway's head."""
    present = await connection.fetchval(
        "SELECT to_regclass('alembic_version') IS NOT NULL "
        "AND to_regclass('sensor_readings') IS NOT NULL")
    if not present:
        raise CentralSchemaError("schema_missing", "the central schema is missing: run "
                                 "`edge-gateway db upgrade` against this database")
    found = await connection.fetchval("SELECT version_num FROM alembic_version")
    head, known = known_revisions()
    if found != head and found in known:  # an unknown revision is newer: a later gateway's
        raise CentralSchemaError(
            "schema_outdated", f"the central schema is at revision {found}, this gateway "
                               f"needs {head}: run `edge-gateway db upgrade`")


class CentralWriter:
    """One connection to the central database and the idempotent writes over it."""

    def __init__(self, connection: asyncpg.Connection, gateway_id: str, version: str) -> None:
        self._conn = connection
        self._gateway_id = gateway_id
        self._version = version

    @classmethod
    async def connect(cls, settings: CentralSettings, gateway_id: str,
                      version: str) -> CentralWriter:
        connection = await asyncpg.connect(asyncpg_dsn(settings), ssl=ssl_argument(settings),
                                           timeout=settings.connect_timeout_s,
                                           command_timeout=max(60.0, settings.connect_timeout_s))
        try:
            await check_schema(connection)
            await connection.execute(CREATE_STAGE)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, gateway_id, version)

    @property
    def connection_lost(self) -> bool:
        """The server closed (or dropped) the connection: an outage, whatever was raised."""
        return bool(self._conn.is_closed())

    async def close(self) -> None:
        if not self._conn.is_closed():
            try:
                await self._conn.close(timeout=5)
            except Exception:  # the link may already be gone; nothing left to flush
                self._conn.terminate()

    async def heartbeat(self) -> None:
        await self._conn.execute(_heartbeat_sql(None), self._gateway_id, self._version)

    async def write_readings(self, rows: Sequence[ReadingRow]) -> ReadingsWritten:
        """Rows as read from the buffer: how many were new, and how many were conflicts."""
        conflicts = 0
        async with self._conn.transaction():
            await self._conn.copy_records_to_table(STAGE_TABLE, records=rows,
                                                   columns=STAGE_COLUMNS)
            inserted = _row_count(await self._conn.execute(INSERT_READINGS, self._gateway_id))
            if inserted < len(rows):  # replays or conflicts: tell them apart (rare path)
                conflicts = _row_count(await self._conn.execute(RECORD_CONFLICTS,
                                                                self._gateway_id))
            await self._advance("readings", rows[-1].seq)
        return ReadingsWritten(inserted, conflicts)

    async def write_log(self, kind: str, rows: Sequence[VersionRow]) -> int:
        """Alert or task versions, decisions or labels, as read from the buffer."""
        return await self._upsert(kind, _LOG_STATEMENTS[kind], rows)

    async def pending_decisions(self, limit: int) -> list[CentralDecision]:
        """Decisions made centrally for this gateway that no gateway has applied yet.

        Selected by `outcome IS NULL`, not by a sequence cursor: a row that commits late
        (after a later-numbered one) is still found (tests/integration/test_decisions.py).
        """
        rows = await self._conn.fetch(_PENDING, self._gateway_id, limit)
        return [CentralDecision(**dict(row)) for row in rows]

    async def settle_decision(self, record: DecisionRecord) -> None:
        """Fill a central decision's outcome (first outcome wins)."""
        await self._conn.execute(_SETTLE, record.decision_id, record.outcome,
                                 record.outcome_detail, orjson.dumps(record.allowed_actions).decode(),
                                 record.received_at, self._gateway_id)

    async def _upsert(self, kind: str, sql: str, rows: Sequence[VersionRow]) -> int:
        # One statement cannot update a row twice: keep the newest version of each id.
        newest = {row.item_id: row.body for row in rows}
        document = _without_nul("[" + ",".join(newest.values()) + "]")
        async with self._conn.transaction():
            status = await self._conn.execute(sql, self._gateway_id, document)
            await self._advance(kind, rows[-1].seq)
        return _row_count(status)

    async def _advance(self, kind: str, last_seq: int) -> None:
        await self._conn.execute(_heartbeat_sql(kind), self._gateway_id, self._version, last_seq)


# An escaped NUL (`\u0000`, not itself an escaped backslash followed by "u0000").
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _without_nul(document: str) -> str:
    """PostgreSQL's jsonb and text cannot hold NUL, and one such version would stop every
    later row of its kind (and the kinds behind it) forever: shown as U+FFFD instead. The
    ways in refuse NUL already; this keeps an older buffer's rows from wedging the sync."""
    return _ESCAPED_NUL.sub(r"\1\\ufffd", document) if "\\u0000" in document else document
