"""Detection across several worker processes, each holding a share of the assets.

One worker judges on one core. Under a burst (a backlog drained after an outage, a plant
starting up) the gateway commits faster than one core judges, and the judging of the last
batches went on alone after the commits had ended while the other core idled. With
`detection.workers` above one, each worker holds the sensors of a share of the assets (a
sensor without an asset, by its own id), so everything a judgement consults (the sensor's
models, its asset's rows and model, corroboration within the asset) lives in one process and
each decides exactly as a single engine would. A batch is split by owner, judged by all
workers at once, and the alert changes are merged.

Which worker owns a sensor: `shard_of` of its asset (the configured one, else its topic's
asset at first sight, as the engine files it), else of its own id. The owner is pinned at
first sight, as the engine pins a sensor's asset. Snapshots: each worker saves its own part
and `pack_parts` joins them (no decoding on the event loop); a snapshot taken with another
worker count, or by a single engine, is given whole to every worker, which keeps what it owns
(`DetectionSession.load_snapshot`).

A worker that fails fails the call; the agent restarts them all and recovers them as after a
restart (a healthy worker's state is replaced by the same snapshot, then relearned), so the
workers are always at one judged position.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from edge.agents.detection_host import DetectionHost, WorkerDetection
from edge.detection.engine import SnapshotReport
from edge.detection.lifecycle import AlertChange
from edge.detection.profiles import SensorProfile
from edge.detection.session import Row
from edge.detection.shards import pack_parts, shard_of, unpack_parts
from edge.records import AlertRecord

T = TypeVar("T")


class ShardedDetection(DetectionHost):
    """`DetectionHost` over several `WorkerDetection`s; see the module docstring."""

    def __init__(self, workers: Sequence[WorkerDetection],
                 profiles: Mapping[str, SensorProfile]) -> None:
        self.workers = list(workers)
        self._configured_asset = {sid: p.asset_id for sid, p in profiles.items() if p.asset_id}
        self._owner: dict[str, int] = {}

    def owner(self, sensor_id: str, asset_id: str | None) -> int:
        """The worker that holds this sensor (pinned at first sight)."""
        index = self._owner.get(sensor_id)
        if index is None:
            key = self._configured_asset.get(sensor_id) or asset_id or sensor_id
            index = self._owner[sensor_id] = shard_of(key, len(self.workers))
        return index

    def _alert_owner(self, alert: AlertRecord) -> int:
        return self.owner(alert.sensor_id, alert.asset_id)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))
        self._count()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    def abandon(self) -> None:
        for worker in self.workers:
            worker.abandon()

    async def restart(self) -> None:
        """New workers with empty models, all of them: the agent restores every one to the
        same judged position."""
        await asyncio.gather(*(w.restart() for w in self.workers))
        self._count()

    # -- fan-out --------------------------------------------------------------------------
    async def _gather(self, calls: Sequence[Awaitable[T]]) -> list[T]:
        """Calls on several workers at once. If one fails, the others are still awaited (a
        call abandoned half way would leave its reply in the pipe), then the first error is
        raised: the agent restarts them all."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        self._count()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    async def _all(self, call: Callable[[WorkerDetection], Awaitable[T]]) -> list[T]:
        return await self._gather([call(w) for w in self.workers])

    async def _each(self, parts: Sequence[Sequence[Any]],
                    call: Callable[[WorkerDetection, Any], Awaitable[T]]) -> list[T]:
        """`call(worker, its part)` on each worker whose part is not empty."""
        return await self._gather([call(w, part) for w, part in zip(self.workers, parts,
                                                                   strict=True) if part])

    def _count(self) -> None:
        self.open_count = sum(w.open_count for w in self.workers)
        self.sensor_count = sum(w.sensor_count for w in self.workers)

    def _split_rows(self, batch: Sequence[Row]) -> list[list[Row]]:
        parts: list[list[Row]] = [[] for _ in self.workers]
        owner = self.owner
        for row in batch:
            parts[owner(row[0], row[1])].append(row)
        return parts

    def _split_alerts(self, alerts: Sequence[AlertRecord]) -> list[list[AlertRecord]]:
        parts: list[list[AlertRecord]] = [[] for _ in self.workers]
        for alert in alerts:
            parts[self._alert_owner(alert)].append(alert)
        return parts

    # -- the calls ------------------------------------------------------------------------
    async def judge_rows(self, batch: list[Row]) -> list[AlertChange]:
        results = await self._each(self._split_rows(batch), lambda w, part: w.judge_rows(part))
        return [change for changes in results for change in changes]

    async def learn_rows(self, batch: list[Row]) -> int:
        return sum(await self._each(self._split_rows(batch), lambda w, part: w.learn_rows(part)))

    async def tick(self, now: float) -> list[AlertChange]:
        results = await self._all(lambda w: w.tick(now))
        return [change for changes in results for change in changes]

    async def release_idle(self, before: float) -> int:
        return sum(await self._all(lambda w: w.release_idle(before)))

    async def source_offline(self, source_id: str, sensor_ids: Sequence[str], ts: float,
                             reason: str) -> list[AlertChange]:
        """One `node_offline` alert, from the worker that owns the source; every other worker
        pauses the silence check of the source's sensors it holds."""
        home = self.owner(source_id, source_id)
        parts: list[list[str]] = [[] for _ in self.workers]
        for sensor_id in sensor_ids:
            parts[self.owner(sensor_id, source_id)].append(sensor_id)
        changes = self.workers[home].source_offline(source_id, parts[home], ts, reason)
        pauses = [w.pause_silence(part) for i, (w, part) in enumerate(zip(self.workers, parts,
                                                                          strict=True))
                  if i != home and part]
        results = await self._gather([changes, *pauses])
        return results[0] or []

    async def source_online(self, source_id: str, ts: float) -> list[AlertChange]:
        worker = self.workers[self.owner(source_id, source_id)]
        try:
            return await worker.source_online(source_id, ts)
        finally:
            self._count()

    async def close(self, sensor_id: str, detector: str) -> bool:
        worker = self.workers[self.owner(sensor_id, None)]
        try:
            return await worker.close(sensor_id, detector)
        finally:
            self._count()

    async def take_decided(self, alert: AlertRecord) -> bool:
        worker = self.workers[self._alert_owner(alert)]
        try:
            return await worker.take_decided(alert)
        finally:
            self._count()

    async def set_feedback(self, book: list[dict[str, object]]) -> None:
        await self._all(lambda w: w.set_feedback(book))

    async def restore(self, alerts: Sequence[AlertRecord]) -> None:
        parts = self._split_alerts(alerts)
        await self._gather([w.restore(part) for w, part in zip(self.workers, parts, strict=True)])

    async def restore_closed(self, alerts: Sequence[AlertRecord]) -> None:
        parts = self._split_alerts(alerts)
        await self._gather([w.restore_closed(part)
                            for w, part in zip(self.workers, parts, strict=True)])

    async def drain_candidate_counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for counts in await self._all(lambda w: w.drain_candidate_counts()):
            total.update(counts)
        return dict(total)

    async def snapshot(self, timeout_s: float | None = None) -> bytes:
        return pack_parts(await self._all(lambda w: w.snapshot(timeout_s)))

    async def load_snapshot(self, data: bytes,
                            shard: tuple[int, int] | None = None) -> SnapshotReport:
        """Each worker its own part; a snapshot of another worker count (or of one engine)
        whole to every worker, which keeps what it owns. (`shard` is for one worker.)"""
        parts = unpack_parts(data)
        count = len(self.workers)
        if parts is not None and len(parts) == count:
            reports = await self._gather([w.load_snapshot(part)
                                          for w, part in zip(self.workers, parts, strict=True)])
        else:
            reports = await self._gather([w.load_snapshot(data, (i, count))
                                          for i, w in enumerate(self.workers)])
        skipped: dict[str, str] = {}
        for report in reports:
            skipped.update(report.skipped)
        return SnapshotReport(sum(r.sensors_restored for r in reports),
                              sum(r.assets_restored for r in reports), skipped)
