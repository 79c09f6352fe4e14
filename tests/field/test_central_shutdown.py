"""Field trial item 5: a central database shut down in the middle of a sync is an outage."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import asyncpg
import pytest

from cloud_sync import migrate
from cloud_sync.retry import is_retriable
from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import readings
from tests.support.pg_cluster import private_postgres
from tests.support.services import free_port

OPERATOR_ERROR = "central database refuses our writes; an operator must fix this (retrying with backoff)"
OUTAGE = "central database offline; buffering and retrying with backoff"


def test_a_client_state_error_raised_while_the_server_goes_away_is_retriable() -> None:
    """Item 5: asyncpg's InternalClientError from a rollback on a dying connection."""
    gone = asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
    try:
        try:
            raise gone
        except asyncpg.PostgresError:
            raise asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress") from None
    except asyncpg.InternalClientError as exc:
        error = exc
    assert error.__context__ is gone
    assert is_retriable(error), "the error it happened during says: the server went away"
    assert not is_retriable(asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'))
    lonely = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    assert is_retriable(lonely, connection_lost=True), "a closed connection is an outage"


def test_stopping_postgresql_mid_sync_is_reported_as_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 5: pg_ctl stop (fast) during big COPYs, several times: never an operator error."""
    caplog.set_level(logging.INFO, logger="cloud_sync")
    with private_postgres(free_port()) as cluster:
        settings = CentralSettings(dsn=cluster.dsn, sslmode="disable", batch_rows=50_000,  # type: ignore[arg-type]
                                   idle_interval_s=0.05, connect_timeout_s=2,
                                   reconnect={"initial_delay_s": 0.1, "max_delay_s": 0.5})  # type: ignore[arg-type]
        migrate.upgrade(settings)
        asyncio.run(_sync_through_stops(tmp_path / "b.sqlite", settings, cluster))
    messages = [record.getMessage() for record in caplog.records]
    assert OPERATOR_ERROR not in messages, [r.__dict__.get("error") for r in caplog.records
                                            if r.getMessage() == OPERATOR_ERROR]
    assert messages.count(OUTAGE) >= 3


async def _sync_through_stops(path: Path, settings: CentralSettings, cluster: object) -> None:
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=path), "gw-stop") as buffer:
        for start in range(0, 600_000, 100_000):
            await buffer.readings.commit_batch(readings(100_000, start, sensors=50), [])
        syncer = CentralSyncer(settings, "gw-stop", "test", source=buffer.sync, metrics=metrics)
        task = asyncio.create_task(syncer.run())
        for _ in range(3):
            moved = metrics.sync_rows.labels("readings")._value.get()
            deadline = time.monotonic() + 30
            while metrics.sync_rows.labels("readings")._value.get() == moved:
                assert time.monotonic() < deadline, "the syncer made no progress"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # inside the next COPY
            await asyncio.to_thread(cluster.stop, "fast")  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(cluster.start)  # type: ignore[attr-defined]
        await syncer.close()
        await task
