"""Slow degradation: a sensor trends towards its limit over hours, and how early a forecast
said so. Pure code; `bench/detection.py` prints the figures, tests check the scoring.

The scenarios are seeded and frozen (`SCENARIO_SEED`), so the lead-time figures are
comparable across changes: each takes one factory sensor, lets the plant run fault-free for
`warmup_s`, then adds a monotonic ramp (linear, or accelerating as wear does) that takes
the sensor from its normal level past its datasheet `max` over 3 to 12 hours. The lead time
is the time from the forecast alert opening to the first reading beyond the limit; a
forecast that never opened before the crossing scores 0. False forecasts are counted on the
same plant without faults, per sensor-day.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from edge.prediction.predictor import Predictor
from edge.prediction.settings import PredictionSettings
from edge.simulator.factory import FactoryModel, SensorSpec

SCENARIO_SEED = 20261126
# A day and a half of normal running first: the forecaster knows the daily cycle.
WARMUP_S = 36 * 3600.0
Shape = Literal["linear", "accelerating"]


@dataclass(frozen=True, slots=True)
class Degradation:
    sensor: SensorSpec
    start: float
    duration_s: float
    shape: Shape
    overshoot: float  # noise sigmas beyond `max` at the end of the ramp

    def offset(self, ts: float) -> float:
        """What the fault adds at `ts` to a sensor's normal value."""
        if ts < self.start:
            return 0.0
        progress = min(1.0, (ts - self.start) / self.duration_s)
        if self.shape == "accelerating":
            progress *= progress
        limit = self.sensor.limits.max
        assert limit is not None
        typical = self.sensor.base + self.sensor.load_gain * 0.5
        return (limit - typical + self.overshoot * self.sensor.noise) * progress


def scenarios(model: FactoryModel, count: int, warmup_s: float,
              seed: int = SCENARIO_SEED) -> list[Degradation]:
    """`count` seeded degradations, one sensor each, in rotation over the plant's sensors."""
    rng = random.Random(seed)
    return [Degradation(sensor=model.sensors[index % len(model.sensors)], start=warmup_s,
                        duration_s=rng.uniform(3, 12) * 3600.0,
                        shape="linear" if index % 2 == 0 else "accelerating",
                        overshoot=rng.uniform(2.0, 6.0))
            for index in range(count)]


@dataclass(frozen=True, slots=True)
class LeadTimes:
    leads_s: list[float]  # per scenario; 0 when no forecast came before the crossing
    missed: int

    @property
    def median_s(self) -> float:
        return statistics.median(self.leads_s)

    @property
    def p10_s(self) -> float:
        return statistics.quantiles(self.leads_s, n=10, method="inclusive")[0]


def lead_times(settings: PredictionSettings, count: int = 40, seed: int = 1,
               period_s: float = 10.0) -> LeadTimes:
    """Lead time of the first forecast before the limit is crossed, per scenario."""
    warmup_s = WARMUP_S
    leads: list[float] = []
    for index, degradation in enumerate(scenarios(FactoryModel(seed=seed), count, warmup_s)):
        model = FactoryModel(seed=seed + index, period_s=period_s,
                             sensors=(degradation.sensor,))
        predictor = Predictor("bench", settings, {degradation.sensor.sensor_id:
                                                  degradation.sensor.limits})
        opened: float | None = None
        limit = degradation.sensor.limits.max
        assert limit is not None
        for ts, value in _degraded(model, degradation, warmup_s + degradation.duration_s):
            if value > limit and ts >= degradation.start:
                leads.append(ts - opened if opened is not None else 0.0)
                break
            predictor.observe(degradation.sensor.sensor_id, None, ts, value, None)
            opens = any(change.change == "open" for change in predictor.evaluate())
            if opens and opened is None and ts >= degradation.start:
                opened = ts  # one raised before the degradation began is a false forecast
        else:
            leads.append(0.0)  # the ramp ended short of the limit: nothing to forecast
    return LeadTimes(leads, missed=sum(1 for lead in leads if lead == 0.0))


def false_forecasts_per_sensor_day(settings: PredictionSettings, days: float = 7.0,
                                   seed: int = 3, period_s: float = 10.0) -> float:
    """Forecasts raised on the fault-free plant, per sensor and day."""
    model = FactoryModel(seed=seed, period_s=period_s)
    predictor = Predictor("bench", settings, {s.sensor_id: s.limits for s in model.sensors})
    raised = 0
    next_evaluation = 0.0
    for ts, spec, value in model.stream(0.0, days * 86_400.0):
        predictor.observe(spec.sensor_id, spec.asset_id, ts, value, spec.unit)
        if ts >= next_evaluation:
            raised += sum(1 for change in predictor.evaluate() if change.change == "open")
            next_evaluation = ts + settings.check_interval_s
    return raised / (len(model.sensors) * days)


def _degraded(model: FactoryModel, degradation: Degradation,
              duration_s: float) -> Iterator[tuple[float, float]]:
    spec = degradation.sensor
    for ts, _, value in model.stream(0.0, duration_s):
        shifted = value + degradation.offset(ts)
        yield ts, round(shifted / spec.resolution) * spec.resolution
