"""CentralWriter: writes buffer batches into the central database, idempotently.

Readings take the fastest idempotent path measured here: binary COPY into a temporary
staging table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (times are converted
from integer microseconds inside PostgreSQL, so rows go from SQLite to COPY untouched).
Alerts and tasks are upserted from a JSON array, keeping the newest version per id.
Every batch is one transaction that also advances the gateway's row (heartbeat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from cloud_sync.connect import asyncpg_dsn, ssl_argument
from edge.settings import CentralSettings

STAGE_TABLE = "edge_stage_readings"
STAGE_COLUMNS = ("seq", "sensor_id", "asset_id", "ts_us", "value", "unit", "quality", "flags",
                 "received_us")
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (seq int8, sensor_id text, asset_id text, "
    "ts_us int8, value float8, unit text, quality text, flags int4, received_us int8) "
    "ON COMMIT DELETE ROWS"
)
_INSERT_READINGS = f"""
INSERT INTO sensor_readings (time, gateway_id, sensor_id, asset_id, value, unit, quality, flags,
                             received_at)
SELECT timestamptz 'epoch' + ts_us * interval '1 microsecond', $1, sensor_id, asset_id, value,
       unit, quality, flags, timestamptz 'epoch' + received_us * interval '1 microsecond'
FROM {STAGE_TABLE}
ON CONFLICT (gateway_id, sensor_id, time) DO NOTHING
"""
_UPSERT_ALERTS = """
INSERT INTO anomaly_alerts AS a (alert_id, gateway_id, asset_id, sensor_id, detector, severity,
    state, score, value, reason, details, opened_at, updated_at, resolved_at)
SELECT r.alert_id, $1, r.asset_id, r.sensor_id, r.detector, r.severity, r.state, r.score,
       r.value, r.reason, coalesce(r.details, '{}'), r.opened_at, r.updated_at, r.resolved_at
FROM jsonb_to_recordset($2::jsonb) AS r(alert_id text, asset_id text, sensor_id text,
    detector text, severity text, state text, score float8, value float8, reason text,
    details jsonb, opened_at timestamptz, updated_at timestamptz, resolved_at timestamptz)
ON CONFLICT (alert_id) DO UPDATE SET
    severity = EXCLUDED.severity, state = EXCLUDED.state, score = EXCLUDED.score,
    value = EXCLUDED.value, reason = EXCLUDED.reason, details = EXCLUDED.details,
    updated_at = EXCLUDED.updated_at, resolved_at = EXCLUDED.resolved_at
WHERE a.updated_at <= EXCLUDED.updated_at
"""
_UPSERT_TASKS = """
INSERT INTO maintenance_tasks AS t (task_id, gateway_id, asset_id, cause, priority, state,
    description, alert_ids, details, due_at, created_at, updated_at)
SELECT r.task_id, $1, r.asset_id, r.cause, r.priority, r.state, r.description,
       coalesce(r.alert_ids, '[]'), coalesce(r.details, '{}'), r.due_at, r.created_at, r.updated_at
FROM jsonb_to_recordset($2::jsonb) AS r(task_id text, asset_id text, cause text, priority text,
    state text, description text, alert_ids jsonb, details jsonb, due_at timestamptz,
    created_at timestamptz, updated_at timestamptz)
ON CONFLICT (task_id) DO UPDATE SET
    priority = EXCLUDED.priority, state = EXCLUDED.state, description = EXCLUDED.description,
    alert_ids = EXCLUDED.alert_ids, details = EXCLUDED.details, due_at = EXCLUDED.due_at,
    updated_at = EXCLUDED.updated_at
WHERE t.updated_at <= EXCLUDED.updated_at
"""
_SEQ_COLUMN = {"readings": "last_readings_seq", "alerts": "last_alerts_seq",
               "tasks": "last_tasks_seq"}


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
            await connection.execute(_CREATE_STAGE)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, gateway_id, version)

    async def close(self) -> None:
        if not self._conn.is_closed():
            try:
                await self._conn.close(timeout=5)
            except Exception:  # the link may already be gone; nothing left to flush
                self._conn.terminate()

    async def heartbeat(self) -> None:
        await self._conn.execute(_heartbeat_sql(None), self._gateway_id, self._version)

    async def write_readings(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Rows as read from the buffer (seq first); returns how many were new."""
        async with self._conn.transaction():
            await self._conn.copy_records_to_table(STAGE_TABLE, records=rows,
                                                   columns=STAGE_COLUMNS)
            status = await self._conn.execute(_INSERT_READINGS, self._gateway_id)
            await self._advance("readings", rows[-1][0])
        return int(status.rsplit(" ", 1)[-1])

    async def write_alerts(self, rows: Sequence[tuple[int, str, str]]) -> int:
        return await self._upsert("alerts", _UPSERT_ALERTS, rows)

    async def write_tasks(self, rows: Sequence[tuple[int, str, str]]) -> int:
        return await self._upsert("tasks", _UPSERT_TASKS, rows)

    async def _upsert(self, kind: str, sql: str, rows: Sequence[tuple[int, str, str]]) -> int:
        # One statement cannot update a row twice: keep the newest version of each id.
        newest = {item_id: body for _, item_id, body in rows}
        document = "[" + ",".join(newest.values()) + "]"
        async with self._conn.transaction():
            status = await self._conn.execute(sql, self._gateway_id, document)
            await self._advance(kind, rows[-1][0])
        return int(status.rsplit(" ", 1)[-1])

    async def _advance(self, kind: str, last_seq: int) -> None:
        await self._conn.execute(_heartbeat_sql(kind), self._gateway_id, self._version, last_seq)
