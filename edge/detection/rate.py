"""Rate of change above a configured slope (units per second)."""

from __future__ import annotations

from typing import ClassVar

from edge.detection.finding import Finding


class RateOfChangeDetector:
    name: ClassVar[str] = "rate"

    def __init__(self, max_per_s: float) -> None:
        self._max_per_s = max_per_s
        self._previous: tuple[float, float] | None = None

    def update(self, ts: float, value: float) -> Finding | None:
        previous = self._previous
        self._previous = (ts, value)
        if previous is None or ts <= previous[0]:
            return None
        slope = (value - previous[1]) / (ts - previous[0])
        if abs(slope) <= self._max_per_s:
            return None
        ratio = abs(slope) / self._max_per_s
        return Finding(self.name, "critical" if ratio >= 3 else "warning", ratio, value, ts,
                       f"changing at {slope:+g}/s, limit {self._max_per_s:g}/s",
                       {"slope_per_s": slope, "previous": previous[1]})
