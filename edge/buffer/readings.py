"""ReadingsStore: the pipeline's port into the buffer (readings and quarantine rows).

Guarantee, in two sentences: a message is not acknowledged to the broker until the
transaction that holds its reading (or quarantine row) has committed with the configured
`synchronous` level; a row is not removed from the buffer until the central side has it
(retention.py). Readings are keyed by (ts_us, sensor_id): an exact repeat (a redelivered
copy) is a counted duplicate, not a second row; the same key with another value is a
conflict, quarantined as `conflicting_duplicate` with both values, in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from edge.buffer.bulk import BulkInsert
from edge.buffer.connection import BufferConnection
from edge.buffer.eviction import CapGuard
from edge.buffer.schema import transaction
from edge.records import (
    NO_EXTRAS,
    BatchExtras,
    CatalogRecord,
    CommitResult,
    QuarantineRecord,
    Reading,
    ReadingRow,
    RetainedTaken,
    SparkplugBirth,
    StateReading,
)
from edge.times import datetime_to_us

_INSERT_READINGS = BulkInsert(f"INSERT OR IGNORE INTO readings ({', '.join(Reading._fields)})",
                              len(Reading._fields))
_INSERT_QUARANTINE = (
    f"INSERT INTO quarantine ({', '.join(QuarantineRecord._fields)}) "
    f"VALUES ({', '.join('?' * len(QuarantineRecord._fields))})"
)
# The sequence counter (ignored duplicates use numbers up too) and the newest row.
_COUNTER = "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"
_LAST_SEQ = "SELECT max(seq) FROM readings"
_WINDOW = ("SELECT ts_us, value FROM readings WHERE ts_us BETWEEN ? AND ? AND sensor_id = ? "
           "ORDER BY ts_us LIMIT ?")
_STORED_VALUE = "SELECT value FROM readings WHERE ts_us = ? AND sensor_id = ?"
_INSERT_STATES = BulkInsert(f"INSERT OR IGNORE INTO states ({', '.join(StateReading._fields)})",
                            len(StateReading._fields))
_STORED_STATE = "SELECT state FROM states WHERE ts_us = ? AND sensor_id = ?"
_STATE_WINDOW = ("SELECT ts_us, state FROM states WHERE ts_us BETWEEN ? AND ? AND sensor_id = ? "
                 "ORDER BY ts_us LIMIT ?")
_LATEST_CATALOG = "SELECT body FROM catalog WHERE sensor_id = ? ORDER BY seq DESC LIMIT 1"
_INSERT_CATALOG = ("INSERT INTO catalog (sensor_id, state, updated_us, started_us, body) "
                   "VALUES (?, ?, ?, ?, ?)")
_UPSERT_BIRTH = ("INSERT INTO sparkplug_births (scope, bdseq, payload, received_us) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET bdseq = excluded.bdseq, "
                 "payload = excluded.payload, received_us = excluded.received_us")
_BIRTHS = "SELECT scope, bdseq, payload, received_us FROM sparkplug_births"
_UPSERT_RETAINED = ("INSERT INTO retained_taken (topic, digest, taken_us) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic) DO UPDATE SET digest = excluded.digest, "
                    "taken_us = excluded.taken_us")
_RECENT = (f"SELECT {', '.join(Reading._fields)} FROM readings WHERE received_us >= ? "
           "AND seq <= ? ORDER BY seq DESC LIMIT ?")
# Sensors seen most recently (registry seeding at start), over the newest rows only: the
# GROUP BY reads every row it covers (~1 s per million rows), and a live sensor shows up
# among the newest readings.
_RECENT_SENSORS = ("SELECT sensor_id, max(received_us) AS seen FROM readings "
                   "WHERE seq > (SELECT coalesce(max(seq), 0) FROM readings) - ? "
                   "AND received_us >= ? GROUP BY sensor_id ORDER BY seen DESC LIMIT ?")
SEED_SCAN_ROWS = 1_000_000
_AFTER = f"SELECT {', '.join(ReadingRow._fields)} FROM readings WHERE seq > ? ORDER BY seq LIMIT ?"


class ReadingsStore:
    """Group commits of readings and quarantine rows; reads for the agents' warm-up/catch-up."""

    def __init__(self, connection: BufferConnection) -> None:
        self._connection = connection
        self._cap = CapGuard(connection.settings.max_bytes, connection.metrics)

    async def commit_batch(self, readings: Sequence[Reading],
                           quarantine: Sequence[QuarantineRecord],
                           retained: Sequence[RetainedTaken] = (),
                           extras: BatchExtras = NO_EXTRAS) -> CommitResult:
        """Commit readings, quarantine rows, taken retained messages and the extras (states,
        catalogue entries, Sparkplug births) in one transaction.

        Raises BufferWriteError if it cannot.
        """
        return await self._connection.write(self._commit, readings, quarantine, retained, extras)

    async def sparkplug_births(self) -> list[SparkplugBirth]:
        """The last birth of every Sparkplug node and device (aliases after a restart)."""
        rows = await self._connection.read(_select, _BIRTHS, ())
        return [SparkplugBirth(str(scope), bdseq, bytes(payload), int(received))
                for scope, bdseq, payload, received in rows]

    async def retained_taken(self, since_us: int, limit: int) -> dict[str, RetainedTaken]:
        """topic -> what was last taken from it, for topics seen since `since_us` (at most
        `limit`, the most recently seen); older or surplus entries are forgotten (deleted)."""
        await self._connection.write(_forget_retained, since_us, limit)
        rows = await self._connection.read(
            _select, "SELECT topic, digest, taken_us FROM retained_taken", ())
        return {str(topic): RetainedTaken(str(topic), bytes(digest), int(taken_us))
                for topic, digest, taken_us in rows}

    async def recent_sensors(self, since_received_us: int, limit: int) -> list[tuple[str, int]]:
        """(sensor_id, last received_us) of the sensors seen since then, most recent first."""
        rows = await self._connection.read(_select, _RECENT_SENSORS,
                                           (SEED_SCAN_ROWS, since_received_us, limit))
        return [(str(sensor_id), int(seen)) for sensor_id, seen in rows]

    async def recent_readings(self, since_received_us: int, up_to_seq: int,
                              limit: int = 200_000) -> list[Reading]:
        """The newest readings received since `since_received_us` (to `up_to_seq`), oldest first."""
        rows = await self._connection.read(_select, _RECENT, (since_received_us, up_to_seq, limit))
        return [Reading._make(row) for row in reversed(rows)]

    async def readings_after(self, after_seq: int, limit: int) -> list[ReadingRow]:
        """The next `limit` readings after `after_seq`, with their seq (an agent's catch-up)."""
        rows = await self._connection.read(_select, _AFTER, (after_seq, limit))
        return list(map(ReadingRow._make, rows))

    async def sensor_window(self, sensor_id: str, since_us: int, until_us: int,
                            limit: int) -> list[tuple[int, float]]:
        """(ts_us, value) of one sensor between two times, oldest first (charts).

        Walks the (ts_us, sensor_id) index over the window: keep windows short (minutes to an
        hour); a second index by sensor would cost every insert (schema.py's measurement).
        """
        rows = await self._connection.read(_select, _WINDOW, (since_us, until_us, sensor_id, limit))
        return [(int(ts), float(value)) for ts, value in rows]

    async def state_window(self, sensor_id: str, since_us: int, until_us: int,
                           limit: int) -> list[tuple[int, str | None]]:
        """(ts_us, state) of one sensor between two times, oldest first (None: a null)."""
        rows = await self._connection.read(_select, _STATE_WINDOW,
                                           (since_us, until_us, sensor_id, limit))
        return [(int(ts), None if state is None else str(state)) for ts, state in rows]

    async def last_seq(self) -> int:
        """The newest reading's sequence number (0 for an empty buffer)."""
        rows = await self._connection.read(_select, _LAST_SEQ, ())
        return int(rows[0][0] or 0)

    def _commit(self, conn: sqlite3.Connection, readings: Sequence[Reading],
                quarantine: Sequence[QuarantineRecord],
                retained: Sequence[RetainedTaken], extras: BatchExtras) -> CommitResult:
        first_seq = last_seq = None
        states_inserted = states_conflicts = 0
        with transaction(conn):
            if extras:
                states_inserted, state_conflicts = _commit_extras(conn, extras)
                states_conflicts = len(state_conflicts)
                quarantine = [*quarantine, *state_conflicts]
            inserted = 0
            conflicts: list[tuple[int, QuarantineRecord]] = []
            if readings:
                before = conn.execute(_COUNTER).fetchone()
                inserted = _INSERT_READINGS.run(conn, readings)
                if inserted < len(readings):
                    conflicts = _conflicts(conn, readings)
                if inserted:
                    # One writer, one transaction: the new rows lie in this range (ignored
                    # duplicates use numbers up too, so it may have holes; last_seq is a row).
                    first_seq = (before[0] if before else 0) + 1
                    last_seq = int(conn.execute(_LAST_SEQ).fetchone()[0])
            if quarantine or conflicts:
                conn.executemany(_INSERT_QUARANTINE, [*quarantine, *(r for _, r in conflicts)])
            if retained:
                conn.executemany(_UPSERT_RETAINED, retained)
        self._cap.respect(conn)
        return CommitResult(inserted, len(readings) - inserted - len(conflicts),
                            len(quarantine) + len(conflicts), first_seq, last_seq, len(conflicts),
                            tuple((index, record.detail) for index, record in conflicts),
                            states_inserted,
                            len(extras.states) - states_inserted - states_conflicts)


