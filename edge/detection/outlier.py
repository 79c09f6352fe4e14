"""Outlier: one reading unusual for this sensor, by three features and their own tail models.

- `level`: the value itself against the values this sensor takes (beyond its normal range);
- `change`: the value against the recent baseline, an EWMA (a forecast residual: daily and load
  cycles move the baseline with them, so only sudden departures count);
- `jump`: the step from the previous reading (spikes and steps on smooth signals).

Each feature has a `TailModel`, so heavy tails, skew and quantisation are learned, not assumed.
The detector's probability is the smallest of the three, times three (Bonferroni: the sensor
gets one budget, not three). While a reading is a candidate its features are not learned (a
fault does not teach the model that it is normal) until `accept_after` candidate readings in
a row have made it the new normal.
"""

from __future__ import annotations

from typing import Any

from edge.detection.settings import OutlierSettings
from edge.detection.tails import TailModel

FEATURES = ("level", "change", "jump")
GATED = False


class OutlierDetector:
    name = "outlier"
    trials_factor = 1.0  # one judgement per reading

    __slots__ = ("_accept_after", "_alpha", "_baseline", "_change", "_gate", "_gated", "_jump",
                 "_level", "_previous", "kind")

    def __init__(self, settings: OutlierSettings, accept_after: int, seed: int) -> None:
        self._alpha = 2.0 / (settings.baseline_span + 1)
        self._accept_after = accept_after
        self._level = TailModel(seed=seed)
        self._change = TailModel(seed=seed + 1)
        self._jump = TailModel(seed=seed + 2)
        self._baseline = 0.0
        self._previous: float | None = None
        self._gated = 0
        self._gate = GATED
        self.kind = "level"

    @property
    def level(self) -> TailModel:
        return self._level

    def pause(self) -> None:
        """The sensor went idle: the next reading starts afresh (no jump across the pause)."""
        self._previous = None

    def update(self, x: float, p_gate: float) -> float:
        """Tail probability of this reading (1.0: nothing unusual); learns it unless gated."""
        previous = self._previous
        self._previous = x
        if previous is None:
            if self._level.count == 0:
                self._baseline = x
            return 1.0
        change = x - self._baseline
        jump = x - previous
        p = self._level.two_sided(x)
        kind = "level"
        p_change = self._change.two_sided(change)
        if p_change < p:
            p, kind = p_change, "change"
        p_jump = self._jump.two_sided(jump)
        if p_jump < p:
            p, kind = p_jump, "jump"
        p = 3.0 * p if p < 0.333 else 1.0
        self.kind = kind
        self._baseline += self._alpha * change
        if p <= p_gate and self._gate:
            self._gated += 1
            if self._gated < self._accept_after:
                return p
        else:
            self._gated = 0
        self._level.add(x)
        self._change.add(change)
        self._jump.add(jump)
        return p

    def window(self) -> dict[str, Any]:
        return {"feature": self.kind, "baseline": self._baseline,
                "typical_low": self._level.quantile(0.05), "typical_high": self._level.quantile(0.95)}

    def state(self) -> dict[str, Any]:
        return {"level": self._level.state(), "change": self._change.state(),
                "jump": self._jump.state(), "baseline": self._baseline,
                "previous": self._previous, "gated": self._gated}

    def load(self, state: dict[str, Any]) -> None:
        self._level.load(state["level"])
        self._change.load(state["change"])
        self._jump.load(state["jump"])
        self._baseline = float(state["baseline"])
        previous = state["previous"]
        self._previous = None if previous is None else float(previous)
        self._gated = int(state["gated"])
