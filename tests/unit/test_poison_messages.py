"""One message the gateway cannot read or store costs that message, never its neighbours
or the daemon: an unexpected decoder error is quarantined as `decode_error`, a batch the
buffer will not take (for a reason no retry fixes) is committed message by message and
the one that fails is quarantined as `unstorable`; every message is acknowledged after
its commit. And a large Sparkplug birth is not such a message. The real pipeline and a
real SQLite buffer; the faults are injected."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge.buffer import SqliteBuffer
from edge.ingest.codec_reader import CodecReader
from edge.ingest.sparkplug.schema import DataType
from edge.settings import BufferSettings, IngestLimits
from tests.unit.test_codec_pipeline import NOW_MS, Pipeline, _spb


class Acks:
    def __init__(self) -> None:
        self.tokens: list[int] = []

    def acknowledge(self, tokens: list[int]) -> None:
        self.tokens += tokens

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.tokens) < count:
                await asyncio.sleep(0.005)


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _message(asset: str, temp: float) -> tuple[str, bytes]:
    return f"plant/l1/{asset}", orjson.dumps({"ts": NOW_MS, "values": {"temp": temp},
                                                   "state": "RUN"})


async def test_a_decoder_bug_quarantines_that_message_and_its_neighbours_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_read = CodecReader.read

    def read(self: CodecReader, context: Any, source: str, payload: bytes, received_us: int) -> Any:
        if source.endswith("poison"):
            raise KeyError("a bug in a decoder")
        return real_read(self, context, source, payload, received_us)

    monkeypatch.setattr(CodecReader, "read", read)
    acks = Acks()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer, \
            Pipeline(buffer) as p:
        for token, (topic, payload) in enumerate(
                [_message("pump-1", 1.0), _message("poison", 2.0), _message("pump-2", 3.0)]):
            p.pipeline.submit(topic, payload, acks, token)  # type: ignore[arg-type]
        await acks.wait_for(3)
    assert _rows(buffer.path, "SELECT sensor_id, value FROM readings ORDER BY seq") == \
        [("pump-1/temp", 1.0), ("pump-2/temp", 3.0)]
    [(source, reason, detail)] = _rows(buffer.path, "SELECT source, reason, detail FROM quarantine")
    assert (source, reason) == ("plant/l1/poison", "decode_error") and "KeyError" in detail
    assert sorted(acks.tokens) == [0, 1, 2]


async def test_a_batch_the_buffer_will_not_take_commits_message_by_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    acks = Acks()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        real_commit = buffer.readings.commit_batch

        async def commit(readings: Any, *args: Any) -> Any:
            if any(r.value == 666.0 for r in readings):
                raise ValueError("a value the buffer cannot encode")
            return await real_commit(readings, *args)

        monkeypatch.setattr(buffer.readings, "commit_batch", commit)
        async with Pipeline(buffer) as p:
            for token, (topic, payload) in enumerate(
                    [_message("pump-1", 1.0), _message("pump-9", 666.0), _message("pump-2", 3.0)]):
                p.pipeline.submit(topic, payload, acks, token)  # type: ignore[arg-type]
            await acks.wait_for(3)
            health = p.pipeline.health(30)
    assert _rows(buffer.path, "SELECT sensor_id, value FROM readings ORDER BY seq") == \
        [("pump-1/temp", 1.0), ("pump-2/temp", 3.0)]
    [(source, reason, detail)] = _rows(buffer.path, "SELECT source, reason, detail FROM quarantine")
    assert (source, reason) == ("plant/l1/pump-9", "unstorable") and "ValueError" in detail
    assert sorted(acks.tokens) == [0, 1, 2]
    assert health.commit_errors == 1 and health.quarantined == 1


async def test_a_large_birth_is_taken_and_its_data_decodes(tmp_path: Path) -> None:
    """A birth names every metric with its properties (1,500 tags are ~150 KB): births have
    their own limit, `sparkplug.max_birth_bytes`, not `ingest.max_payload_bytes` (review F12)."""
    metrics: list[dict[str, Any]] = [{"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1}]
    metrics += [{"name": f"Line 3/Cell {n // 100}/Temperature sensor {n:04d}", "alias": n + 1,
                 "datatype": DataType.DOUBLE, "double_value": float(n)} for n in range(1500)]
    birth = _spb(0, metrics)
    assert len(birth) > IngestLimits().max_payload_bytes
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer, \
            Pipeline(buffer) as p:
        await p.send(("spBv1.0/G1/NBIRTH/N1", birth),
                     ("spBv1.0/G1/NDATA/N1", _spb(1, [{"alias": 1500, "double_value": 7.5,
                                                            "timestamp": NOW_MS + 1000}])))
    assert _rows(buffer.path, "SELECT count(*) FROM quarantine") == [(0,)]
    assert ("G1/N1/Line_3/Cell_14/Temperature_sensor_1499", 7.5) in _rows(
        buffer.path, "SELECT sensor_id, value FROM readings")
