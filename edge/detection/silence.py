"""Silence: no reading for `factor` times the sensor's period (a dead sensor or PLC).

Unlike the others this detector is driven by the clock: `update` records readings, and
`check(now)` is called periodically. The period comes from the readings' own timestamps.
Silence is judged only for a sensor that reports live: its readings arrive about as fast
as their timestamps advance (averaged over recent intervals, so a publisher that batches a
few readings is still live). A burst or a backfill of old readings (they arrive far faster
than their timestamps advance) teaches nothing about liveness, so it never opens a silence
alert (field trial item 10); live readings afterwards make the sensor judged again.
"""

from __future__ import annotations

from edge.detection.finding import Finding
from edge.detection.settings import SilenceSettings

_ALPHA = 0.1
_LIVE_RATIO = (0.5, 2.0)  # arrival pace / timestamp pace for "reporting live"


class SilenceDetector:
    name = "silence"

    def __init__(self, settings: SilenceSettings) -> None:
        self._factor = settings.factor
        self._min_gap_s = settings.min_gap_s
        self._min_intervals = settings.min_intervals
        self._last_ts: float | None = None
        self._last_arrival = 0.0
        self._period_s = 0.0  # EWMA of timestamp steps
        self._arrival_step_s = 0.0  # EWMA of arrival steps over the same intervals
        self._intervals = 0

    def update(self, ts: float, arrival: float) -> None:
        last_ts = self._last_ts
        if last_ts is not None and ts <= last_ts:
            return  # a repeat or out of order: no interval to learn from
        previous_arrival = self._last_arrival
        self._last_ts, self._last_arrival = ts, arrival
        if last_ts is None:
            return
        step = ts - last_ts
        # A gap (the silence itself) must not teach us a longer period.
        if self._intervals >= self._min_intervals and step >= 3 * self._period_s:
            return
        arrival_step = max(0.0, arrival - previous_arrival)
        if self._intervals == 0:
            self._period_s, self._arrival_step_s = step, arrival_step
        else:
            self._period_s += _ALPHA * (step - self._period_s)
            self._arrival_step_s += _ALPHA * (arrival_step - self._arrival_step_s)
        self._intervals += 1

    @property
    def live(self) -> bool:
        """Enough intervals seen, arriving about as fast as the timestamps advance."""
        if self._intervals < self._min_intervals or self._period_s <= 0:
            return False
        low, high = _LIVE_RATIO
        return low <= self._arrival_step_s / self._period_s <= high

    def check(self, now: float) -> Finding | None:
        if self._last_ts is None or not self.live:
            return None
        silent_s = now - self._last_arrival
        allowed_s = max(self._factor * self._period_s, self._min_gap_s)
        if silent_s <= allowed_s:
            return None
        return Finding(self.name, "critical", silent_s / self._period_s, float("nan"), now,
                       f"no reading for {silent_s:.0f} s (usually every {self._period_s:.1f} s)",
                       {"last_reading": self._last_arrival, "period_s": self._period_s})

    @property
    def last_seen(self) -> float | None:
        return self._last_arrival if self._last_ts is not None else None
