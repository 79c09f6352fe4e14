"""Field trial item 14: log lines carry their fields in text mode, no ANSI in JSON, no floods."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import DataProcessedEvent
from edge.logs import configure_logging
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, SensorSettings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield stream
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def _configure(fmt: str, stream: io.StringIO) -> None:
    configure_logging("gw-1", "INFO", fmt)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]


def test_text_logs_show_the_structured_fields_as_key_value(captured: io.StringIO) -> None:
    """Item 14: 'alert opened' in text mode carried no sensor, task or error."""
    _configure("text", captured)
    logging.getLogger("edge.agents.anomaly").warning(
        "alert opened", extra={"sensor_id": "pump-3/temp", "detector": "limits"})
    line = captured.getvalue().strip()
    assert "alert opened" in line and "sensor_id=pump-3/temp" in line and "detector=limits" in line


def test_json_logs_drop_uvicorns_color_message(captured: io.StringIO) -> None:
    """Item 14: JSON logs carried uvicorn's color_message with ANSI escapes."""
    _configure("json", captured)
    logging.getLogger("uvicorn.error").info(
        "Started server process", extra={"color_message": "Started server process [\x1b[36m1\x1b[0m]"})
    record = json.loads(captured.getvalue())
    assert "color_message" not in record and "\x1b" not in captured.getvalue()


async def test_alert_opened_is_rate_limited_per_detector_with_a_count(
    tmp_path: Path, captured: io.StringIO,
) -> None:
    """Item 14: 'alert opened' was not rate-limited (905 lines in one run)."""
    _configure("json", captured)
    metrics = GatewayMetrics()
    sensors = {f"s{n}": SensorSettings(limits=LimitSettings(max=90.0)) for n in range(200)}
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
            settings=DetectionSettings(), sensors=sensors, alerts=buffer.alerts,
            readings=buffer.readings, positions=buffer.meta)
        await agent.start()
        now_us = 1_795_000_000_000_000
        readings = tuple(Reading(f"s{n}", None, now_us + n, 99.0, None, None, 0, now_us + n)
                         for n in range(200))
        result = await buffer.readings.commit_batch(readings, [])
        await agent.process(DataProcessedEvent(source="t", readings=readings,
                                               first_seq=result.first_seq, last_seq=result.last_seq))
        await agent.stop()
    opened = [json.loads(line) for line in captured.getvalue().splitlines()
              if json.loads(line).get("message") == "alert opened"]
    assert metrics.anomalies.labels("limits", "critical")._value.get() == 200
    assert len(opened) == 1, f"{len(opened)} 'alert opened' lines for one detector"
