"""Benchmark entry points with the public scorers' signatures, driving the shipped defaults.

    .venv/bin/python ../shared/datasets/nab-dev/score.py --detector edge.detection.benchmark:nab_flags
    .venv/bin/python ../shared/datasets/skab-dev/score.py --detector edge.detection.benchmark:skab_in_alarm

Both run a fresh `DetectionEngine` with the default `DetectionSettings`, the same class and
settings the anomaly agent runs: `nab_flags` flags the rows where an alert opens (no threshold
is optimised), `skab_in_alarm` marks the rows where the asset has any open alert. Timestamps
are naive datetimes, read as UTC. `nab_likelihood` gives each row's highest anomaly likelihood,
for the scorer's optimised-threshold figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from edge.detection.engine import DetectionEngine
from edge.detection.settings import DetectionSettings

GATEWAY_ID = "benchmark"
NAB_SENSOR = "series"
SKAB_ASSET = "pump"


def _epoch(timestamp: datetime) -> float:
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.timestamp()


Values = Sequence[float] | np.ndarray


def nab_flags(timestamps: Sequence[datetime], values: Values,
              settings: DetectionSettings | None = None) -> np.ndarray:
    """One bool per row: an alert opened at this row (one univariate sensor, no asset)."""
    engine = DetectionEngine(GATEWAY_ID, settings)
    flags = np.zeros(len(values), dtype=bool)
    for row, (timestamp, value) in enumerate(zip(timestamps, values, strict=True)):
        for change in engine.observe(NAB_SENSOR, None, _epoch(timestamp), float(value)):
            if change.change == "open":
                flags[row] = True
    return flags


def nab_likelihood(timestamps: Sequence[datetime], values: Values,
                   settings: DetectionSettings | None = None) -> np.ndarray:
    """One score in [0, 1) per row, ordered as the highest anomaly likelihood any detector gave
    it: `r / (1 + r)` with `r = -log10(1 - likelihood)`, so that likelihoods too close to 1.0
    to tell apart in floating point keep their order (a threshold sweep needs only the order)."""
    engine = DetectionEngine(GATEWAY_ID, settings)
    scores = np.zeros(len(values))
    for row, (timestamp, value) in enumerate(zip(timestamps, values, strict=True)):
        rate = engine.reading_rate(NAB_SENSOR, None, _epoch(timestamp), float(value))
        if rate < math.inf:
            # 1 - likelihood = -expm1(-rate), computed without cancellation
            rarity = -math.log10(max(-math.expm1(-rate), 1e-300))
            scores[row] = max(rarity, 0.0) / (1.0 + max(rarity, 0.0))
    return scores


def skab_in_alarm(timestamps: Sequence[datetime], columns: Mapping[str, Values],
                  settings: DetectionSettings | None = None) -> np.ndarray:
    """One bool per row: the asset (all columns are its sensors) has an open alert."""
    engine = DetectionEngine(GATEWAY_ID, settings)
    names = list(columns)
    series = [np.asarray(columns[name], dtype=float) for name in names]
    alarm = np.zeros(len(timestamps), dtype=bool)
    for row, timestamp in enumerate(timestamps):
        ts = _epoch(timestamp)
        for name, values in zip(names, series, strict=True):
            engine.observe(name, SKAB_ASSET, ts, float(values[row]))
        alarm[row] = engine.open_count > 0
    return alarm
