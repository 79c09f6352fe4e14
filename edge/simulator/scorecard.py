"""Detection scorecard: the simulator's labelled faults against the engine's alerts.

Offline, no broker: the factory stream goes through the same `DetectionEngine` as the
AnomalyDetectionAgent, with the default settings, the sensors' datasheet limits and a clock
tick per time step (silence). A fault counts as detected when an alert on its sensor opens
between its start and `grace_readings` after its end; time to detect is in readings, 1 meaning
the first faulty reading. Precision for a fault kind is the alerts that matched faults of that
kind over those plus the unmatched alerts of the kind's detector.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

from edge.detection.engine import DetectionEngine
from edge.detection.profiles import SensorProfile
from edge.detection.settings import DetectionSettings
from edge.simulator.factory import FAULT_KINDS, FactoryModel, Fault

# The detector meant to catch each fault kind (for precision).
KIND_DETECTORS: dict[str, str] = {"spike": "outlier", "noise_burst": "outlier", "drift": "drift",
                                  "stuck": "flatline", "dropout": "silence",
                                  "out_of_range": "limits", "relation_break": "asset_model"}
START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class OpenedAlert:
    sensor_id: str
    detector: str
    ts: float


@dataclass
class KindScore:
    faults: int = 0
    detected: int = 0
    matched_alerts: int = 0
    false_alerts: int = 0
    readings_to_detect: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.faults if self.faults else float("nan")

    @property
    def precision(self) -> float:
        total = self.matched_alerts + self.false_alerts
        return self.matched_alerts / total if total else float("nan")

    @property
    def median_readings_to_detect(self) -> float:
        return statistics.median(self.readings_to_detect) if self.readings_to_detect else float("nan")


def engine_for(model: FactoryModel, settings: DetectionSettings | None = None,
               gateway_id: str = "scorecard") -> DetectionEngine:
    """A DetectionEngine configured as the daemon would be for the simulated factory."""
    settings = settings or DetectionSettings()
    profiles = {s.sensor_id: SensorProfile.build(settings, limits=s.limits, asset_id=s.asset_id)
                for s in model.sensors}
    return DetectionEngine(gateway_id, settings, profiles)


def run_detectors(model: FactoryModel, duration_s: float, faults: list[Fault],
                  settings: DetectionSettings | None = None) -> list[OpenedAlert]:
    """Every alert the engine opens on the model's stream."""
    engine = engine_for(model, settings)
    opened: list[OpenedAlert] = []
    current_ts = None
    for ts, spec, value in model.stream(START_TS, duration_s, faults):
        if ts != current_ts:
            current_ts = ts
            opened += [OpenedAlert(c.alert.sensor_id, c.alert.detector, ts)
                       for c in engine.tick(ts) if c.change == "open"]
        opened += [OpenedAlert(c.alert.sensor_id, c.alert.detector, ts)
                   for c in engine.observe(spec.sensor_id, spec.asset_id, ts, value)
                   if c.change == "open"]
    return opened


def score(faults: list[Fault], alerts: list[OpenedAlert], period_s: float,
          grace_readings: int = 20) -> dict[str, KindScore]:
    scores: dict[str, KindScore] = {kind: KindScore() for kind in FAULT_KINDS}
    by_sensor: dict[str, list[Fault]] = defaultdict(list)
    for fault in faults:
        by_sensor[fault.sensor_id].append(fault)
        scores[fault.kind].faults += 1
    first_alert: dict[Fault, float] = {}
    for alert in alerts:
        matched = next((f for f in by_sensor.get(alert.sensor_id, ())
                        if f.start <= alert.ts <= f.end + grace_readings * period_s), None)
        if matched is None:
            for kind, detector in KIND_DETECTORS.items():
                if detector == alert.detector:
                    scores[kind].false_alerts += 1
            continue
        scores[matched.kind].matched_alerts += 1
        first_alert[matched] = min(first_alert.get(matched, alert.ts), alert.ts)
    for fault, ts in first_alert.items():
        scores[fault.kind].detected += 1
        scores[fault.kind].readings_to_detect.append(int((ts - fault.start) // period_s) + 1)
    return scores


def false_alerts_per_sensor_day(model: FactoryModel, days: float) -> float:
    alerts = run_detectors(model, days * 86_400, [])
    return len(alerts) / (len(model.sensors) * days)


def cost_us_per_reading(sensors: int = 1000, readings_per_sensor: int = 400,
                        sensors_per_asset: int = 10) -> float:
    """The whole engine (sensor models, asset models, validation, alert tracking) in
    microseconds a reading, for `sensors` sensors in assets of `sensors_per_asset`."""
    engine = DetectionEngine("cost", DetectionSettings())
    rng = random.Random(1)
    ids = [f"s{n}" for n in range(sensors)]
    assets = [f"a{n // sensors_per_asset}" for n in range(sensors)]
    values = [[50 + rng.gauss(0, 1) for _ in range(readings_per_sensor)] for _ in range(sensors)]
    started = time.perf_counter()
    for step in range(readings_per_sensor):
        ts = START_TS + step
        for index in range(sensors):
            engine.observe(ids[index], assets[index], ts, values[index][step])
    elapsed = time.perf_counter() - started
    return elapsed / (sensors * readings_per_sensor) * 1e6
