"""The benchmark measures the product: `nab_flags` flags exactly the rows where the real
AnomalyDetectionAgent, fed the same series through the real bus, opens alerts."""

from __future__ import annotations

import asyncio
import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.benchmark import NAB_SENSOR, nab_flags, nab_likelihood
from edge.detection.settings import DetectionSettings
from edge.events import AnomalyDetectedEvent, BaseEventModel, DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings

NAB = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nab-dev" / "data"
NAB_FILES = ("realTraffic/speed_7578.csv", "realAdExchange/exchange-3_cpc_results.csv",
             "realTraffic/occupancy_6005.csv")
BATCH = 100


def _synthetic() -> tuple[list[datetime], np.ndarray]:
    """A heavy-tailed, skewed series with a daily swing, a level shift and two spikes."""
    rng = random.Random(11)
    start = datetime(2024, 3, 1, tzinfo=UTC).replace(tzinfo=None)
    times = [start + timedelta(minutes=5 * i) for i in range(3000)]
    values = [20 + 5 * math.sin(2 * math.pi * i / 288) + rng.lognormvariate(0, 0.6)
              for i in range(3000)]
    values[1500] += 80
    values[2100] += 60
    for i in range(2500, 2700):
        values[i] += 25
    return times, np.array(values)


def _nab(rel: str) -> tuple[list[datetime], np.ndarray]:
    with (NAB / rel).open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    return ([datetime.fromisoformat(r["timestamp"].strip()) for r in rows],
            np.array([float(r["value"]) for r in rows]))


SERIES = ["synthetic"] + [rel for rel in NAB_FILES if (NAB / rel).exists()]


async def _agent_openings(tmp_path: Path, times: list[datetime], values: np.ndarray) -> set[int]:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    opened: list[AnomalyDetectedEvent] = []

    async def record(event: BaseEventModel) -> None:
        if isinstance(event, AnomalyDetectedEvent) and event.state == "open":
            opened.append(event)

    bus.subscribe("recorder", (AnomalyDetectedEvent,), record, queue_size=100_000)
    row_of = {round(t.replace(tzinfo=UTC).timestamp() * 1e6): row for row, t in enumerate(times)}
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = AnomalyDetectionAgent(
            "anomaly-detection", bus, metrics, gateway_id="benchmark",
            settings=DetectionSettings(silence_check_interval_s=3600), sensors={},
            alerts=buffer.alerts, readings=buffer.readings, positions=buffer.meta)
        agent.queue_size = 100_000  # this test compares decisions, not overflow handling
        await agent.start()
        await bus.start()
        readings = [Reading(NAB_SENSOR, None, ts_us, float(v), None, None, 0, ts_us)
                    for ts_us, v in zip(row_of, values, strict=True)]
        for first in range(0, len(readings), BATCH):
            batch = tuple(readings[first:first + BATCH])
            await bus.publish(DataProcessedEvent(source="test", readings=batch,
                                                 first_seq=first + 1,
                                                 last_seq=first + len(batch)))
        assert await bus.drain(60)
        await agent.stop()
        await bus.stop()
    return {row_of[round(e.opened_at.timestamp() * 1e6)] for e in opened}


@pytest.mark.parametrize("series", SERIES)
async def test_nab_flags_are_the_agents_alert_openings(tmp_path: Path, series: str) -> None:
    times, values = _synthetic() if series == "synthetic" else _nab(series)
    flagged = {int(row) for row in np.flatnonzero(nab_flags(times, values))}
    assert flagged, "the series must open some alert, or the comparison proves nothing"
    assert await asyncio.wait_for(_agent_openings(tmp_path, times, values), 120) == flagged


def test_the_dataset_part_runs_when_the_datasets_are_here() -> None:
    if NAB.parent.parent.exists():
        assert len(SERIES) == 1 + len(NAB_FILES)


def test_the_likelihood_scores_rank_the_spikes_of_the_synthetic_series_high() -> None:
    """The optimised-threshold figure's scores: every row an alert opened at scores above 0,
    and the two spikes rank in the top tenth (with the level shift's rows)."""
    times, values = _synthetic()
    scores = nab_likelihood(times, values)
    assert ((scores >= 0) & (scores < 1)).all()
    assert set(np.flatnonzero(nab_flags(times, values))) <= set(np.flatnonzero(scores > 0))
    assert min(scores[1500], scores[2100]) > np.quantile(scores, 0.9)
