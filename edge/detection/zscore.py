"""Robust rolling z-score: spikes and noise bursts against the median and MAD of a window."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from edge.detection.finding import Finding
from edge.detection.settings import ZScoreSettings

_MAD_TO_SIGMA = 1.4826
_REFRESH_EVERY = 16  # readings between MAD recomputations: amortised O(1) per reading


class RobustZScoreDetector:
    """|x - median| / (1.4826 * MAD) over the last `window` readings.

    The median comes from a sorted copy of the window (O(log n) search, C-speed shifts);
    the MAD is recomputed every 16 readings. When more than half the window holds one
    value (MAD 0: a stuck or coarsely quantised signal) the window is emptied and warms up
    again, and the scale never drops below half its typical value, so ordinary noise after
    a quiet or stuck stretch is not taken for spikes.
    """

    name = "zscore"

    def __init__(self, settings: ZScoreSettings) -> None:
        self._window = settings.window
        self._min_readings = settings.min_readings
        self._warning = settings.warning
        self._critical = settings.critical
        self._values: deque[float] = deque()
        self._sorted: list[float] = []
        self._scale = 0.0
        self._typical_scale = 0.0
        self._since_refresh = _REFRESH_EVERY
        self._degenerate = False

    def update(self, ts: float, value: float) -> Finding | None:
        finding = None
        ordered = self._sorted
        if len(ordered) >= self._min_readings:
            median = ordered[len(ordered) // 2]
            if self._since_refresh >= _REFRESH_EVERY:
                self._refresh_scale(median)
            z = (value - median) / self._scale
            if (z >= self._warning or -z >= self._warning) and not self._degenerate:
                finding = Finding(
                    self.name, "critical" if abs(z) >= self._critical else "warning", abs(z),
                    value, ts, f"value {value:g} is {abs(z):.1f} robust sigmas from the median "
                    f"{median:g}", {"median": median, "scale": self._scale, "readings": len(ordered)})
        insort(ordered, value)
        values = self._values
        values.append(value)
        if len(values) > self._window:
            del ordered[bisect_left(ordered, values.popleft())]
        self._since_refresh += 1
        return finding

    def _refresh_scale(self, median: float) -> None:
        deviations = sorted([abs(v - median) for v in self._sorted])
        scale = _MAD_TO_SIGMA * deviations[len(deviations) // 2]
        self._degenerate = scale == 0
        if self._degenerate:
            self._values.clear()
            self._sorted.clear()
        elif scale > 0:
            self._typical_scale = scale if self._typical_scale == 0 else \
                self._typical_scale + 0.05 * (scale - self._typical_scale)
        floor = max(0.5 * self._typical_scale, 1e-9 * (abs(median) + 1.0))
        self._scale = max(scale, floor)
        self._since_refresh = 0
