"""Slow drift of the mean: a fast EWMA against a slow baseline, in units of the noise.

The noise sigma is estimated from successive differences (|x_t - x_t-1| / 1.128 for
Gaussian noise), which slow changes of the mean do not inflate. While the fast average
is away from the baseline, the baseline is frozen, so a slow ramp cannot drag it along
and hide itself; after `slow_span` frozen readings the new level is accepted.
"""

from __future__ import annotations

from edge.detection.finding import Finding
from edge.detection.settings import DriftSettings

_DIFF_TO_SIGMA = 1.128


class DriftDetector:
    name = "drift"

    def __init__(self, settings: DriftSettings) -> None:
        self._fast_alpha = 2.0 / (settings.fast_span + 1)
        self._slow_alpha = 2.0 / (settings.slow_span + 1)
        self._noise_alpha = 2.0 / (min(settings.slow_span, 200) + 1)
        self._max_frozen = settings.slow_span
        self._min_readings = settings.min_readings
        self._threshold = settings.threshold
        self._critical = settings.critical
        self._persist = settings.persist
        self._fast = self._slow = self._previous = 0.0
        self._abs_diff = 0.0
        self._count = 0
        self._streak = 0
        self._frozen = 0

    def update(self, ts: float, value: float) -> Finding | None:
        if self._count == 0:
            self._fast = self._slow = self._previous = value
            self._count = 1
            return None
        step = abs(value - self._previous)
        self._previous = value
        if step > 0:  # exact repeats (a stuck sensor) must not shrink the noise estimate
            self._abs_diff += self._noise_alpha * (step - self._abs_diff)
        self._fast += self._fast_alpha * (value - self._fast)
        self._count += 1
        sigma = max(self._abs_diff / _DIFF_TO_SIGMA, 1e-9 * (abs(self._slow) + 1.0))
        score = (self._fast - self._slow) / sigma
        if self._count < self._min_readings:
            self._slow += self._slow_alpha * (value - self._slow)
            return None
        self._follow_baseline(value, abs(score))
        if abs(score) < self._threshold:
            self._streak = 0
            return None
        self._streak += 1
        if self._streak < self._persist:
            return None
        direction = "up" if score > 0 else "down"
        return Finding(self.name, "critical" if abs(score) >= self._critical else "warning",
                       abs(score), value, ts,
                       f"mean drifted {direction} by {abs(score):.1f} noise sigmas "
                       f"(recent {self._fast:g}, baseline {self._slow:g})",
                       {"recent_mean": self._fast, "baseline": self._slow, "sigma": sigma})

    def _follow_baseline(self, value: float, abs_score: float) -> None:
        if abs_score >= self._threshold / 2:
            self._frozen += 1
            if self._frozen < self._max_frozen:
                return
            self._slow = self._fast  # a lasting new level: accept it
        self._frozen = 0
        self._slow += self._slow_alpha * (value - self._slow)
