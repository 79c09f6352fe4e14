"""Sync benchmark: drain a 1,000,000-row backlog from the SQLite buffer into PostgreSQL.

The gateway figure includes reading the buffer and marking rows synced (the full
CentralSyncer path: binary COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING).
The baseline, in the same run and into the same kind of table, is a plain row-by-row
`INSERT ... ON CONFLICT DO NOTHING` loop through asyncpg, one autocommitted statement per
row; it runs on a sample (default 20,000 rows) because 1,000,000 would take minutes.

    .venv/bin/python bench/sync.py [--rows 1000000] [--baseline-rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import dsn_for, fill_buffer, fresh_database, readings


async def gateway_drain(path: Path, database: str, batch_rows: int) -> float:
    settings = CentralSettings(dsn=dsn_for(database), sslmode="disable",  # type: ignore[arg-type]
                               batch_rows=batch_rows, idle_interval_s=0.01)
    async with SqliteBuffer(BufferSettings(path=path), "bench-gw") as buffer:
        total = (await buffer.status.depths())["readings"].unsynced
        syncer = CentralSyncer(settings, "bench-gw", "bench", source=buffer.sync, metrics=GatewayMetrics())
        started = time.perf_counter()
        runner = asyncio.create_task(syncer.run())
        while (await buffer.status.depths())["readings"].unsynced:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        await syncer.close()
        await runner
    return total / elapsed


async def baseline_row_by_row(database: str, count: int) -> float:
    conn = await asyncpg.connect(dsn_for(database))
    sql = ("INSERT INTO sensor_readings (time, gateway_id, sensor_id, asset_id, value, unit, "
           "quality, flags, received_at) VALUES (to_timestamp($1::float8 / 1e6), 'baseline', $2, "
           "$3, $4, $5, $6, $7, to_timestamp($8::float8 / 1e6)) "
           "ON CONFLICT (gateway_id, sensor_id, time) DO NOTHING")
    rows = readings(count)
    started = time.perf_counter()
    for r in rows:
        await conn.execute(sql, r.ts_us, r.sensor_id, r.asset_id, r.value, r.unit, r.quality,
                           r.flags, r.received_us)
    elapsed = time.perf_counter() - started
    await conn.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as database:
        path = Path(tmp) / "buffer.sqlite"
        asyncio.run(fill_buffer(path, "bench-gw", args.rows, batch=50_000))
        drain = asyncio.run(gateway_drain(path, database, args.batch_rows))
        baseline = asyncio.run(baseline_row_by_row(database, args.baseline_rows))
    print(f"backlog                   : {args.rows:,} readings in the SQLite buffer")
    print(f"edge-gateway drain        : {drain:10,.0f} rows/s (read buffer + COPY + ON CONFLICT "
          f"+ mark synced, {args.batch_rows:,}-row batches)")
    print(f"row-by-row INSERT baseline: {baseline:10,.0f} rows/s ({args.baseline_rows:,}-row sample)")
    print(f"ratio                     : {drain / baseline:10.1f}x   (target >= 70,000 rows/s)")


if __name__ == "__main__":
    main()
