"""Silence: no reading for `factor` times the sensor's observed period (dead sensor or PLC).

Unlike the others this detector is driven by the clock: `update` records arrivals, and
`check(now)` is called periodically.
"""

from __future__ import annotations

from edge.detection.finding import Finding
from edge.detection.settings import SilenceSettings


class SilenceDetector:
    name = "silence"

    def __init__(self, settings: SilenceSettings) -> None:
        self._factor = settings.factor
        self._min_gap_s = settings.min_gap_s
        self._min_intervals = settings.min_intervals
        self._last: float | None = None
        self._period_s = 0.0
        self._intervals = 0

    def update(self, ts: float, value: float) -> Finding | None:
        last = self._last
        self._last = ts
        if last is None or ts <= last:
            return None
        interval = ts - last
        # A gap (the silence itself) must not teach us a longer period.
        if self._intervals < self._min_intervals or interval < 3 * self._period_s:
            self._period_s = interval if self._intervals == 0 else \
                self._period_s + 0.1 * (interval - self._period_s)
            self._intervals += 1
        return None

    def check(self, now: float) -> Finding | None:
        if self._last is None or self._intervals < self._min_intervals:
            return None
        silent_s = now - self._last
        allowed_s = max(self._factor * self._period_s, self._min_gap_s)
        if silent_s <= allowed_s:
            return None
        return Finding(self.name, "critical", silent_s / self._period_s, float("nan"), now,
                       f"no reading for {silent_s:.0f} s (usually every {self._period_s:.1f} s)",
                       {"last_reading": self._last, "period_s": self._period_s})

    @property
    def last_seen(self) -> float | None:
        return self._last
