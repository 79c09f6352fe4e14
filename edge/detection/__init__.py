"""Streaming detectors: pure computation, one reading at a time, O(1) amortised each.

Each detector is a plain class with `update(ts, value) -> Finding | None`; no I/O, no
asyncio. `DetectorSuite` runs one sensor's detectors; `SensorDetectors` keeps a suite per
sensor, built from the defaults and the sensor's overrides.
"""

from edge.detection.finding import SEVERITY_RANK, Finding, Severity
from edge.detection.settings import DetectionSettings, DetectorSettings, LimitSettings
from edge.detection.suite import NO_FINDINGS, DetectorSuite

__all__ = [
    "NO_FINDINGS",
    "SEVERITY_RANK",
    "DetectionSettings",
    "DetectorSettings",
    "DetectorSuite",
    "Finding",
    "LimitSettings",
    "Severity",
]
