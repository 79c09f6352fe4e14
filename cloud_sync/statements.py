"""The syncer's SQL, derived from the central models and the buffer's row types.

Nothing here names a column by hand: the staging table and the COPY column list come from
`ReadingRow`'s fields (the same fields the buffer SELECTs), typed after the central column
each one fills; the INSERT and the upserts list the models' columns. A model change that
leaves a central column without a source fails here, at import, not in production.
"""

from __future__ import annotations

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

from cloud_sync.models import (
    AnomalyAlertORM,
    FaultLabelORM,
    MaintenanceDecisionORM,
    MaintenanceTaskORM,
    SensorCatalogORM,
    SensorReadingConflictORM,
    SensorReadingORM,
    SensorStateORM,
)
from edge.records import (
    AlertRecord,
    CatalogRecord,
    DecisionRecord,
    LabelRecord,
    ReadingRow,
    TaskRecord,
)

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
STAGE_TABLE = "edge_stage_readings"
STAGE_COLUMNS: tuple[str, ...] = ReadingRow._fields
# Buffer times are integer microseconds; PostgreSQL turns them into timestamptz.
_FROM_MICROSECONDS = {"time": "ts_us", "received_at": "received_us"}
_NOT_CENTRAL = {"seq"}  # goes to gateways.last_readings_seq instead


def _pg_type(column: Column[object]) -> str:
    return str(column.type.compile(dialect=_DIALECT))


def _stage_type(field: str, readings: Table) -> str:
    if field in _NOT_CENTRAL or field in _FROM_MICROSECONDS.values():
        return "int8"
    return _pg_type(readings.c[field])


def _reading_source(column: str, stage: str = "") -> str:
    """The SELECT expression that fills central column `column` from the staging table
    (`stage`: the staging table's alias, if the query has one)."""
    prefix = f"{stage}." if stage else ""
    if column == "gateway_id":
        return "$1"
    if column in _FROM_MICROSECONDS:
        return (f"timestamptz 'epoch' + {prefix}{_FROM_MICROSECONDS[column]} "
                "* interval '1 microsecond'")
    if column not in STAGE_COLUMNS:
        raise AssertionError(f"sensor_readings.{column} has no source in ReadingRow")
    return prefix + column


def _readings_statements() -> tuple[str, str]:
    table = SensorReadingORM.__table__
    assert isinstance(table, Table)
    create = (f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} ("
              + ", ".join(f"{f} {_stage_type(f, table)}" for f in STAGE_COLUMNS)
              + ") ON COMMIT DELETE ROWS")
    columns = [c.name for c in table.columns]
    key = ", ".join(c.name for c in table.primary_key.columns)
    insert = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
              f"SELECT {', '.join(_reading_source(c) for c in columns)} FROM {STAGE_TABLE} "
              f"ON CONFLICT ({key}) DO NOTHING")
    return create, insert


def _conflicts_statement() -> str:
    """Staged readings whose key is stored centrally with another value, into the conflicts
    table (run only when the INSERT skipped rows: a batch without duplicates costs nothing)."""
    table = _table(SensorReadingConflictORM)
    readings = _table(SensorReadingORM)
    key = [c.name for c in readings.primary_key.columns]
    sources = {"stored_value": "r.value", "received_value": "s.value",
               **{name: _reading_source(name, "s")
                  for name in ("gateway_id", "sensor_id", "time", "received_at")}}
    columns = [c.name for c in table.columns if c.server_default is None]
    missing = set(columns) - set(sources)
    if missing:
        raise AssertionError(f"sensor_reading_conflicts.{sorted(missing)} have no source")
    match = " AND ".join(f"r.{name} = {_reading_source(name, 's')}" for name in key)
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"SELECT {', '.join(sources[c] for c in columns)} "
            f"FROM {STAGE_TABLE} AS s JOIN {readings.name} AS r ON {match} "
            f"WHERE r.value IS DISTINCT FROM s.value ON CONFLICT DO NOTHING")


