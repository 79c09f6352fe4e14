"""DetectorSuite: every detector of one sensor, built from its effective settings."""

from __future__ import annotations

from typing import Protocol

from edge.detection.drift import DriftDetector
from edge.detection.finding import Finding
from edge.detection.flatline import FlatlineDetector
from edge.detection.limits import StaticLimitDetector
from edge.detection.rate import RateOfChangeDetector
from edge.detection.settings import DetectorSettings, LimitSettings
from edge.detection.silence import SilenceDetector
from edge.detection.zscore import RobustZScoreDetector

NO_FINDINGS: tuple[Finding, ...] = ()


class Detector(Protocol):
    name: str

    def update(self, ts: float, value: float) -> Finding | None: ...


class DetectorSuite:
    """Runs one sensor's detectors on each reading; out-of-order readings are skipped."""

    def __init__(self, settings: DetectorSettings, limits: LimitSettings | None) -> None:
        detectors: list[Detector] = []
        if limits is not None and limits.configured:
            detectors.append(StaticLimitDetector(limits))
        if settings.zscore.enabled:
            detectors.append(RobustZScoreDetector(settings.zscore))
        if settings.drift.enabled:
            detectors.append(DriftDetector(settings.drift))
        if settings.rate.max_per_s is not None:
            detectors.append(RateOfChangeDetector(settings.rate.max_per_s))
        if settings.flatline.enabled:
            detectors.append(FlatlineDetector(settings.flatline))
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self.names = frozenset(d.name for d in detectors) | (
            {SilenceDetector.name} if settings.silence.enabled else set())
        self.silence = SilenceDetector(settings.silence) if settings.silence.enabled else None
        self._last_ts = float("-inf")
        self.last_arrival = float("-inf")  # when a reading of this sensor last arrived

    def update(self, ts: float, value: float, arrival_ts: float) -> tuple[Finding, ...]:
        """Findings for one reading (usually none). `arrival_ts` feeds silence detection."""
        self.last_arrival = arrival_ts
        if self.silence is not None:
            self.silence.update(ts, arrival_ts)
        if ts <= self._last_ts:
            return NO_FINDINGS  # a redelivered or out-of-order reading: judged already
        self._last_ts = ts
        findings: tuple[Finding, ...] = NO_FINDINGS
        for detector in self.detectors:
            finding = detector.update(ts, value)
            if finding is not None:
                findings = (*findings, finding)
        return findings

    def check_silence(self, now: float) -> Finding | None:
        return self.silence.check(now) if self.silence is not None else None
