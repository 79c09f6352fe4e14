"""Multi-row INSERTs store exactly what executemany stores: the same rows, in the same order
(sequence numbers follow the input), the same count with duplicates skipped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.buffer.bulk import BLOCK, SMALL, BulkInsert

_TABLE = ("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER NOT NULL, "
          "name TEXT, value REAL); CREATE UNIQUE INDEX t_k ON t (k)")
_HEAD = "INSERT OR IGNORE INTO t (k, name, value)"


def _table(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(_TABLE)
    return conn


@pytest.mark.parametrize("count", [0, 1, SMALL - 1, SMALL, BLOCK - 1, BLOCK, 2 * BLOCK + 3 * SMALL + 7])
def test_rows_in_blocks_are_stored_as_executemany_stores_them(tmp_path: Path, count: int) -> None:
    # Keys repeat within the input and against a row already stored: both are skipped.
    rows = [(k % (count - 5) if count > 20 else k, f"s{k}", k * 0.5) for k in range(count)]
    bulk, many = _table(tmp_path / "bulk.sqlite"), _table(tmp_path / "many.sqlite")
    for conn in (bulk, many):
        conn.execute("INSERT INTO t (k, name, value) VALUES (3, 'old', -1.0)")
    inserted = BulkInsert(_HEAD, 3).run(bulk, rows)
    expected = many.executemany(f"{_HEAD} VALUES (?, ?, ?)", rows).rowcount
    assert inserted == expected == len({k for k, _, _ in rows} - {3})
    query = "SELECT seq, k, name, value FROM t ORDER BY seq"
    assert bulk.execute(query).fetchall() == many.execute(query).fetchall()
