"""CentralSyncer: drains the gateway's buffer into the central database, in order.

Guarantee, in two sentences: a buffer row is marked synced only after the central
transaction holding it has committed; a replay after a crash between the two is harmless
because every central write is idempotent (tests/integration/test_central_sync.py).
Alerts and tasks go first: each round drains them before one batch of readings, so a
maintenance alert never waits behind an hour of backlog.

While the central side is down (or its schema is missing) the syncer backs off
exponentially with jitter, capped at `central.reconnect.max_delay_s`, and logs one line per
change of `state` (up, down, refused, schema_missing, schema_outdated), never one per retry;
the backoff starts over only after a sync round succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cloud_sync.decisions_pull import DecisionPuller
from cloud_sync.retry import is_retriable
from cloud_sync.writer import BATCHED_LOGS, LOG_KINDS, CentralSchemaError, CentralWriter
from edge.backoff import Backoff
from edge.metrics import GatewayMetrics
from edge.records import ReadingRow, VersionRow
from edge.settings import CentralSettings

log = logging.getLogger(__name__)

_PURGE_INTERVAL_S = 60.0


class SyncSource(Protocol):
    """What the syncer needs from the buffer."""

    async def sync_cursor(self, kind: str) -> int: ...

    async def read_readings(self, after_seq: int, limit: int) -> list[ReadingRow]: ...

    async def read_versions(self, kind: str, after_seq: int, limit: int) -> list[VersionRow]: ...

    async def mark_synced(self, kind: str, up_to_seq: int) -> None: ...

    async def purge_synced(self, older_than_us: int, limit: int = ...) -> int: ...


WriterFactory = Callable[[], Awaitable[CentralWriter]]
CENTRAL_STATES = ("connecting", "up", "down", "refused", "schema_missing", "schema_outdated")


@dataclass(frozen=True, slots=True)
class _ReadAhead:
    """The next readings batch, being read while the previous one is written."""

    after_seq: int
    rows: asyncio.Future[list[ReadingRow]]


class CentralSyncer:
    """Keeps the central database caught up with one gateway's buffer."""

    def __init__(self, settings: CentralSettings, gateway_id: str, version: str, *,
                 source: SyncSource, metrics: GatewayMetrics,
                 decisions: DecisionPuller | None = None,
                 writer_factory: WriterFactory | None = None) -> None:
        self._settings = settings
        self._source = source
        self._metrics = metrics
        self._connect: WriterFactory = writer_factory or (
            lambda: CentralWriter.connect(settings, gateway_id, version))
        self._stopping = asyncio.Event()
        self._positions: dict[str, int] = {}
        # (after_seq, read task): the next readings batch, read while the last one is written
        self._prefetch: _ReadAhead | None = None
        self._last_heartbeat = 0.0
        self._last_purge = 0.0
        self._last_pull = 0.0
        self._puller = decisions
        self.state = "connecting"
        self.last_error: str | None = None
        self._metrics.central_state.labels("connecting").set(1)

    @property
    def online(self) -> bool | None:
        """True while syncing, False while not, None before the first attempt."""
        return None if self.state == "connecting" else self.state == "up"

    async def run(self) -> None:
        """Sync until `close`; reconnect with backoff while the central side is down."""
        backoff = Backoff(self._settings.reconnect.initial_delay_s,
                          self._settings.reconnect.max_delay_s)
        for kind in ("readings", *LOG_KINDS):
            self._positions[kind] = await self._source.sync_cursor(kind)
        while not self._stopping.is_set():
            try:
                writer = await self._connect()
            except Exception as exc:
                self._went_offline(exc)
                await self._sleep(backoff.next_delay_s())
                continue
            try:
                await self._sync_until_stopped(writer, backoff)
            except Exception as exc:
                self._went_offline(exc, connection_lost=writer.connection_lost)
                await self._sleep(backoff.next_delay_s())
            finally:
                await writer.close()
        await self._cancel_prefetch()

    async def close(self) -> None:
        self._stopping.set()

    async def sync_round(self, writer: CentralWriter) -> int:
        """Alerts, tasks, the catalogue, decisions and labels (all waiting), then one batch of
        states and one of readings (time series take turns, so neither starves the other)."""
        moved = 0
        for kind in LOG_KINDS:
            while versions := await self._source.read_versions(kind, self._positions[kind],
                                                               self._settings.batch_rows):
                await writer.write_log(kind, versions)
                moved += await self._confirm(kind, versions[-1].seq, len(versions))
                if kind in BATCHED_LOGS:
                    break
        rows = await self._next_readings()
        if rows:
            written = await writer.write_readings(rows)
            if written.conflicts:
                self._metrics.sync_conflicts.inc(written.conflicts)
                log.warning("central already has readings with the same key and another value; "
                            "kept in sensor_reading_conflicts", extra={"readings": written.conflicts})
            moved += await self._confirm("readings", rows[-1].seq, len(rows))
        return moved

    async def _sync_until_stopped(self, writer: CentralWriter, backoff: Backoff) -> None:
        while not self._stopping.is_set():
            moved = await self.sync_round(writer)
            if self.state != "up":
                self._went_online()
                backoff.reset()
            await self._housekeeping(writer)
            if moved == 0:
                await self._sleep(self._settings.idle_interval_s)
        # Shutting down: what the pipeline committed last gets one more try, within a deadline.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.final_sync_timeout_s):
                while await self.sync_round(writer):
                    pass

    async def _next_readings(self) -> list[ReadingRow]:
        """The next readings batch, read ahead while the previous one was being written."""
        position = self._positions["readings"]
        rows: list[ReadingRow] | None = None
        if self._prefetch is not None:
            ahead, self._prefetch = self._prefetch, None
            fetched = await ahead.rows
            # A failed write leaves the position behind the read-ahead: read again then.
            if ahead.after_seq == position and fetched:
                rows = fetched
        if rows is None:
            rows = await self._source.read_readings(position, self._settings.batch_rows)
        if rows:
            after_seq = rows[-1].seq
            self._prefetch = _ReadAhead(after_seq, asyncio.ensure_future(
                self._source.read_readings(after_seq, self._settings.batch_rows)))
        return rows

    async def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            task = self._prefetch.rows
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            self._prefetch = None

    async def _confirm(self, kind: str, last_seq: int, count: int) -> int:
        # Only now, after the central commit, may the buffer call these rows synced.
        await self._source.mark_synced(kind, last_seq)
        self._positions[kind] = last_seq
        self._metrics.sync_rows.labels(kind).inc(count)
        return count

    async def _housekeeping(self, writer: CentralWriter) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self._settings.heartbeat_interval_s:
            await writer.heartbeat()
            self._last_heartbeat = now
        if self._puller is not None and now - self._last_pull >= self._settings.decision_poll_s:
            self._last_pull = now
            await self._puller.pull(writer)
        if now - self._last_purge >= _PURGE_INTERVAL_S:
            self._last_purge = now
            cutoff_us = int((time.time() - self._settings.keep_synced_s) * 1_000_000)
            purged = await self._source.purge_synced(cutoff_us)
            if purged:
                log.info("purged synced rows from the buffer", extra={"rows": purged})

    def _went_online(self) -> None:
        log.info("central database online", extra={"was": self.state})
        self._set_state("up", None)

    def _went_offline(self, error: BaseException, connection_lost: bool = False) -> None:
        self._metrics.sync_errors.inc()
        description = f"{type(error).__name__}: {error}"
        if isinstance(error, CentralSchemaError):
            state = error.state
        else:
            state = "down" if is_retriable(error, connection_lost) else "refused"
        if state != self.state:
            if state == "down":
                log.warning("central database offline; buffering and retrying with backoff",
                            extra={"error": description})
            elif state == "refused":
                log.error("central database refuses our writes; an operator must fix this "
                          "(retrying with backoff)", extra={"error": description})
            else:
                log.error(f"{error}; buffering and retrying with backoff", extra={"state": state})
        self._set_state(state, description)

    def _set_state(self, state: str, error: str | None) -> None:
        self._metrics.central_state.labels(self.state).set(0)
        self._metrics.central_state.labels(state).set(1)
        self._metrics.central_up.set(1 if state == "up" else 0)
        self.state = state
        self.last_error = error

    async def _sleep(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._stopping.wait()
