"""TimescaleDB features of the central schema, as plain SQL statements.

Used by the first migration when the `timescaledb` extension can be enabled; kept as data
so that tests can parse every statement and run what plain PostgreSQL can run (against
stand-in functions with TimescaleDB's signatures). Compression is segmented by
(gateway_id, sensor_id): a sensor is identified by both, and TimescaleDB wants every
column of the primary key among the segment-by and order-by columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from edge.errors import EdgeError
from edge.settings import TimescaleSettings

HOURLY_VIEW = "sensor_readings_hourly"

# The continuous aggregate's query; also run as a plain view in tests.
HOURLY_SELECT = (
    "SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, gateway_id, sensor_id, "
    "min(value) AS min_value, max(value) AS max_value, avg(value) AS avg_value, "
    "count(*) AS reading_count "
    "FROM sensor_readings GROUP BY bucket, gateway_id, sensor_id"
)


@dataclass(frozen=True)
class Statement:
    sql: str
    needs_timescale_ddl: bool = False  # plain PostgreSQL cannot even execute it


def _literal_interval(value: str) -> str:
    # Settings validate intervals against a strict pattern; this repeats the guard because
    # DDL cannot take bound parameters.
    if not value.replace(" ", "").isalnum():
        raise ValueError(f"bad interval {value!r}")
    return f"INTERVAL '{value}'"


TIME_SERIES_TABLES = ("sensor_readings", "sensor_states")


def hypertable_statements(table: str, options: TimescaleSettings) -> list[Statement]:
    """A time-series table (`time`, keyed by gateway, sensor and time) as a hypertable, with
    compression and retention as configured."""
    if table not in TIME_SERIES_TABLES:
        raise ValueError(f"{table!r} is not a time-series table")
    result = [
        Statement(f"SELECT create_hypertable('{table}', 'time', "
                  f"chunk_time_interval => {_literal_interval(options.chunk_interval)}, "
                  "if_not_exists => TRUE)"),
    ]
    if options.compress_after is not None:
        result += [
            Statement(f"ALTER TABLE {table} SET (timescaledb.compress, "
                      "timescaledb.compress_segmentby = 'gateway_id, sensor_id', "
                      "timescaledb.compress_orderby = 'time DESC')", needs_timescale_ddl=True),
            Statement(f"SELECT add_compression_policy('{table}', "
                      f"compress_after => {_literal_interval(options.compress_after)}, "
                      "if_not_exists => TRUE)"),
        ]
    if options.retention is not None:
        result.append(Statement(
            f"SELECT add_retention_policy('{table}', "
            f"drop_after => {_literal_interval(options.retention)}, if_not_exists => TRUE)"))
    return result


def statements(options: TimescaleSettings) -> list[Statement]:
    """Everything that turns sensor_readings into TimescaleDB's (migration 0001), in order."""
    result = hypertable_statements("sensor_readings", options)
    result += [
        Statement(f"CREATE MATERIALIZED VIEW {HOURLY_VIEW} WITH (timescaledb.continuous) AS "
                  f"{HOURLY_SELECT} WITH NO DATA", needs_timescale_ddl=True),
        Statement(f"SELECT add_continuous_aggregate_policy('{HOURLY_VIEW}', "
                  "start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', "
                  "schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE)"),
    ]
    return result


class TimescaleUnavailable(EdgeError):
    """central.timescale.mode asks for TimescaleDB and the server cannot give it; says why."""


_NOT_PRELOADED = (
    "TimescaleDB is installed on the central server but not loaded: add "
    "shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL "
    "(or set central.timescale.mode: off to use plain PostgreSQL deliberately)")


def enable_extension(connection: Connection, mode: str) -> str | None:
    """Enable timescaledb as `mode` says; its version, or None for plain PostgreSQL.

    Probes before it tries: CREATE EXTENSION, or any TimescaleDB function, on a server where
    the library is not preloaded is FATAL and closes the connection, which would break the
    migration's transaction. That holds for an extension already installed too (a database
    restored onto a server without the preload), so the preload is checked on both paths.
    """
    if mode == "off":
        return None
    installed = connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar()
    if installed is None:
        available = connection.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).scalar()
        if available is None:
            if mode == "required":
                raise TimescaleUnavailable(
                    "central.timescale.mode is required, but the timescaledb extension is not "
                    "installed on the central server")
            return None
    _require_preloaded(connection)
    if installed is not None:
        return str(installed)
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    return str(connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar())


def _require_preloaded(connection: Connection) -> None:
    preloaded = str(connection.execute(text("SHOW shared_preload_libraries")).scalar() or "")
    if "timescaledb" not in {name.strip().strip('"') for name in preloaded.split(",")}:
        raise TimescaleUnavailable(_NOT_PRELOADED)


def apply(connection: Connection, options: TimescaleSettings) -> None:
    for statement in statements(options):
        connection.execute(text(statement.sql))


def installed(connection: Connection) -> bool:
    """Whether an earlier migration enabled TimescaleDB in this database."""
    return connection.execute(
        text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).scalar() is not None
