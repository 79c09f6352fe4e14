"""Silence: no reading for `factor` times the sensor's observed period (dead sensor or PLC).

Judged from reading time: the period is learned from the readings' own timestamps (a gap, the
silence itself, does not teach a longer period), and `check(now)` is called by the clock.
A sensor must first be seen *live* (a check that finds its newest reading within the allowed
gap) before its silence counts, so a sensor known only from a burst or backfill of old readings
never opens a silence alert, and neither does a sensor whose clock runs far behind.
"""

from __future__ import annotations

from typing import Any

from edge.detection.finding import Finding
from edge.detection.settings import SilenceSettings


class SilenceDetector:
    name = "silence"

    __slots__ = ("_factor", "_intervals", "_last", "_live", "_min_gap_s", "_min_intervals",
                 "_period_s")

    def __init__(self, settings: SilenceSettings) -> None:
        self._factor = settings.factor
        self._min_gap_s = settings.min_gap_s
        self._min_intervals = settings.min_intervals
        self._last: float | None = None
        self._period_s = 0.0
        self._intervals = 0
        self._live = False

    @property
    def period_s(self) -> float:
        return self._period_s

    @property
    def last_seen(self) -> float | None:
        return self._last

    def update(self, ts: float) -> None:
        last = self._last
        if last is not None and ts <= last:
            return
        self._last = ts
        if last is None:
            return
        interval = ts - last
        if self._intervals < self._min_intervals or interval < 3 * self._period_s:
            self._period_s = interval if self._intervals == 0 else \
                self._period_s + 0.1 * (interval - self._period_s)
            self._intervals += 1

    def check(self, now: float) -> Finding | None:
        if self._last is None or self._intervals < self._min_intervals:
            return None
        silent_s = now - self._last
        allowed_s = max(self._factor * self._period_s, self._min_gap_s)
        if silent_s <= allowed_s:
            self._live = True
            return None
        if not self._live:
            return None
        return Finding(self.name, "critical", silent_s / max(self._period_s, 1e-9), float("nan"),
                       now, f"no reading for {silent_s:.0f} s (usually every {self._period_s:.1f} s)",
                       {"last_reading": self._last, "period_s": self._period_s})

    def state(self) -> dict[str, Any]:
        return {"last": self._last, "period_s": self._period_s, "intervals": self._intervals}

    def load(self, state: dict[str, Any]) -> None:
        last = state["last"]
        self._last = None if last is None else float(last)
        self._period_s = float(state["period_s"])
        self._intervals = int(state["intervals"])
        self._live = False  # liveness is re-established by the clock after a restart