def _commit_extras(conn: sqlite3.Connection,
                   extras: BatchExtras) -> tuple[int, list[QuarantineRecord]]:
    """States (keyed like readings), changed catalogue entries and births; the states
    inserted and the quarantine rows of conflicting ones."""
    inserted = 0
    conflicts: list[QuarantineRecord] = []
    if extras.states:
        inserted = _INSERT_STATES.run(conn, extras.states)
        if inserted < len(extras.states):
            conflicts = _state_conflicts(conn, extras.states)
    for record in extras.catalog:
        _catalog_version(conn, record)
    if extras.births:
        conn.executemany(_UPSERT_BIRTH, extras.births)
    return inserted, conflicts


def _state_conflicts(conn: sqlite3.Connection,
                     states: Sequence[StateReading]) -> list[QuarantineRecord]:
    conflicts = []
    for state in states:
        stored = conn.execute(_STORED_STATE, (state.ts_us, state.sensor_id)).fetchone()
        if stored is not None and stored[0] != state.state:
            conflicts.append(QuarantineRecord(
                state.received_us, "buffer", orjson.dumps(state._asdict()),
                "conflicting_duplicate",
                f"sensor {state.sensor_id!r} at ts_us {state.ts_us}: stored state "
                f"{stored[0]!r}, received {state.state!r}", "buffer"))
    return conflicts


