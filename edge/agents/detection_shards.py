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
asset at first sight), else of its own id, pinned at the sensor's first reading. Calls that
name a sensor without its asset (an operator's close; a source going offline, whose sensors
may not have reported since a restart) go to every worker and pin nothing: only the worker
holding the sensor acts. Snapshots: each worker saves its own part and `pack_parts` joins
them (no decoding on the event loop); at load every worker gets the whole snapshot and keeps
what it owns by the current configuration (`DetectionSession.load_snapshot`), so a changed
worker count or a sensor configured into another asset loads where its readings will go.

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
from edge.detection.shards import pack_parts, shard_of
from edge.detection.snapshot import SnapshotError
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
        await self._all_or_none([w.start() for w in self.workers])

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    def abandon(self) -> None:
        for worker in self.workers:
            worker.abandon()

    async def restart(self) -> None:
        """New workers with empty models, all of them: the agent restores every one to the
        same judged position."""
        await self._all_or_none([w.restart() for w in self.workers])

    async def _all_or_none(self, calls: Sequence[Awaitable[None]]) -> None:
        """Start (or restart) every worker; if one fails, none is left half ready."""
        try:
            await self._gather(calls)
        except BaseException:
            self.abandon()
            raise

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
        """One `node_offline` alert, from the source's worker; every other worker pauses the
        silence of those of the source's sensors it holds (nothing is pinned: a sensor not
        seen since a restart is held where its snapshot put it)."""
        home = self._source_home(source_id)
        changes = self.workers[home].source_offline(source_id, sensor_ids, ts, reason)
        pauses = [w.pause_silence(sensor_ids) for i, w in enumerate(self.workers) if i != home]
        results = await self._gather([changes, *pauses])
        return results[0] or []

    async def source_online(self, source_id: str, ts: float) -> list[AlertChange]:
        worker = self.workers[self._source_home(source_id)]
        try:
            return await worker.source_online(source_id, ts)
        finally:
            self._count()

    def _source_home(self, source_id: str) -> int:
        return shard_of(source_id, len(self.workers))

    async def close(self, sensor_id: str, detector: str) -> bool:
        """To every worker: only the one holding the alert closes it (the others have no
        such alert and change nothing), whatever was pinned since a restart."""
        return any(await self._all(lambda w: w.close(sensor_id, detector)))

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
        """The whole snapshot (packed parts, or one engine's) to every worker, which keeps
        what it owns by the current configuration. Should any worker refuse it, all of
        them are replaced by empty ones before the error is raised: the agent then relearns,
        and no worker keeps a half-loaded model set. (`shard` is for one worker.)"""
        count = len(self.workers)
        try:
            reports = await self._gather([w.load_snapshot(data, (i, count))
                                          for i, w in enumerate(self.workers)])
        except SnapshotError:
            await self.restart()
            raise
        skipped: dict[str, str] = {}
        for report in reports:
            skipped.update(report.skipped)
        return SnapshotReport(sum(r.sensors_restored for r in reports),
                              sum(r.assets_restored for r in reports), skipped)
