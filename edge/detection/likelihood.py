"""One comparable anomaly likelihood for every detector and sensor.

Every learned detector scores a reading by a tail probability `p`: the chance that this
sensor's normal behaviour produces something at least as extreme, estimated from its own
history. How alarming a given `p` is depends on how often the sensor is judged: p = 1e-4 is
routine for a 1 Hz sensor (8.6 times a day) and rare for a 5-minute one (once a month). So `p`
is turned into the expected number of such readings per day on normal behaviour,

    rate_per_day = p * trials_per_day      (trials: readings, or independent windows)

and the likelihood is the probability that a normal day stays below this level,
`exp(-rate_per_day)`: in [0, 1], near 1 only for what this sensor does less than once in many
days, and the same scale on every sensor. The sensitivity knob sets the rate allowed for a
candidate (`budget_per_day`); hysteresis (ten times the budget) keeps alerts from flapping.
"""

from __future__ import annotations

import math

SECONDS_PER_DAY = 86_400.0
NORMAL_FACTOR = 10.0  # a reading is normal again above ten times the candidate budget


def budget_per_day(sensitivity: float) -> float:
    """False candidates allowed per day on normal behaviour: 0.001 (0.0) .. 10 (1.0)."""
    return math.pow(10.0, 4.0 * sensitivity - 3.0)


def likelihood(rate_per_day: float) -> float:
    """Probability that a normal day shows nothing this rare."""
    return math.exp(-rate_per_day) if rate_per_day < 700.0 else 0.0


class Thresholds:
    """Candidate, extreme and normal levels of `rate_per_day` for one sensitivity."""

    __slots__ = ("candidate", "extreme", "normal", "sensitivity")

    def __init__(self, sensitivity: float, extreme_factor: float) -> None:
        self.sensitivity = sensitivity
        self.candidate = budget_per_day(sensitivity)
        self.extreme = self.candidate / extreme_factor
        self.normal = self.candidate * NORMAL_FACTOR
