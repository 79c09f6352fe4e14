"""Seasonal baseline: a sensor's daily (and weekly) profile, used only if the sensor has one.

A period is split into bins (a day: 48 half-hours; a week: 168 hours); each bin's mean level is
averaged over cycles (EWMA, `cycle_alpha`). A profile *explains* the sensor when predicting a
bin's mean level from the previous cycles' profile (plus a slowly tracked offset), out of
sample, errs at most half as much in mean square as predicting it by the flat baseline, over at
least a quarter of a cycle of such predictions; it is switched off again above 80 %. So a daily
cycle is recognised some six hours into the second day, a weekly one in the second week.

While a profile is active the drift detector judges the seasonal residual, so daily and weekly
cycles (shifts, traffic, day and night load) are the expected level rather than a drift.
"""

from __future__ import annotations

from array import array
from typing import Any

from edge.detection.snapshot import pack, unpack

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
_ON_RATIO = 0.5
_OFF_RATIO = 0.8


class SeasonalProfile:
    __slots__ = ("_bin_s", "_bins", "_compared", "_count", "_coverage_done", "_current",
                 "_cycle_alpha", "_err_flat", "_err_seasonal", "_feeds", "_offset", "_profile",
                 "_seen", "_sum", "active", "period_s")

    def __init__(self, period_s: float, bins: int, cycle_alpha: float = 0.3,
                 feeds: SeasonalProfile | None = None) -> None:
        self.period_s = period_s
        self._feeds = feeds  # a longer profile fed with this one's bin means (daily -> weekly)
        self._bins = bins
        self._bin_s = period_s / bins
        self._cycle_alpha = cycle_alpha
        self._profile = array("d", [0.0]) * bins
        self._seen = array("H", [0]) * bins  # cycles each bin has seen (capped)
        self._current = -1  # absolute bin number being accumulated
        self._sum = 0.0
        self._count = 0
        self._offset = 0.0
        self._err_flat = 0.0
        self._err_seasonal = 0.0
        self._compared = 0  # bins predicted out of sample so far
        self._coverage_done = False
        self.active = False

    def expected(self, ts: float) -> float:
        """The profile's level at `ts` (linear between bin centres), offset included."""
        position = ts / self._bin_s - 0.5
        low = int(position // 1)
        frac = position - low
        profile = self._profile
        a, b = profile[low % self._bins], profile[(low + 1) % self._bins]
        return a + frac * (b - a) + self._offset

    def add(self, ts: float, x: float, flat_level: float) -> None:
        """Accumulate a normal reading; `flat_level` is the flat baseline it competes with."""
        current = int(ts // self._bin_s)
        if current != self._current:
            if self._count:
                self._close(self._current, self._sum / self._count, flat_level)
            self._current, self._sum, self._count = current, 0.0, 0
        self._sum += x
        self._count += 1

    def _close(self, absolute_bin: int, mean: float, flat_level: float) -> None:
        if self._feeds is not None:
            self._feeds.add((absolute_bin + 0.5) * self._bin_s, mean, flat_level)
        slot = absolute_bin % self._bins
        seen = self._seen[slot]
        if seen >= 1 and self._covered():
            # Out of sample: the previous cycles' profile predicts this bin before it learns it.
            predicted = self._profile[slot] + self._offset
            error = mean - predicted
            self._offset += 0.05 * error
            self._compared += 1
            alpha = max(2.0 / (self._bins + 1), 1.0 / self._compared)
            self._err_seasonal += alpha * (error * error - self._err_seasonal)
            flat_error = mean - flat_level
            self._err_flat += alpha * (flat_error * flat_error - self._err_flat)
            ratio = self._err_seasonal / self._err_flat if self._err_flat > 0 else 1.0
            self.active = self._compared >= self._bins // 4 and \
                ratio < (_OFF_RATIO if self.active else _ON_RATIO)
        if seen == 0:
            self._profile[slot] = mean - self._offset
        else:
            self._profile[slot] += self._cycle_alpha * (mean - self._offset - self._profile[slot])
        if seen < 65_535:
            self._seen[slot] = seen + 1

    def _covered(self) -> bool:
        """Nine bins in ten have seen a cycle (gaps in the data leave a few bins short)."""
        if self._coverage_done:
            return True
        self._coverage_done = sum(1 for seen in self._seen if seen >= 1) >= 0.9 * self._bins
        return self._coverage_done

    def state(self) -> dict[str, Any]:
        return {"profile": pack(self._profile), "seen": pack(self._seen),
                "current": self._current, "sum": self._sum, "count": self._count,
                "offset": self._offset, "err_flat": self._err_flat, "compared": self._compared,
                "err_seasonal": self._err_seasonal, "active": self.active}

    def load(self, state: dict[str, Any]) -> None:
        profile = unpack(state["profile"], "d")
        seen = unpack(state["seen"], "H")
        if len(profile) != self._bins or len(seen) != self._bins:
            raise ValueError("seasonal profile has the wrong number of bins")
        self._profile, self._seen = profile, seen
        self._current, self._sum, self._count = int(state["current"]), float(state["sum"]), \
            int(state["count"])
        self._offset = float(state["offset"])
        self._err_flat, self._err_seasonal = float(state["err_flat"]), float(state["err_seasonal"])
        self._compared = int(state["compared"])
        self._coverage_done = False
        self.active = bool(state["active"])
