"""Field trial item 11: sensor cardinality is capped, counted and visible."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.errors import PayloadError
from edge.events import DataProcessedEvent
from edge.ingest.sensors import SensorRegistry
from edge.ingest.topics import TopicContext
from edge.ingest.validation import ReadingValidator
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, IngestLimits, SensorSettings
from tests.field.test_http import metric
from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_sensors_beyond_max_sensors_are_quarantined_counted_and_the_count_is_a_gauge(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 11: 150,000 distinct sensor ids took RSS from 77 to 281 MB with no cap, no metric."""
    gateway = make_gateway(ingest={"max_sensors": 2_000})
    gateway.start()
    assert gateway.process is not None
    before = _rss_mib(gateway.process.pid)
    publish_all(broker.port, [(f"factory/s1/asset-{k % 50}/sensor-{k}", b"1.5")
                              for k in range(30_000)])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 28_000, timeout_s=60) == 28_000
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM readings")[0][0] == 2_000
    reasons = buffer_rows(gateway.buffer_path, "SELECT DISTINCT reason FROM quarantine")
    assert reasons == [("too_many_sensors",)]
    assert metric(gateway, "edge_sensors_tracked") == 2_000
    assert metric(gateway, 'edge_readings_rejected_total{reason="too_many_sensors"}') == 28_000
    publish_all(broker.port, [("factory/s1/asset-1/sensor-1", b"2.5")])  # a known one goes on
    assert wait_for_rows(gateway.buffer_path, "readings", 2_001) == 2_001
    after = _rss_mib(gateway.process.pid)
    lines = [r for r in gateway.log_records() if r.get("reason") == "too_many_sensors"]
    assert 1 <= len(lines) <= 3, "logged once per interval, with a count"
    assert gateway.terminate() == 0
    print(f"reconciliation (sensor cap 2,000): published 30,001 / readings 2,001 / "
          f"quarantined too_many_sensors 28,000 / RSS {before:.0f} -> {after:.0f} MiB")


async def test_detection_gives_back_the_state_of_long_idle_sensors_but_not_with_an_open_alert(
    tmp_path: Path,
) -> None:
    """Item 11: per-sensor state that is idle for long is released."""
    now = time.time()
    metrics = GatewayMetrics()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
            settings=DetectionSettings(release_idle_s=3600), alerts=buffer.alerts,
            sensors={"hot": SensorSettings(limits=LimitSettings(max=90.0))},
            readings=buffer.readings, positions=buffer.meta, clock=lambda: now + 7200)
        await agent.start()
        readings = tuple(Reading(sensor, None, int((now - 10 + k) * 1e6), value, None, None, 0,
                                 int((now - 10 + k) * 1e6))
                         for k, (sensor, value) in enumerate([("quiet", 1.0), ("hot", 95.0)]))
        result = await buffer.readings.commit_batch(readings, [])
        await agent.process(DataProcessedEvent(source="t", readings=readings,
                                               first_seq=result.first_seq,
                                               last_seq=result.last_seq))
        assert agent.tracked_sensors == 2
        await agent.tick()  # two hours later
        assert agent.tracked_sensors == 1, "the idle sensor went, the one with an open alert stayed"
        await agent.stop()


def test_known_sensors_keep_their_places_after_a_restart(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 11: the registry lived in memory only; new ids queued at the broker
    while the gateway was stopped took every place at the restart, and the real sensors
    were quarantined as too_many_sensors."""
    gateway = make_gateway(ingest={"max_sensors": 5})
    gateway.start()
    real = [f"factory/s1/pump/t{k}" for k in range(5)]
    publish_all(broker.port, [(topic, b"1.0") for topic in real])
    assert wait_for_rows(gateway.buffer_path, "readings", 5) == 5
    assert gateway.terminate() == 0
    publish_all(broker.port, [(f"factory/s1/junk/x{k}", b"9.0") for k in range(10)])  # queued
    gateway.start()
    publish_all(broker.port, [(topic, b"2.0") for topic in real])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 10) == 10
    assert wait_for_rows(gateway.buffer_path, "readings", 10) == 10
    assert gateway.terminate() == 0
    stored = buffer_rows(gateway.buffer_path, "SELECT DISTINCT sensor_id FROM readings")
    assert sorted(s for (s,) in stored) == [f"pump/t{k}" for k in range(5)], stored
    quarantined = buffer_rows(gateway.buffer_path, "SELECT source, reason FROM quarantine")
    assert all(src.startswith("factory/s1/junk/") and reason == "too_many_sensors"
               for src, reason in quarantined), quarantined


def test_a_reading_rejected_after_the_sensor_check_takes_no_place() -> None:
    """Review of item 11: admit() ran before the timestamp and unit checks, so a rejected
    reading still took one of the ingest.max_sensors places."""
    registry = SensorRegistry(max_sensors=1, idle_release_s=3600, configured=())
    validator = ReadingValidator(IngestLimits(max_sensors=1), {
        "m/unit": SensorSettings(unit="degC")}, registry)
    context = TopicContext("t", None, None)
    now_us = int(time.time() * 1e6)
    rejected = [{"sensor_id": "m/future", "ts": now_us / 1e6 + 3600, "value": 1.0},
                {"sensor_id": "m/unit", "value": 1.0, "unit": "bar"},
                {"sensor_id": "m/ts", "ts": "yesterday", "value": 1.0},
                {"sensor_id": "m/quality", "value": 1.0, "quality": ["bad"]}]
    for item in rejected:
        with pytest.raises(PayloadError) as error:
            validator.validate(item, context, now_us)
        assert error.value.reason != "too_many_sensors"
    reading = validator.validate({"sensor_id": "m/real", "value": 1.0}, context, now_us)
    assert reading.sensor_id == "m/real" and len(registry) == 1
