"""Outlier: one reading unusual for this sensor, by three features and their own tail models.

- `level`: the value itself against the values this sensor takes (beyond its normal range);
- `change`: the value against the recent baseline, an EWMA (a forecast residual: daily and load
  cycles move the baseline with them, so only sudden departures count);
- `jump`: the step from the previous reading (spikes and steps on smooth signals).

A rare change or jump back from an unusual level to an ordinary one ends an excursion: it is
judged by its level (`_recovery`), so the step back from a dip neither holds the dip's alert
open nor opens another.

Each feature has a `TailModel`, so heavy tails, skew and quantisation are learned, not assumed.
The detector's probability is the smallest of the three, times three (Bonferroni: the sensor
gets one budget, not three). Every reading is learned, the unusual ones too (a spike that
recurs is this sensor's normal: its tail widens, slowly, see `TailModel`), except while an
outlier alert is open: an alerting period never becomes normal by itself (a noise burst would
otherwise teach the tails to accept the next spike).
"""

from __future__ import annotations

from typing import Any

from edge.detection.settings import OutlierSettings
from edge.detection.tails import TailModel

FEATURES = ("level", "change", "jump")
# A rare change or jump that brings the reading back from an unusual level (below
# _UNUSUAL_ORIGIN) to an ordinary one (at least _ORDINARY_LEVEL) ends an excursion: it is
# judged by its level. Checked only for readings rarer than _RECOVERY_CHECK (cost).
_RECOVERY_CHECK = 1e-3
_ORDINARY_LEVEL = 0.05
_UNUSUAL_ORIGIN = 0.01


class OutlierDetector:
    name = "outlier"
    trials_factor = 1.0  # one judgement per reading

    __slots__ = ("_alpha", "_baseline", "_change", "_jump", "_level", "_previous", "kind")

    def __init__(self, settings: OutlierSettings, seed: int) -> None:
        self._alpha = 2.0 / (settings.baseline_span + 1)
        self._level = TailModel(seed=seed)
        self._change = TailModel(seed=seed + 1)
        self._jump = TailModel(seed=seed + 2)
        self._baseline = 0.0
        self._previous: float | None = None
        self.kind = "level"

    @property
    def level(self) -> TailModel:
        return self._level

    def pause(self) -> None:
        """The sensor went idle: the next reading starts afresh (no jump across the pause)."""
        self._previous = None

    def update(self, x: float, alerting: bool = False) -> float:
        """Tail probability of this reading (1.0: nothing unusual); learned unless `alerting`."""
        previous = self._previous
        self._previous = x
        if previous is None:
            if self._level.count == 0:
                self._baseline = x
            self._level.add(x)
            return 1.0
        baseline = self._baseline
        change = x - baseline
        self._baseline += self._alpha * change
        if alerting:
            p = self._level.two_sided(x)
            p_change = self._change.two_sided(change)
            p_jump = self._jump.two_sided(x - previous)
        else:
            p = self._level.observe(x)
            p_change = self._change.observe(change)
            p_jump = self._jump.observe(x - previous)
        kind, level = "level", p
        if p_change < p:
            p, kind = p_change, "change"
        if p_jump < p:
            p, kind = p_jump, "jump"
        if p < _RECOVERY_CHECK and kind != "level" and \
                self._recovery(x, previous if kind == "jump" else baseline, level):
            p, kind = level, "level"
        self.kind = kind
        return 3.0 * p if p < 0.333 else 1.0

    def _recovery(self, x: float, origin: float, level: float) -> bool:
        """A step back from an unusual level toward the usual one (the end of an excursion,
        not a new one): `x` is an ordinary level, nearer the median than where it came from,
        and where it came from was itself unusual."""
        if level < _ORDINARY_LEVEL:
            return False
        median = self._level.median()
        return abs(x - median) < abs(origin - median) and \
            self._level.two_sided(origin) < _UNUSUAL_ORIGIN

    def window(self) -> dict[str, Any]:
        return {"feature": self.kind, "baseline": self._baseline,
                "typical_low": self._level.quantile(0.05), "typical_high": self._level.quantile(0.95)}

    def state(self) -> dict[str, Any]:
        return {"level": self._level.state(), "change": self._change.state(),
                "jump": self._jump.state(), "baseline": self._baseline,
                "previous": self._previous}

    def load(self, state: dict[str, Any]) -> None:
        self._level.load(state["level"])
        self._change.load(state["change"])
        self._jump.load(state["jump"])
        self._baseline = float(state["baseline"])
        previous = state["previous"]
        self._previous = None if previous is None else float(previous)