def _catalog_version(conn: sqlite3.Connection, record: CatalogRecord) -> None:
    """A new catalogue version when what is known about the sensor changed (not its times)."""
    row = conn.execute(_LATEST_CATALOG, (record.sensor_id,)).fetchone()
    if row is not None:
        previous = CatalogRecord.model_validate_json(row[0])
        same = {"first_seen_at", "updated_at"}
        if previous.model_dump(exclude=same) == record.model_dump(exclude=same):
            return
        record = record.model_copy(update={"first_seen_at": previous.first_seen_at})
    conn.execute(_INSERT_CATALOG, (record.sensor_id, record.state,
                                   datetime_to_us(record.updated_at),
                                   datetime_to_us(record.first_seen_at),
                                   record.model_dump_json()))


def _conflicts(conn: sqlite3.Connection,
               readings: Sequence[Reading]) -> list[tuple[int, QuarantineRecord]]:
    """(index, quarantine row) of the readings whose key is stored with another value
    (slow path: only for batches with duplicates, one index probe per reading)."""
    conflicts = []
    for index, reading in enumerate(readings):
        stored = conn.execute(_STORED_VALUE, (reading.ts_us, reading.sensor_id)).fetchone()
        if stored is not None and stored[0] != reading.value:
            conflicts.append((index, QuarantineRecord(
                reading.received_us, "buffer", orjson.dumps(reading._asdict()),
                "conflicting_duplicate",
                f"sensor {reading.sensor_id!r} at ts_us {reading.ts_us}: stored value "
                f"{stored[0]!r}, received {reading.value!r}", "buffer")))
    return conflicts


def _forget_retained(conn: sqlite3.Connection, since_us: int, limit: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM retained_taken WHERE taken_us < ? OR topic NOT IN "
                     "(SELECT topic FROM retained_taken ORDER BY taken_us DESC LIMIT ?)",
                     (since_us, limit))


def _select(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()
