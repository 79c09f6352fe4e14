"""Streaming tail probabilities: how rare a value is for *this* sensor, without assuming a shape.

A `TailModel` answers "what fraction of this feature's normal values lie at least this far out,
on this side?". The body of the distribution comes from a sorted reservoir sample (`size` values,
a slowly refreshed uniform sample of the last ~`horizon` values); beyond the reservoir's outer
`zeta` quantiles each tail is a generalised Pareto distribution fitted to the exceedances
(peaks over threshold, Pickands-Balkema-de Haan; the approach of SPOT, Siffer et al., KDD 2017),
with the shape by the method of moments and clamped to [`xi_min`, `xi_max`]. That is what makes
it hold on heavy-tailed and skewed signals (CPU-like load, vibration RMS): each side learns its
own tail, in the feature's own units, and nothing is measured in Gaussian sigmas.

Quantised sensors: values closer than a relative 1e-9 are ties (float noise between quantised
levels is not an exceedance), and the tail scale is never below the sample's quantum (the
smallest gap between its distinct values), so the next level up is not "impossible".

The fit adapts slowly by design: each exceedance moves the tail moments by at most a capped step
(winsorised at `clip` times the current mean excess), so a developing fault cannot teach the
model that it is normal within a few readings. Ties count toward the tail (`P(X >= x)`), so
quantised sensors and exact repeats get honest probabilities.

Recurring excursions: the winsorised fit never learns a large excursion that recurs (a load
cycle's step, a daily start-up), so each tail also remembers its latest excursions beyond the
cap and, once three separate earlier ones were about as large, rates a value as rare as they
are (`_recurrence`; docs/detection.md).

Averaged features (`averaged=True`: a drift's gap, an average over many readings) are serially
dependent: their exceedances come in clusters, one per excursion, so a tail is fitted only once
it has seen `_MIN_EXCEEDANCES` independent clusters, and until then a value beyond the reservoir
is not floored at the reservoir's rank (1 / (size + 1): a young drift tail could never reach a
rare probability, and would learn a developing fault's gaps as its own tail instead) but
extrapolated from the body: a generalised Pareto tail that falls from 1/2 at the median to
`zeta` at the tail threshold, with the shape of a Student t of as many degrees of freedom as the
feature has made independent excursions (crossings of its median). A feature that crossed its
median often (an average of noise) extrapolates a light tail; one that wandered slowly and
crossed it a few times (a thermal level over minutes) knows little of its scale and stays
cautious.

Cost: two bisections and a few float operations a reading; memory: one `array('d')` of `size`.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right, insort
from itertools import pairwise
from typing import Any

import numpy as np

from edge.detection.snapshot import pack, unpack

_LCG_MUL = 1103515245
_LCG_ADD = 12345
_LCG_MASK = 0x7FFFFFFF
_MIN_SAMPLE = 20  # values before any probability is given
_QUANTUM_EVERY = 16  # sample changes between two measurements of the quantum
_MIN_EXCEEDANCES = 5  # exceedances before a tail is fitted (the reservoir answers until then)
_NEVER_BEYOND_AFTER = 2  # reservoirs' worth of readings with no exceedance: a tied tail
CAUTION = 0.25  # standard errors added to a fitted tail's scale
YOUNG_EXCEEDANCES = 100
SHAPE_CAUTION = 0.5
# Recurrence: an excursion too large for the fit to take in (beyond the winsorising cap) is
# remembered; once at least RECURRENCES earlier, separate excursions of at least
# RECURRENCE_SIZE of a value's size were seen, the value is this sensor's routine (a load
# cycle's step, a daily start-up), as rare as those excursions are: their count over the
# readings they span.
RECURRENCES = 3
RECURRENCE_SIZE = 0.75
RECURRENCE_GAP = 20  # readings between two excursions for them to count as separate ones
RECURRENCE_KEPT = 8  # excursions remembered per tail, the latest


class TailModel:
    """Two-sided tail probabilities of one scalar feature, learned from its own history."""

    __slots__ = (
        "_alpha",
        "_averaged",
        "_clip",
        "_count",
        "_crossings",
        "_fit_window",
        "_fitted_at",
        "_high",
        "_high_peaks",
        "_horizon",
        "_k",
        "_low",
        "_low_peaks",
        "_quantum",
        "_rng",
        "_sample",
        "_side",
        "_size",
        "_stale",
        "_xi_max",
        "_xi_min",
        "_zeta",
    )

    def __init__(self, *, size: int = 128, horizon: int = 4000, zeta: float = 0.05,
                 xi_min: float = 0.0, xi_max: float = 0.5, clip: float = 10.0, seed: int = 1,
                 averaged: bool = False) -> None:
        self._size = size
        self._averaged = averaged
        # An averaged feature's exceedances come in clusters: a tail is fitted from independent
        # clusters of exceedances, not from the readings of one excursion.
        self._fitted_at = 3 if averaged else 2
        self._crossings = 0  # crossings of the median: independent excursions seen, twice
        self._side = False
        self._horizon = max(horizon, size)
        self._zeta = zeta
        self._xi_min = xi_min
        self._xi_max = xi_max
        self._clip = clip
        self._alpha = 1.0 / max(horizon * zeta, 20.0)
        self._fit_window = 1.0 / self._alpha  # exceedances the moments effectively average
        self._sample = array("d")
        self._quantum = 0.0
        self._k = 1  # order statistic of the tail thresholds: max(1, zeta * sample size)
        self._stale = _QUANTUM_EVERY - 1  # changes of the sample since the quantum was measured
        self._count = 0
        self._rng = (seed & _LCG_MASK) or 1
        # per tail: [mean excess, mean squared excess, exceedances seen]
        # per tail: mean excess, mean squared excess, exceedances, clusters of them, and the
        # reading count at the last exceedance (a new cluster starts after a gap)
        self._high = [0.0, 0.0, 0.0, 0.0, -2.0]
        self._low = [0.0, 0.0, 0.0, 0.0, -2.0]
        # per tail: the latest large excursions, flat [last reading count, largest excess, ...]
        self._high_peaks: list[float] | None = None
        self._low_peaks: list[float] | None = None

    @property
    def count(self) -> int:
        return self._count

    @property
    def ready(self) -> bool:
        return len(self._sample) >= _MIN_SAMPLE

    def tail_fitted(self, *, high: bool) -> bool:
        return (self._high if high else self._low)[self._fitted_at] >= _MIN_EXCEEDANCES

    def median(self) -> float:
        sample = self._sample
        return sample[len(sample) // 2] if sample else 0.0

    def quantile(self, level: float) -> float:
        """An order statistic of the reservoir (no tail extrapolation)."""
        sample = self._sample
        if not sample:
            return 0.0
        return sample[min(len(sample) - 1, max(0, int(level * len(sample))))]

    def add(self, x: float) -> None:
        """Learn one value."""
        sample = self._sample
        n = len(sample)
        if n >= _MIN_SAMPLE:
            k = self._k
            high = sample[n - k]
            if x > high + 1e-9 * (abs(high) + 1e-9):
                self._excess(self._high, x - high)
            else:
                low = sample[k - 1]
                if x < low - 1e-9 * (abs(low) + 1e-9):
                    self._excess(self._low, low - x)
        self._insert(x, n)

    def observe(self, x: float) -> float:
        """`two_sided(x)`, then `add(x)`: one pass for a feature that learns every value."""
        sample = self._sample
        n = len(sample)
        p = 1.0
        if n >= _MIN_SAMPLE:
            k = self._k
            high = sample[n - k]
            if x > high + 1e-9 * (abs(high) + 1e-9):
                tail = self._high
                p = 2.0 * self._beyond(x, high, n, True)
                self._excess(tail, x - high)
            else:
                low = sample[k - 1]
                if x < low - 1e-9 * (abs(low) + 1e-9):
                    tail = self._low
                    p = 2.0 * self._beyond(x, low, n, False)
                    self._excess(tail, low - x)
                else:
                    p = 2.0 * (n - bisect_left(sample, x) + 1) / (n + 1)
                    if p >= 1.0:
                        p = 2.0 * (bisect_right(sample, x) + 1) / (n + 1)
        self._insert(x, n)
        return p if p < 1.0 else 1.0

    def _insert(self, x: float, n: int) -> None:
        sample = self._sample
        self._count += 1
        if self._averaged and n:
            side = x > sample[n >> 1]
            if side is not self._side:
                self._crossings += 1
                self._side = side
        if n < self._size:
            self._grow(x, n)
            return
        # Reservoir over a sliding horizon: replace a random element with probability size/seen.
        rng = (self._rng * _LCG_MUL + _LCG_ADD) & _LCG_MASK
        seen = self._count if self._count < self._horizon else self._horizon
        if rng * seen < self._size * _LCG_MASK:
            rng = (rng * _LCG_MUL + _LCG_ADD) & _LCG_MASK
            del sample[rng % n]
            insort(sample, x)
            self._changed()
        self._rng = rng

    def _grow(self, x: float, n: int) -> None:
        """Insert into a reservoir that is still filling. Nothing leaves it yet, so the
        quantum can only shrink: the gaps beside `x` update it exactly, with no re-measure."""
        sample = self._sample
        at = bisect_right(sample, x)
        sample.insert(at, x)
        self._k = max(1, int(self._zeta * (n + 1)))
        tie = 1e-9 * (abs(sample[0]) + abs(sample[n]) + 1e-9)
        quantum = self._quantum
        if at > 0:
            gap = x - sample[at - 1]
            if gap > tie and (gap < quantum or quantum == 0.0):
                quantum = gap
        if at < n:
            gap = sample[at + 1] - x
            if gap > tie and (gap < quantum or quantum == 0.0):
                quantum = gap
        self._quantum = quantum
        self._stale = 0

    def _changed(self) -> None:
        # The quantum moves slowly: re-measured every few changes of the sample, not each one.
        self._stale += 1
        if self._stale >= _QUANTUM_EVERY:
            self._quantum = _quantum(self._sample)
            self._stale = 0

    def _excess(self, tail: list[float], excess: float) -> None:
        if self._count - tail[4] > 1:
            tail[3] += 1.0
        tail[4] = float(self._count)
        seen = tail[2]
        if seen == 0:
            tail[0], tail[1], tail[2] = excess, excess * excess, 1.0
            return
        cap = self._clip * tail[0]
        if excess > cap > 0:
            self._remember(tail is self._high, excess)
            excess = cap
        # A plain running mean for the first exceedances, then the slow horizon: a tail that has
        # settled is moved only a little by each new exceedance.
        alpha = 1.0 / (seen + 1.0) if seen < YOUNG_EXCEEDANCES else self._alpha
        tail[0] += alpha * (excess - tail[0])
        tail[1] += alpha * (excess * excess - tail[1])
        tail[2] = seen + 1.0

    def upper(self, x: float) -> float:
        """P(X >= x) for a normal value X; 1.0 while too little is known."""
        sample = self._sample
        n = len(sample)
        if n < _MIN_SAMPLE:
            return 1.0
        k = self._k
        threshold = sample[n - k]
        if x > threshold + _tie(threshold):
            return self._beyond(x, threshold, n, True)
        return (n - bisect_left(sample, x) + 1) / (n + 1)

    def lower(self, x: float) -> float:
        """P(X <= x) for a normal value X; 1.0 while too little is known."""
        sample = self._sample
        n = len(sample)
        if n < _MIN_SAMPLE:
            return 1.0
        k = self._k
        threshold = sample[k - 1]
        if x < threshold - _tie(threshold):
            return self._beyond(x, threshold, n, False)
        return (bisect_right(sample, x) + 1) / (n + 1)

    def two_sided(self, x: float) -> float:
        """Twice the smaller one-sided tail probability, at most 1."""
        up = self.upper(x)
        if up < 0.5:
            return 2.0 * up
        down = self.lower(x)
        return min(1.0, 2.0 * down)

    def _beyond(self, x: float, threshold: float, n: int, high: bool) -> float:
        """P(X >= x) (or <= x) beyond a tail threshold: the fitted tail (or the young one), or
        the rate of recurring excursions this large if that is higher."""
        if high:
            excess, tail, peaks = x - threshold, self._high, self._high_peaks
        else:
            excess, tail, peaks = threshold - x, self._low, self._low_peaks
        if tail[self._fitted_at] >= _MIN_EXCEEDANCES:
            p = (self._k / n) * self._survival(excess, tail)
        else:
            p = self._young_upper(x, threshold, n) if high else self._young_lower(x, threshold, n)
        return max(p, self._recurrence(peaks, excess)) if peaks else p

    def _remember(self, high: bool, excess: float) -> None:
        """Keep a large excursion; readings within RECURRENCE_GAP of it are the same one."""
        peaks = self._high_peaks if high else self._low_peaks
        if peaks is None:
            peaks = []
            if high:
                self._high_peaks = peaks
            else:
                self._low_peaks = peaks
        count = float(self._count)
        if peaks and count - peaks[-2] <= RECURRENCE_GAP:
            peaks[-2] = count
            peaks[-1] = max(peaks[-1], excess)
            return
        peaks += (count, excess)
        if len(peaks) > 2 * RECURRENCE_KEPT:
            del peaks[:2]

    def _recurrence(self, peaks: list[float], excess: float) -> float:
        """How often excursions at least about this large recurred: their count over the
        readings since the oldest of them; 0.0 if fewer than RECURRENCES (the excursion going
        on now is not its own precedent)."""
        if len(peaks) < 2 * RECURRENCES:
            return 0.0
        count = self._count
        need = RECURRENCE_SIZE * excess
        seen, oldest = 0, float(count)
        for i in range(len(peaks) - 2, -1, -2):
            at = peaks[i]
            if count - at > RECURRENCE_GAP and peaks[i + 1] >= need:
                seen += 1
                oldest = at
        return seen / (count - oldest) if seen >= RECURRENCES else 0.0

    def _young_upper(self, x: float, threshold: float, n: int) -> float:
        """P(X >= x) beyond the upper threshold of a tail with too few exceedances to fit."""
        rank = (n - bisect_left(self._sample, x) + 1) / (n + 1)
        if not self._averaged and not self._never_beyond(self._high):
            return rank
        return min(rank, (self._k / n) * self._prior_survival(x - threshold, threshold - self.median()))

    def _young_lower(self, x: float, threshold: float, n: int) -> float:
        rank = (bisect_right(self._sample, x) + 1) / (n + 1)
        if not self._averaged and not self._never_beyond(self._low):
            return rank
        return min(rank, (self._k / n) * self._prior_survival(threshold - x, self.median() - threshold))

    def _never_beyond(self, tail: list[float]) -> bool:
        """Long past its reservoir's fill, and never once beyond this tail's threshold: the
        sensor's values end in a tie (a few quantised levels), so its rank says nothing of how
        far out a value is (a 0.1-degree sensor between 50.0 and 50.6 reading 5000 would rank
        only as rare as its top level); its body extrapolates instead."""
        return tail[2] == 0.0 and self._count >= _NEVER_BEYOND_AFTER * self._size

    def _prior_survival(self, excess: float, body: float) -> float:
        """An unfitted tail of an averaged feature, extrapolated from the body: a generalised
        Pareto tail beyond the median that falls from 1/2 to `zeta` over `body` (the distance
        from the median to the tail threshold), with the shape of a Student t of as many
        degrees of freedom as the independent excursions seen (xi = 1 / excursions: the
        predictive tail of a scale learned from few independent values; a slowly wandering
        feature has made few excursions and extrapolates with a heavy tail)."""
        if body <= self._quantum:
            return 1.0  # no body to extrapolate from (a quantised body on one level)
        excursions = 1.0 + 0.5 * self._crossings
        xi = min(max(1.0 / max(excursions - 1.0, 1.0), self._xi_min, 1e-3), self._xi_max)
        scale = xi * body / ((2.0 * self._zeta) ** -xi - 1.0) + xi * body  # at the threshold
        return float((1.0 + xi * excess / scale) ** (-1.0 / xi))

    def _survival(self, excess: float, tail: list[float]) -> float:
        mean, mean_sq = tail[0], tail[1]
        if mean < self._quantum:
            mean, mean_sq = self._quantum, self._quantum * self._quantum
        if mean <= 0.0:
            return 0.0
        var = mean_sq - mean * mean
        xi = 0.5 * (1.0 - mean * mean / var) if var > 0.0 else self._xi_min
        # A tail fitted to few exceedances extrapolates cautiously: its shape and its scale are
        # raised by a fraction of their standard errors, which shrink as exceedances accumulate.
        # Clustered exceedances (a smooth signal lingering in its tail) carry less information
        # than independent ones: the caution counts clusters (runs declustering).
        effective = min(tail[2], self._fit_window) * tail[3] / tail[2]
        caution = CAUTION / math.sqrt(max(effective, 1.0))
        xi = min(max(xi + SHAPE_CAUTION * caution, self._xi_min), self._xi_max)
        scale = mean * (1.0 - xi) * (1.0 + caution)  # GPD mean = scale / (1 - xi)
        if xi == 0.0:
            return math.exp(-excess / scale)
        base = 1.0 + xi * excess / scale
        return 0.0 if base <= 0.0 else base ** (-1.0 / xi)

    # -- snapshots ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"s": pack(self._sample), "n": self._count, "r": self._rng,
                "h": list(self._high), "l": list(self._low), "c": self._crossings,
                "hp": self._high_peaks or [], "lp": self._low_peaks or []}

    def load(self, state: dict[str, Any]) -> None:
        sample = unpack(state["s"], "d")
        if len(sample) > self._size or any(b < a for a, b in pairwise(sample)):
            raise ValueError("tail sample is not a sorted reservoir of this size")
        high, low = [float(v) for v in state["h"]], [float(v) for v in state["l"]]
        if len(high) != 5 or len(low) != 5:
            raise ValueError("tail moments malformed")
        self._sample, self._count, self._rng = sample, int(state["n"]), int(state["r"]) & _LCG_MASK
        self._high, self._low = high, low
        self._crossings = int(state.get("c", 0))
        self._high_peaks = _peaks(state.get("hp")) or None
        self._low_peaks = _peaks(state.get("lp")) or None
        self._k = max(1, int(self._zeta * len(sample)))
        self._quantum = _quantum(sample)


def _peaks(saved: Any) -> list[float]:
    """Saved excursions (older snapshots have none)."""
    peaks = [float(v) for v in saved or ()]
    if len(peaks) % 2 or len(peaks) > 2 * RECURRENCE_KEPT:
        raise ValueError("tail excursions malformed")
    return peaks


def _tie(value: float) -> float:
    """Values closer than this to `value` are the same quantised level (float noise)."""
    return 1e-9 * (abs(value) + 1e-9)


def _quantum(sample: array) -> float:  # type: ignore[type-arg]
    """The smallest gap between distinct values of a sorted sample (tiny for a continuous one)."""
    if len(sample) < 2:
        return 0.0
    values = np.array(sample)  # a copy: a view would pin the array's buffer
    gaps = np.diff(values)
    gaps = gaps[gaps > 1e-9 * (abs(values[0]) + abs(values[-1]) + 1e-9)]
    return float(gaps.min()) if gaps.size else 0.0
