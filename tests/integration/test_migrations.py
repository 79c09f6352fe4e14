"""Central schema migrations on the real PostgreSQL, and the TimescaleDB branch's SQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import pglast
import pytest

from cloud_sync import migrate, timescale
from edge.settings import CentralSettings, TimescaleSettings
from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.services import REPO_ROOT, env_without_edge_vars

TABLES = {"gateways", "sensor_readings", "anomaly_alerts", "maintenance_tasks",
          "sensor_reading_conflicts", "maintenance_decisions", "fault_labels", "sensor_states",
          "sensor_catalog"}


async def _tables(database: str) -> set[str]:
    rows = await central_rows(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows} - {"alembic_version"}


def test_upgrade_downgrade_upgrade_on_real_postgresql() -> None:
    with fresh_database(migrated=False) as database:
        settings = CentralSettings(dsn=dsn_for(database), sslmode="disable")  # type: ignore[arg-type]
        migrate.upgrade(settings)
        assert asyncio.run(_tables(database)) == TABLES
        indexes = asyncio.run(central_rows(database, "SELECT indexdef FROM pg_indexes "
                                           "WHERE indexname = 'sensor_readings_time_brin'"))
        assert "USING brin" in indexes[0][0]
        migrate.downgrade(settings, "base")
        assert asyncio.run(_tables(database)) == set()
        migrate.upgrade(settings)
        assert asyncio.run(_tables(database)) == TABLES
        key = asyncio.run(central_rows(
            database, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'sensor_readings_pkey'"))
        assert key[0][0] == "PRIMARY KEY (gateway_id, sensor_id, \"time\")"


def test_db_upgrade_command_logs_the_plain_postgresql_notice() -> None:
    with fresh_database(migrated=False) as database:
        result = subprocess.run(
            [sys.executable, "-m", "edge", "db", "upgrade", "--dsn", dsn_for(database)],
            check=False, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
            env=env_without_edge_vars())
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("TimescaleDB is not available") == 1
        assert asyncio.run(_tables(database)) == TABLES


# Stand-ins with TimescaleDB's names, argument names and types: a call that would not bind
# against the real functions does not bind here either. Each records its arguments.
STUBS = """
CREATE TABLE ts_calls (fn text, args text);
CREATE FUNCTION create_hypertable(relation regclass, time_column_name name,
    chunk_time_interval interval DEFAULT NULL, if_not_exists boolean DEFAULT false)
    RETURNS void LANGUAGE sql AS
    $$ INSERT INTO ts_calls VALUES ('create_hypertable', relation::text || ' ' || time_column_name
       || ' ' || chunk_time_interval::text || ' ' || if_not_exists::text) $$;
CREATE FUNCTION add_compression_policy(hypertable regclass, compress_after interval,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS
    $$ INSERT INTO ts_calls VALUES ('add_compression_policy', compress_after::text) RETURNING 1 $$;
CREATE FUNCTION add_retention_policy(relation regclass, drop_after interval,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS
    $$ INSERT INTO ts_calls VALUES ('add_retention_policy', drop_after::text) RETURNING 1 $$;
CREATE FUNCTION add_continuous_aggregate_policy(continuous_aggregate regclass,
    start_offset interval, end_offset interval, schedule_interval interval,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS
    $$ INSERT INTO ts_calls VALUES ('add_continuous_aggregate_policy', continuous_aggregate::text)
       RETURNING 1 $$;
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$ SELECT date_bin(bucket_width, ts, timestamptz '2000-01-03') $$;
"""


async def _exercise_timescale_branch(database: str, options: TimescaleSettings) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn_for(database))
    try:
        await conn.execute(STUBS)
        for statement in [*timescale.statements(options),
                          *timescale.hypertable_statements("sensor_states", options)]:
            if statement.needs_timescale_ddl:
                if "MATERIALIZED VIEW" in statement.sql:
                    # Plain PostgreSQL has no continuous aggregates: create the same query
                    # as a materialized view, so every column and the grouping are checked.
                    await conn.execute(f"CREATE MATERIALIZED VIEW {timescale.HOURLY_VIEW} AS "
                                       f"{timescale.HOURLY_SELECT} WITH NO DATA")
                continue
            await conn.execute(statement.sql)
        await conn.execute(f"REFRESH MATERIALIZED VIEW {timescale.HOURLY_VIEW}")
        return [(r[0], r[1]) for r in await conn.fetch("SELECT fn, args FROM ts_calls")]
    finally:
        await conn.close()


@pytest.mark.parametrize("options", [
    TimescaleSettings(),
    TimescaleSettings(chunk_interval="6 hours", compress_after=None, retention="90 days"),
])
def test_timescale_branch_sql_parses_and_binds_as_far_as_plain_postgresql_allows(
    options: TimescaleSettings
) -> None:
    for statement in timescale.statements(options):
        assert len(pglast.parse_sql(statement.sql)) == 1, statement.sql
    with fresh_database() as database:
        calls = asyncio.run(_exercise_timescale_branch(database, options))
    functions = [fn for fn, _ in calls]
    assert functions[0] == "create_hypertable"
    assert calls[0][1] == f"sensor_readings time {_pg_interval(options.chunk_interval)} true"
    assert ("add_compression_policy" in functions) == (options.compress_after is not None)
    assert ("add_retention_policy" in functions) == (options.retention is not None)
    readings_part = functions[:functions.index("add_continuous_aggregate_policy") + 1]
    states_part = functions[len(readings_part):]
    assert readings_part[-1] == "add_continuous_aggregate_policy"
    # sensor_states (migration 0004): the same hypertable, compression and retention.
    assert states_part == [f for f in readings_part if f != "add_continuous_aggregate_policy"]
    assert [args for fn, args in calls if fn == "create_hypertable"][1] == \
        f"sensor_states time {_pg_interval(options.chunk_interval)} true"


def _pg_interval(text: str) -> str:
    return {"1 day": "1 day", "6 hours": "06:00:00"}[text]


def test_compression_and_aggregate_ddl_name_the_right_columns() -> None:
    ddl = [s.sql for s in timescale.statements(TimescaleSettings()) if s.needs_timescale_ddl]
    compress, aggregate = ddl
    assert "timescaledb.compress_segmentby = 'gateway_id, sensor_id'" in compress
    assert "timescaledb.compress_orderby = 'time DESC'" in compress
    assert "WITH (timescaledb.continuous)" in aggregate and aggregate.endswith("WITH NO DATA")
    assert "min(value)" in aggregate and "max(value)" in aggregate and "avg(value)" in aggregate
