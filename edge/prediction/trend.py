"""A robust linear trend with an interval: Theil-Sen slope, Mann-Kendall significance.

Why these: a median of pairwise slopes ignores the odd spike or stuck stretch that would
swing a least-squares line, and the Mann-Kendall statistic says whether the series rises
at all without assuming normal noise. Sensor noise is not independent from one minute to
the next (load wanders, a machine warms up), which makes both overconfident; the variance
is widened by the residuals' lag-1 autocorrelation (an AR(1) effective sample size, as in
the modified Mann-Kendall test of Hamed and Rao), so a slow wander is not taken for a trend.
The slope interval is Sen's: order statistics of the pairwise slopes, at the same variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

_MAX_RHO = 0.95  # beyond this the effective sample size says nothing useful


@dataclass(frozen=True, slots=True)
class Trend:
    slope: float  # units per second
    slope_low: float  # the interval of the slope, at the confidence asked
    slope_high: float
    level: float  # the fitted value at the last point
    z: float  # Mann-Kendall z, signed: > 0 rising
    points: int


def fit_trend(t: Floats, y: Floats, confidence: float) -> Trend:
    """The trend of `y` over `t` (seconds, ascending; at least 3 points)."""
    n = len(t)
    if n < 3:
        raise ValueError("a trend needs at least 3 points")
    i, j = np.triu_indices(n, 1)
    dy = y[j] - y[i]
    slopes = np.sort(dy / (t[j] - t[i]))
    slope = float(np.median(slopes))
    intercept = float(np.median(y - slope * t))
    residuals = y - (intercept + slope * t)
    variance = n * (n - 1) * (2 * n + 5) / 18.0 * _inflation(residuals)
    s = float(np.sign(dy).sum())
    z = (s - math.copysign(1.0, s)) / math.sqrt(variance) if s else 0.0
    # Sen's interval: drop C/2 pairwise slopes at each end.
    c = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance)
    pairs = len(slopes)
    low_index = min(pairs - 1, max(0, math.floor((pairs - c) / 2)))
    high_index = min(pairs - 1, max(0, math.ceil((pairs + c) / 2)))
    return Trend(slope=slope, slope_low=float(slopes[low_index]),
                 slope_high=float(slopes[high_index]),
                 level=intercept + slope * float(t[-1]), z=z, points=n)


def _inflation(residuals: Floats) -> float:
    """How much autocorrelated residuals widen the variance: (1 + rho) / (1 - rho)."""
    centred = residuals - residuals.mean()
    power = float(centred @ centred)
    if power == 0.0:
        return 1.0
    rho = float(centred[1:] @ centred[:-1]) / power
    rho = min(max(rho, 0.0), _MAX_RHO)
    return (1 + rho) / (1 - rho)
