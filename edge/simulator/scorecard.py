"""Detection scorecard: the simulator's labelled faults against the detectors' alerts.

Offline, no broker: the factory stream goes through the same DetectorSuite and
AlertTracker as the AnomalyDetectionAgent. A fault counts as detected when an alert on its
sensor opens between its start and `grace_readings` after its end; time to detect is in
readings, 1 meaning the first faulty reading. Precision for a fault kind is the alerts that
matched faults of that kind over those plus the unmatched alerts of the kind's detectors.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

from edge.detection.lifecycle import AlertTracker
from edge.detection.settings import DetectionSettings
from edge.detection.suite import DetectorSuite
from edge.simulator.factory import FAULT_KINDS, FactoryModel, Fault, SensorSpec

# The detector meant to catch each fault kind (for precision).
KIND_DETECTORS: dict[str, str] = {"spike": "zscore", "noise_burst": "zscore", "drift": "drift",
                                  "stuck": "flatline", "dropout": "silence",
                                  "out_of_range": "limits"}
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


def run_detectors(model: FactoryModel, duration_s: float, faults: list[Fault],
                  settings: DetectionSettings | None = None) -> list[OpenedAlert]:
    """Every alert the detectors open on the model's stream."""
    settings = settings or DetectionSettings()
    suites = {s.sensor_id: DetectorSuite(settings.defaults, s.limits) for s in model.sensors}
    tracker = AlertTracker("scorecard", settings)
    opened: list[OpenedAlert] = []
    current_ts = None
    for ts, spec, value in model.stream(START_TS, duration_s, faults):
        if ts != current_ts:
            current_ts = ts
            _check_silence(suites, tracker, model.sensors, ts, opened)
        findings = suites[spec.sensor_id].update(ts, value, ts)
        for change in tracker.observe(spec.sensor_id, spec.asset_id, ts, findings):
            if change.change == "open":
                opened.append(OpenedAlert(spec.sensor_id, change.alert.detector, ts))
    return opened


def _check_silence(suites: dict[str, DetectorSuite], tracker: AlertTracker,
                   sensors: tuple[SensorSpec, ...], now: float, opened: list[OpenedAlert]) -> None:
    for spec in sensors:
        finding = suites[spec.sensor_id].check_silence(now)
        if finding is not None:
            for change in tracker.observe(spec.sensor_id, spec.asset_id, now, (finding,)):
                if change.change == "open":
                    opened.append(OpenedAlert(spec.sensor_id, "silence", now))


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


def cost_us_per_reading(sensors: int = 1000, readings_per_sensor: int = 200) -> float:
    """Detector suites plus alert tracking, for `sensors` sensors, in microseconds a reading."""
    import random

    settings = DetectionSettings()
    rng = random.Random(1)
    suites = [DetectorSuite(settings.defaults, None) for _ in range(sensors)]
    tracker = AlertTracker("cost", settings)
    ids = [f"s{n}" for n in range(sensors)]
    values = [[50 + rng.gauss(0, 1) for _ in range(readings_per_sensor)] for _ in range(sensors)]
    started = time.perf_counter()
    for step in range(readings_per_sensor):
        ts = START_TS + step
        for index in range(sensors):
            sensor_id = ids[index]
            findings = suites[index].update(ts, values[index][step], ts)
            if findings:
                tracker.observe(sensor_id, None, ts, findings)
    elapsed = time.perf_counter() - started
    return elapsed / (sensors * readings_per_sensor) * 1e6
