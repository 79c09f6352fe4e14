"""Corrupt or foreign buffer files: move them aside, and later salvage what they still hold.

A file at the buffer path that is not a healthy buffer of ours is renamed (never
overwritten, never deleted) to `<name>.corrupt-<UTC time>`, together with its -wal and -shm
files, so intake can go on with a fresh buffer. `edge-gateway buffer salvage PATH` copies
every row the old file can still give into the live buffer, reading in chunks and
narrowing down around damaged pages so one bad page does not cost its neighbours.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.buffer.schema import backfill_started

SIDE_FILES = ("-wal", "-shm")
_COLUMNS = {
    "readings": "sensor_id, asset_id, ts_us, value, unit, quality, flags, received_us",
    "quarantine": "received_us, source, payload, reason, detail, transport",
    "alerts": "alert_id, state, updated_us, body",
    "tasks": "task_id, state, updated_us, body",
    "states": "sensor_id, asset_id, ts_us, state, quality, flags, received_us",
    "catalog": "sensor_id, state, updated_us, started_us, body",
    "sparkplug_births": "scope, bdseq, payload, received_us",
}
_INSERT = {
    "readings": "INSERT OR IGNORE INTO readings ({c}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "quarantine": "INSERT INTO quarantine ({c}) VALUES (?, ?, ?, ?, ?, ?)",
    "alerts": "INSERT INTO alerts ({c}) VALUES (?, ?, ?, ?)",
    "tasks": "INSERT INTO tasks ({c}) VALUES (?, ?, ?, ?)",
    "states": "INSERT OR IGNORE INTO states ({c}) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "catalog": "INSERT INTO catalog ({c}) VALUES (?, ?, ?, ?, ?)",
    "sparkplug_births": "INSERT OR IGNORE INTO sparkplug_births ({c}) VALUES (?, ?, ?, ?)",
}
# Columns added by later schema versions, as an older file's rows give them (the migration's
# rule: schema.py, version 5).
_DERIVED = {("quarantine", "transport"): (
    "CASE WHEN source = 'http' THEN 'http' WHEN source = 'buffer' AND "
    "reason = 'conflicting_duplicate' THEN 'buffer' ELSE 'mqtt' END")}
_CHUNK = 2_000


def move_aside(path: Path) -> Path:
    """Rename the buffer file (and its WAL/SHM) out of the way; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


@dataclass
class SalvageReport:
    recovered: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def salvage(live: sqlite3.Connection, old: Path) -> SalvageReport:
    """Copy every readable row of `old` into the live buffer connection."""
    report = SalvageReport()
    try:
        source = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        report.errors.append(f"{old}: cannot be read as SQLite at all: {exc}")
        return report
    try:
        for table, columns in _COLUMNS.items():
            if table not in tables:
                continue
            recovered = unreadable = 0
            insert = _INSERT[table].format(c=columns)
            for rows, lost in _readable_rows(source, table, _selectable(source, table, columns)):
                unreadable += lost
                if rows:
                    with live:
                        live.executemany(insert, rows)
                    recovered += len(rows)
            report.recovered[table] = recovered
            report.unreadable[table] = unreadable
        with live:
            backfill_started(live)  # older files' alert and task rows lack it
    finally:
        source.close()
    return report


def _selectable(source: sqlite3.Connection, table: str, columns: str) -> str:
    """`columns` as the old file can give them: a column it lacks is derived or NULL."""
    try:
        present = {row[1] for row in source.execute(f"PRAGMA table_info({table})")}
    except sqlite3.DatabaseError:
        return columns
    return ", ".join(name if name in present else _DERIVED.get((table, name), "NULL")
                     for name in columns.split(", "))


def _readable_rows(source: sqlite3.Connection, table: str,
                   columns: str) -> Iterator[tuple[list[tuple[object, ...]], int]]:
    try:
        low, high = source.execute(f"SELECT min(seq), max(seq) FROM {table}").fetchone()
    except sqlite3.DatabaseError:
        low, high = 1, _max_rowid_guess(source, table)
    if low is None:
        return
    for start in range(low, high + 1, _CHUNK):
        yield from _range(source, table, columns, start, min(start + _CHUNK - 1, high))


def _range(source: sqlite3.Connection, table: str, columns: str, first: int,
           last: int) -> Iterator[tuple[list[tuple[object, ...]], int]]:
    try:
        rows = source.execute(f"SELECT {columns} FROM {table} WHERE seq BETWEEN ? AND ? "
                              "ORDER BY seq", (first, last)).fetchall()
        yield rows, 0
    except sqlite3.DatabaseError:
        if first == last:
            yield [], 1
            return
        middle = (first + last) // 2
        yield from _range(source, table, columns, first, middle)
        yield from _range(source, table, columns, middle + 1, last)


def _max_rowid_guess(source: sqlite3.Connection, table: str) -> int:
    try:
        row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return int(row[0]) if row else 0
    except sqlite3.DatabaseError:
        return 0