def _insert_from_json(table: Table, body_fields: set[str],
                      filled_here: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """INSERT ... SELECT from a JSON array of records ($2; $1 is the gateway id).

    Every record field must be a column; a column that is not a field must be filled here
    (`filled_here`: column -> SQL expression), have a server default, or be nullable.
    Returns the statement (without its conflict clause) and the columns it sets.
    """
    filled_here = filled_here or {}
    names = {c.name for c in table.columns}
    if body_fields - names:
        raise AssertionError(f"{table.name} lacks {sorted(body_fields - names)}")
    for column in table.columns:
        if column.name not in body_fields | set(filled_here) | {"gateway_id"} \
                and column.server_default is None and not column.nullable:
            raise AssertionError(f"{table.name}.{column.name} has no source")
    columns = [c for c in table.columns if c.name in body_fields]

    def value(column: Column[object]) -> str:
        default = getattr(column.server_default, "arg", None)
        if isinstance(default, str) and not column.nullable:  # a literal default, e.g. '{}'
            return f"coalesce(r.{column.name}, '{default}')"
        return f"r.{column.name}"

    record = ", ".join(f"{c.name} {_pg_type(c)}" for c in columns)
    targets = ["gateway_id", *(c.name for c in columns), *filled_here]
    sources = ["$1", *(value(c) for c in columns), *filled_here.values()]
    return (f"INSERT INTO {table.name} AS t ({', '.join(targets)}) SELECT {', '.join(sources)} "
            f"FROM jsonb_to_recordset($2::jsonb) AS r({record})"), targets


def _upsert(table: Table, body_fields: set[str], keep_when: str,
            filled_here: dict[str, str] | None = None) -> str:
    """Insert, or update the mutable columns of an existing row where `keep_when` holds."""
    insert, targets = _insert_from_json(table, body_fields, filled_here)
    key = ", ".join(c.name for c in table.primary_key.columns)
    mutable = [c.name for c in table.columns if c.name in targets
               and not c.info.get("immutable") and not c.primary_key]
    return (f"{insert} ON CONFLICT ({key}) DO UPDATE SET "
            + ", ".join(f"{name} = EXCLUDED.{name}" for name in mutable)
            + f" WHERE {keep_when}")


def _table(model: type[object]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


CREATE_STAGE, INSERT_READINGS = _readings_statements()
RECORD_CONFLICTS = _conflicts_statement()
# Alerts and tasks keep the newest version; a decision keeps its first outcome (a central
# row gets its outcome from the gateway that applied it); labels are written once.
# The newest version is the latest in the buffer's log (edge/buffer/sync.py adds its place),
# not the latest updated_at: versions stamped on two clocks, or at one microsecond, would
# otherwise leave a row stuck (tests/integration/test_central_versions.py). Rows from before
# migration 0005 have no place yet: the buffer sends versions in order, the next one wins.
VERSION_FIELDS = {"buffer_epoch_us", "version_seq"}
_NEWER_VERSION = ("t.version_seq IS NULL OR (t.buffer_epoch_us, t.version_seq) <= "
                  "(EXCLUDED.buffer_epoch_us, EXCLUDED.version_seq)")
UPSERT_ALERTS = _upsert(_table(AnomalyAlertORM), set(AlertRecord.model_fields) | VERSION_FIELDS,
                        _NEWER_VERSION)
UPSERT_TASKS = _upsert(_table(MaintenanceTaskORM), set(TaskRecord.model_fields) | VERSION_FIELDS,
                       _NEWER_VERSION)
# A gateway's record settles a pending central row of the same id only if it is that
# decision (same target and action); another one under a reused id leaves the row pending,
# and the gateway answers it as a conflict when it pulls it.
UPSERT_DECISIONS = _upsert(_table(MaintenanceDecisionORM), set(DecisionRecord.model_fields),
                           "t.outcome IS NULL AND t.target_kind = EXCLUDED.target_kind AND "
                           "t.target_id = EXCLUDED.target_id AND t.action = EXCLUDED.action",
                           {"applied_at": "r.received_at"})
INSERT_LABELS = _insert_from_json(_table(FaultLabelORM), set(LabelRecord.model_fields))[0] + \
    " ON CONFLICT DO NOTHING"
# States are keyed like readings (a replay adds nothing); the catalogue keeps the newest.
STATE_FIELDS = {"sensor_id", "asset_id", "time", "state", "quality", "flags", "received_at"}
INSERT_STATES = _insert_from_json(_table(SensorStateORM), STATE_FIELDS)[0] + \
    " ON CONFLICT DO NOTHING"
UPSERT_CATALOG = _upsert(_table(SensorCatalogORM), set(CatalogRecord.model_fields),
                         "t.updated_at <= EXCLUDED.updated_at")
