"""Fresh central databases on the machine's PostgreSQL, and buffers full of test data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from cloud_sync import migrate
from edge.buffer import SqliteBuffer
from edge.records import AlertRecord, Reading, TaskRecord
from edge.settings import BufferSettings, CentralSettings

PG_HOST = "127.0.0.1"
PG_PORT = 5432
ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"


def dsn_for(database: str, port: int = PG_PORT) -> str:
    return f"postgresql://postgres@{PG_HOST}:{port}/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(migrated: bool = True) -> Iterator[str]:
    """A new, empty database (migrated to head unless told otherwise); dropped afterwards."""
    name = f"edge_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        if migrated:
            migrate.upgrade(CentralSettings(dsn=dsn_for(name), sslmode="disable"))
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def central_rows(database: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn_for(database))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def readings(count: int, start: int = 0, sensors: int = 10) -> list[Reading]:
    base_us = 1_700_000_000_000_000
    return [Reading(f"sensor-{k % sensors}", f"asset-{k % sensors // 5}", base_us + k * 1000,
                    float(k), "degC", None, 0, base_us + k * 1000 + 7)
            for k in range(start, start + count)]


T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def alert_versions(count: int, ids: int) -> list[AlertRecord]:
    """`count` versions spread over `ids` alerts; the last version of each is 'resolved'."""
    versions = []
    for k in range(count):
        alert = k % ids
        last = k >= count - ids
        versions.append(AlertRecord(
            alert_id=f"alert-{alert}", asset_id="asset-1", sensor_id=f"sensor-{alert}",
            detector="outlier", severity="warning", state="resolved" if last else "open",
            score=float(k), value=1.0, reason="spike", details={"version": k},
            opened_at=T0, updated_at=T0 + timedelta(seconds=k),
            resolved_at=T0 + timedelta(seconds=k) if last else None))
    return versions


def task_versions(count: int, ids: int) -> list[TaskRecord]:
    return [TaskRecord(task_id=f"task-{k % ids}", asset_id="asset-1", cause="spike",
                       priority="high", state="open", description=f"version {k}",
                       alert_ids=[f"alert-{k % ids}"], created_at=T0,
                       updated_at=T0 + timedelta(seconds=k), due_at=T0 + timedelta(days=1))
            for k in range(count)]


async def fill_buffer(path: Path, gateway_id: str, reading_count: int, alerts: int = 0,
                      tasks: int = 0, batch: int = 10_000) -> None:
    async with SqliteBuffer(BufferSettings(path=path), gateway_id) as buffer:
        for start in range(0, reading_count, batch):
            await buffer.readings.commit_batch(readings(min(batch, reading_count - start), start), [])
        if alerts:
            await buffer.alerts.append(alert_versions(alerts, max(1, alerts // 3)))
        if tasks:
            await buffer.tasks.append(task_versions(tasks, max(1, tasks // 3)))
