"""Detection across several worker processes (`detection.workers`): sharded by asset, the
workers decide exactly what one engine decides, their snapshot loads into any worker count
(and a single engine's into them), a source going offline is one alert, and a worker that dies
fails the call so the agent can recover them all. Real child processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from edge.agents.detection_host import DetectionWorkerError, InlineDetection, WorkerDetection
from edge.agents.detection_shards import ShardedDetection
from edge.detection.engine import DetectionEngine
from edge.detection.profiles import SensorProfile
from edge.detection.session import DetectionSession
from edge.detection.settings import DetectionSettings
from edge.detection.shards import pack_parts, shard_of, unpack_parts
from edge.detection.snapshot import SnapshotError
from edge.records import Reading

T0 = time.time() - 3600
# (sensor, asset): three assets and two lone sensors, spread over the workers (asserted below)
SENSORS = [("pump/temp", "pump"), ("pump/flow", "pump"), ("fan/rpm", "fan"), ("fan/temp", "fan"),
           ("valve/pos", "valve"), ("line/s2", None), ("line/s4", None)]


def _signal(count: int, level: float) -> list[float]:
    """Normal, then a step that the learned detectors see, then normal again."""
    return [level + (i % 7) * 0.1 for i in range(count - 40)] + [level * 3] * 20 + [level] * 20


def _readings(count: int, start_s: float) -> tuple[Reading, ...]:
    rows = []
    for n, (sensor, asset) in enumerate(SENSORS):
        for i, value in enumerate(_signal(count, 10.0 * (n + 1))):
            ts = int((start_s + i) * 1e6)
            rows.append((ts, n, Reading(sensor, asset, ts, value, None, None, 0, ts)))
    return tuple(r for _, _, r in sorted(rows, key=lambda r: (r[0], r[1])))


def _key(changes: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return sorted((c.change, c.alert.alert_id, c.alert.detector) for c in changes)


def _sharded(count: int, settings: DetectionSettings) -> ShardedDetection:
    return ShardedDetection([WorkerDetection("gw", settings, {}, {}) for _ in range(count)], {})


def _inline(settings: DetectionSettings) -> InlineDetection:
    return InlineDetection(DetectionSession("gw", settings, {}, {}, time.time))


async def test_sharded_workers_decide_exactly_what_one_engine_decides() -> None:
    settings = DetectionSettings()
    readings = _readings(600, T0)
    sharded, inline = _sharded(2, settings), _inline(settings)
    await sharded.start()
    try:
        by_shards, by_one = await sharded.judge(readings), await inline.judge(readings)
        assert _key(by_shards) == _key(by_one) and any(c.change == "open" for c in by_one)
        assert all(w.sensor_count > 0 for w in sharded.workers), "both workers hold sensors"
        assert (sharded.open_count, sharded.sensor_count) == (inline.open_count, len(SENSORS))
        assert _key(await sharded.tick(T0 + 4000)) == _key(await inline.tick(T0 + 4000))
        assert await sharded.drain_candidate_counts() == await inline.drain_candidate_counts()
    finally:
        await sharded.stop()


async def test_a_snapshot_of_the_workers_loads_into_any_count_and_decides_as_one_engine() -> None:
    settings = DetectionSettings()
    first, later = _readings(600, T0), _readings(300, T0 + 600)
    two = _sharded(2, settings)
    await two.start()
    three = _sharded(3, settings)
    await three.start()
    try:
        await two.judge(first)
        packed = await two.snapshot()
        assert unpack_parts(packed) is not None
        one = _inline(settings)  # a single engine takes the packed parts
        assert (await one.load_snapshot(packed)).sensors_restored == len(SENSORS)
        report = await three.load_snapshot(packed)  # another count: each keeps what it owns
        assert report.sensors_restored == len(SENSORS) and report.assets_restored == 3
        assert sorted(w.sensor_count for w in three.workers) != [0, 0, len(SENSORS)]
        # (a snapshot holds models, not alerts: a reloaded engine is compared with a reloaded one)
        expected = _key(await one.judge(later))
        assert any(c[0] == "open" for c in expected)
        assert _key(await three.judge(later)) == expected
        # and back: one engine's snapshot into several workers
        again = _sharded(2, settings)
        await again.start()
        try:
            single = DetectionEngine("gw", settings)
            for r in first:
                single.observe(r.sensor_id, r.asset_id, r.ts_us / 1e6, r.value)
            assert (await again.load_snapshot(single.snapshot())).sensors_restored == len(SENSORS)
            assert all(w.sensor_count > 0 for w in again.workers)
        finally:
            await again.stop()
    finally:
        await two.stop()
        await three.stop()


async def test_a_source_going_offline_is_one_alert_whichever_workers_hold_its_sensors() -> None:
    sharded = _sharded(2, DetectionSettings())
    await sharded.start()
    try:
        await sharded.judge(_readings(100, T0))
        sensors = [s for s, _ in SENSORS]
        changes = await sharded.source_offline("node-1", sensors, T0 + 100, "NDEATH")
        assert [(c.change, c.alert.detector) for c in changes] == [("open", "node_offline")]
        back = await sharded.source_online("node-1", T0 + 200)
        assert [(c.change, c.alert.detector) for c in back] == [("resolved", "node_offline")]
    finally:
        await sharded.stop()


async def test_a_dead_worker_fails_the_call_and_a_restart_brings_all_of_them_back() -> None:
    sharded = _sharded(2, DetectionSettings())
    await sharded.start()
    try:
        await sharded.judge(_readings(100, T0))
        victim = sharded.workers[sharded.owner("pump/temp", "pump")]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        with pytest.raises(DetectionWorkerError):
            await sharded.judge(_readings(10, T0 + 100))
        await sharded.restart()
        assert sharded.sensor_count == 0  # empty models: the agent restores them
        await sharded.judge(_readings(10, T0 + 200))
        assert sharded.sensor_count == len(SENSORS)
    finally:
        await sharded.stop()


def test_packed_parts_round_trip_and_a_damaged_pack_is_refused() -> None:
    parts = [b"first", b"", b"third part"]
    packed = pack_parts(parts)
    assert unpack_parts(packed) == parts
    assert unpack_parts(b"edge-detection-snapshot\n...") is None  # one engine's snapshot
    for damaged in (packed[:-1], packed + b"x", packed[:40]):
        with pytest.raises(SnapshotError):
            unpack_parts(damaged)


def test_the_owner_of_a_key_is_stable_across_runs() -> None:
    # CRC-32, not Python's salted hash: a restarted gateway finds every sensor where it was.
    assert [shard_of(k, 2) for k in ("pump", "line/s2", "line/s4")] == [1, 0, 1]
    assert shard_of("anything", 1) == 0


# -- what a restart forgets: the host's pins; the owner must still be found -----------------
def _flow(count: int, start_s: float, sensor: str, asset: str) -> tuple[Reading, ...]:
    return tuple(Reading(sensor, asset, int((start_s + i) * 1e6), v, None, None, 0,
                         int((start_s + i) * 1e6)) for i, v in enumerate(_signal(count, 10.0)))


async def test_after_a_restart_a_close_or_a_dead_node_never_splits_a_sensor_across_workers() -> None:
    settings = DetectionSettings()
    sensor, asset, node = "Plant1/node1/D/flow", "Plant1/node1/D", "Plant1/node1"
    # the asset's worker, the sensor's own id's, and the node's differ from each other
    assert shard_of(asset, 2) != shard_of(node, 2) and shard_of("pump", 2) != shard_of("pump/temp", 2)
    before = _sharded(2, settings)
    await before.start()
    after = _sharded(2, settings)  # the restarted daemon's host: nothing pinned yet
    await after.start()
    try:
        opened = await before.judge(_flow(600, T0, "pump/temp", "pump") + _flow(600, T0, sensor, asset))
        alert = next(c.alert for c in opened if c.change == "open" and c.alert.sensor_id == "pump/temp")
        await after.load_snapshot(await before.snapshot())
        # an operator's false alarm on a resolved alert (not restored): a close, to every worker
        assert not await after.close("pump/temp", alert.detector)
        # a node dies before its sensors report again: one alert, and no worker but the one
        # holding the sensor's model takes its readings afterwards
        offline = await after.source_offline(node, [sensor], T0 + 700, "NDEATH")
        assert [(c.change, c.alert.detector) for c in offline] == [("open", "node_offline")]
        assert [c.alert.detector for c in await after.tick(T0 + 750) if c.change == "open"
                and c.alert.sensor_id == sensor] == [], "its silence was paused where it is held"
        await after.judge(_flow(5, T0 + 800, sensor, asset) + _flow(5, T0 + 800, "pump/temp", "pump"))
        assert after.sensor_count == 2, "no second model for a sensor"
    finally:
        await before.stop()
        await after.stop()


async def test_a_sensor_given_an_asset_on_another_worker_is_loaded_there_at_the_same_count() -> None:
    settings = DetectionSettings()
    before = _sharded(2, settings)
    await before.start()
    try:
        await before.judge(_flow(300, T0, "pump/temp", "pump"))
        snapshot = await before.snapshot()
    finally:
        await before.stop()
    # now configured under asset "other", whose worker is not "pump"'s
    assert shard_of("other", 2) != shard_of("pump", 2)
    profiles = {"pump/temp": SensorProfile.build(settings, asset_id="other")}
    after = ShardedDetection([WorkerDetection("gw", settings, profiles, {}) for _ in range(2)],
                             profiles)
    await after.start()
    try:
        assert (await after.load_snapshot(snapshot)).sensors_restored == 1
        await after.judge(_flow(5, T0 + 300, "pump/temp", "pump"))
        assert after.sensor_count == 1, "one model, where the configuration puts it"
    finally:
        await after.stop()
