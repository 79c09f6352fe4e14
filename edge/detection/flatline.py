"""Stuck sensor: the same value, within epsilon, for N readings and at least T seconds."""

from __future__ import annotations

from edge.detection.finding import Finding
from edge.detection.settings import FlatlineSettings


class FlatlineDetector:
    name = "flatline"

    def __init__(self, settings: FlatlineSettings) -> None:
        self._readings = settings.readings
        self._min_duration_s = settings.min_duration_s
        self._epsilon = settings.epsilon
        self._anchor: float | None = None
        self._since = 0.0
        self._count = 0

    def update(self, ts: float, value: float) -> Finding | None:
        anchor = self._anchor
        if anchor is None or abs(value - anchor) > self._epsilon + 1e-12 * abs(anchor):
            self._anchor, self._since, self._count = value, ts, 1
            return None
        self._count += 1
        if self._count < self._readings or ts - self._since < self._min_duration_s:
            return None
        return Finding(self.name, "warning", float(self._count), value, ts,
                       f"value stuck at {value:g} for {self._count} readings "
                       f"({ts - self._since:.0f} s)", {"since": self._since, "readings": self._count})
