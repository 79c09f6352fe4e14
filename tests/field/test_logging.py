"""Field trial item 14: log lines carry their fields in text mode, no ANSI in JSON, no floods."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import DataProcessedEvent
from edge.logs import RateLimitedLog, configure_logging
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
    assert len(opened) <= 2, f"{len(opened)} 'alert opened' lines for one detector"
    # Review of item 14: the count of suppressed lines was printed only with the next line,
    # so after a burst of 200 alerts 199 never appeared; the agent's stop reports them.
    assert _occurrences(opened) == 200, opened


def _occurrences(records: list[dict[str, Any]]) -> int:
    """What the lines stand for: each line's own occurrence (a summary has none) plus the
    occurrences it reports as suppressed."""
    return sum((0 if record.get("summary") else 1) + record["suppressed_since_last"]
               for record in records)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(dict(record.__dict__))


def test_suppressed_counts_are_reported_when_the_interval_ends_without_another_line() -> None:
    """Review of item 14: a burst, then silence: the suppressed count never appeared."""
    logger = logging.getLogger("test.rate_limited.timer")
    handler = _Records()
    logger.addHandler(handler)
    try:
        limited = RateLimitedLog(logger, interval_s=0.3)
        for n in range(200):
            limited.warning("burst", "alert opened", n=n)
        time.sleep(1.0)  # nothing else is logged: the interval's end reports the rest
        assert len(handler.records) == 2, [r["msg"] for r in handler.records]
        assert _occurrences(handler.records) == 200
        assert handler.records[1]["summary"] and handler.records[1]["n"] == 199
    finally:
        logger.removeHandler(handler)


def test_suppressed_counts_come_with_a_line_of_any_key_and_at_shutdown() -> None:
    """Review of item 14: the counts add up to the total, whatever ends the interval."""
    logger = logging.getLogger("test.rate_limited.keys")
    handler = _Records()
    logger.addHandler(handler)
    try:
        limited = RateLimitedLog(logger, interval_s=0.2)
        for _ in range(5):
            limited.warning("a", "problem a")
        time.sleep(0.25)
        limited.warning("b", "problem b")  # any key's call reports what `a` held back
        for _ in range(7):
            limited.warning("b", "problem b")
        limited.flush()  # shutdown: no wait for the interval
        by_message: dict[str, int] = {}
        for record in handler.records:
            by_message[record["msg"]] = by_message.get(record["msg"], 0) + _occurrences([record])
        assert by_message == {"problem a": 5, "problem b": 8}, handler.records
    finally:
        logger.removeHandler(handler)
