"""Review of field trial item 19: replaying the quarantine after a config fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import yaml

from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.ingest.acks import AwaitedAcks
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.replay import QuarantineReplay
from edge.ingest.topics import TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.records import QuarantineRecord
from edge.settings import BufferSettings, IngestLimits, SubscriptionSettings
from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}
STRICT = {"accept_unknown_sensors": False}


def _reading(sensor_id: str) -> bytes:
    return orjson.dumps({"sensor_id": sensor_id, "ts": int(time.time()) - 5, "value": 1.0})


def _fix_config(gateway: GatewayProcess, *sensors: str) -> None:
    gateway.config["sensors"] = {sensor: {} for sensor in sensors}
    gateway.config_path.write_text(yaml.safe_dump(gateway.config))


def _replay(gateway: GatewayProcess, **params: object) -> dict[str, object]:
    response = httpx.post(gateway.http_url + "/api/v1/quarantine/replay", headers=AUTH,
                          params=params, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_unfiltered_replay_is_not_stuck_behind_rows_no_config_can_fix(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 19: 10,050 invalid_json rows, then one unknown_sensor row: every
    unfiltered replay examined the same oldest 10,000 rows and replayed nothing."""
    gateway = make_gateway(ingest=STRICT, sensors={"m/known": {}})
    gateway.start()
    publish_all(broker.port, [(f"factory/s/a/t{k % 10}", b"{not json") for k in range(10_050)])
    publish_all(broker.port, [("factory/s/a/t", _reading("m/new"))])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 10_051) == 10_051
    assert gateway.terminate() == 0
    _fix_config(gateway, "m/known", "m/new")
    gateway.start()
    first = _replay(gateway)
    assert first["replayed"] == 1, first
    assert _replay(gateway)["replayed"] == 0, "idempotent"
    assert buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings") == [("m/new",)]
    assert gateway.terminate() == 0


def test_a_replay_walks_the_whole_quarantine_in_pages_with_a_cursor(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 19: rows that still fail were never passed, so a replay never got
    past the oldest `limit` rows; `after_seq` and `next_after_seq` walk all of them."""
    gateway = make_gateway(ingest=STRICT, sensors={"m/known": {}})
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", _reading("m/other")) for _ in range(150)])
    publish_all(broker.port, [("factory/s/a/t", _reading("m/new"))])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 151) == 151
    assert gateway.terminate() == 0
    _fix_config(gateway, "m/known", "m/new")
    gateway.start()
    pages = [_replay(gateway, limit=100)]
    while pages[-1].get("next_after_seq") is not None and len(pages) < 5:
        pages.append(_replay(gateway, limit=100, after_seq=pages[-1]["next_after_seq"]))
    assert [page["examined"] for page in pages] == [100, 51], pages
    assert sum(int(page["replayed"]) for page in pages) == 1  # type: ignore[call-overload]
    assert pages[0]["still_rejected"] == {"unknown_sensor": 100}
    assert buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings") == [("m/new",)]
    assert gateway.terminate() == 0


def _pipeline_and_replay(buffer: SqliteBuffer) -> tuple[IngestPipeline, QuarantineReplay]:
    """An in-process pipeline on `buffer` for the topics f/#, and a replay through it."""
    metrics, limits = GatewayMetrics(), IngestLimits()
    mapper = TopicMapper([SubscriptionSettings(topic="f/#")])
    validator = ReadingValidator(limits, {})
    pipeline = IngestPipeline(EventBus(metrics), metrics, writer=buffer.readings, mapper=mapper,
                              validator=validator, limits=limits,
                              batching=BufferSettings(path=buffer.path))
    return pipeline, QuarantineReplay(pipeline, buffer.quarantine, mapper=mapper,
                                      validator=validator, limits=limits, commit_timeout_s=10)


async def test_a_replayed_row_arrives_at_replay_time_and_keeps_its_original_in_quarantine(
    tmp_path: Path,
) -> None:
    """Review of item 19: a replay resubmitted rows with their original received_us, so
    replaying old rows made edge_sync_lag_seconds jump to their age."""
    three_days_ago_us = int((time.time() - 3 * 86_400) * 1e6)
    payload = orjson.dumps({"sensor_id": "m/new", "ts": three_days_ago_us / 1e6, "value": 1.0})
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        await buffer.readings.commit_batch([], [QuarantineRecord(
            three_days_ago_us, "f/pump/temp", payload, "unknown_sensor", "not configured", "mqtt")])
        pipeline, replay = _pipeline_and_replay(buffer)
        runner = asyncio.create_task(pipeline.run())
        before_us = int(time.time() * 1e6)
        outcome = await replay.replay(None, 100)
        assert outcome.replayed == 1, outcome
        oldest_unsynced_us = await buffer.status.oldest_unsynced_reading_us()
        await pipeline.drain()
        await runner
    assert oldest_unsynced_us is not None and oldest_unsynced_us >= before_us, \
        f"the replayed reading arrived {(before_us - (oldest_unsynced_us or 0)) / 1e6:.0f} s ago"
    assert buffer_rows(tmp_path / "b.sqlite", "SELECT received_us, replayed_us IS NOT NULL "
                       "FROM quarantine") == [(three_days_ago_us, 1)]


async def test_a_rejected_element_of_an_array_stays_rejected_on_replay(tmp_path: Path) -> None:
    """A new user's tryout: `[1, 2, 3]` was quarantined as three invalid_shape elements, and
    a replay with no config change stored readings 1, 2 and 3 stamped with the replay time
    (each element had been kept alone, and a bare `1` is a valid message). Elements are kept
    as one-element arrays, so a replay reads them as they were read."""
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        pipeline, replay = _pipeline_and_replay(buffer)
        runner = asyncio.create_task(pipeline.run())
        good = {"sensor_id": "m/ok", "ts": time.time() - 5, "value": 2.5}
        acks = AwaitedAcks()
        for payload in (b"[1, 2, 3]", orjson.dumps([good, "x"])):
            token, committed = acks.register()
            pipeline.submit("f/pump/temp", payload, acks, token)
            await asyncio.wait_for(committed, 10)
        outcome = await replay.replay(None, 100)
        await pipeline.drain()
        await runner
    assert outcome.examined == 4 and outcome.replayed == 0, outcome
    assert outcome.still_rejected == {"invalid_shape": 4}
    assert buffer_rows(tmp_path / "b.sqlite", "SELECT sensor_id, value FROM readings") == \
        [("m/ok", 2.5)]
