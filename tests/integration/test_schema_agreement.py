"""The central schema has one source of truth: the migrations build exactly the models.

`alembic upgrade head` on an empty PostgreSQL database, then Alembic's `compare_metadata`
against `cloud_sync.models`: no difference (indexes that only one storage engine has are
named in `ENGINE_SPECIFIC_INDEXES`). The syncer's SQL is derived from the same models.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cloud_sync.connect import sqlalchemy_url
from cloud_sync.models import ENGINE_SPECIFIC_INDEXES, Base
from cloud_sync.statements import INSERT_READINGS, STAGE_COLUMNS, UPSERT_ALERTS, UPSERT_TASKS
from edge.records import AlertRecord, ReadingRow, TaskRecord
from tests.support.central import dsn_for, fresh_database


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "index" and name in ENGINE_SPECIFIC_INDEXES:
        return False
    return not (type_ == "table" and name == "alembic_version")


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={
        "compare_type": True, "compare_server_default": True, "include_object": _include})
    return list(compare_metadata(context, Base.metadata))


async def _compare(database: str) -> list[Any]:
    engine = create_async_engine(sqlalchemy_url(dsn_for(database)))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


def test_alembic_head_builds_exactly_the_models() -> None:
    with fresh_database() as database:
        differences = asyncio.run(_compare(database))
    assert differences == [], f"migrations and cloud_sync/models.py disagree: {differences}"


def test_the_syncer_sql_is_derived_from_the_models_and_the_buffer_rows() -> None:
    assert ReadingRow._fields == STAGE_COLUMNS
    readings = Base.metadata.tables["sensor_readings"]
    assert f"INSERT INTO sensor_readings ({', '.join(c.name for c in readings.columns)})" \
        in INSERT_READINGS
    for sql, record in ((UPSERT_ALERTS, AlertRecord), (UPSERT_TASKS, TaskRecord)):
        for field in record.model_fields:
            assert f"r.{field}" in sql
