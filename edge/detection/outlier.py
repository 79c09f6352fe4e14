"""Outlier: one reading unusual for this sensor, by two features and their own tail models.

- `level`: the value itself against the values this sensor takes (beyond its normal range);
- `change`: the value against the recent baseline, an EWMA (a forecast residual: daily and load
  cycles move the baseline with them, so only sudden departures count: spikes and steps
  inside the normal range).

There is no third feature for the step from the previous reading: it saw the same spikes and
steps as `change` (the EWMA of 10 readings is the previous level, less noisy), yet took a third
of the budget and a quarter of the cost. Dropping it kept every NAB window and SKAB anomaly
found, with fewer false alerts (NAB dev 67.45 -> 68.08, SKAB FAR 18.3 -> 17.2 %, anomaly-free
8 -> 6 alerts) and 10 % less CPU per reading.

A rare change back from an unusual level to an ordinary one ends an excursion: it is judged by
its level (`_recovery`), so the step back from a dip neither holds the dip's alert open nor
opens another.

Each feature has a `TailModel`, so heavy tails, skew and quantisation are learned, not assumed.
The detector's probability is the smaller of the two, times two (Bonferroni: the sensor gets
one budget, not two). Every reading is learned, the unusual ones too (a spike that
recurs is this sensor's normal: its tail widens, slowly, see `TailModel`), except while an
outlier alert is open: an alerting period never becomes normal by itself (a noise burst would
otherwise teach the tails to accept the next spike).
"""

from __future__ import annotations

from typing import Any, ClassVar

from edge.detection.settings import OutlierSettings
from edge.detection.tails import TailModel

FEATURES = ("level", "change")
# A rare change that brings the reading back from an unusual level (below
# _UNUSUAL_ORIGIN) to an ordinary one (at least _ORDINARY_LEVEL) ends an excursion: it is
# judged by its level. Checked only for readings rarer than _RECOVERY_CHECK (cost).
_RECOVERY_CHECK = 1e-3
_ORDINARY_LEVEL = 0.05
_UNUSUAL_ORIGIN = 0.01


class OutlierDetector:
    name: ClassVar[str] = "outlier"
    trials_factor: ClassVar[float] = 1.0  # one judgement per reading

    __slots__ = ("_alpha", "_baseline", "_change", "_held", "_level", "_span", "_started",
                 "kind")

    def __init__(self, settings: OutlierSettings, seed: int) -> None:
        self._alpha = 2.0 / (settings.baseline_span + 1)
        self._level = TailModel(seed=seed)
        self._change = TailModel(seed=seed + 1)
        self._baseline = 0.0
        self._started = False  # a reading since the last pause: the baseline is current
        self._span = settings.baseline_span
        self._held = 0  # absurd readings in a row that the baseline has not taken
        self.kind = "level"

    @property
    def level(self) -> TailModel:
        return self._level

    def pause(self) -> None:
        """The sensor went idle: the next reading starts afresh (no change across the pause)."""
        self._started = False
        self._held = 0

    def update(self, x: float, alerting: bool = False, absurd_p: float = 0.0) -> float:
        """Tail probability of this reading (1.0: nothing unusual); learned unless `alerting`.

        A reading at most `absurd_p` likely (a glitch, say a float32 maximum sent as "invalid")
        does not move the recent baseline at once: it would take dozens of readings to decay
        from it, and every ordinary reading meanwhile would read as a new departure, a new
        alert. Only a whole `baseline_span` of absurd readings in a row is a step, not a
        glitch (burst): the baseline then restarts at the new level."""
        if not self._started:
            self._started = True
            if self._level.count == 0:
                self._baseline = x
            self._level.add(x)
            return 1.0
        baseline = self._baseline
        change = x - baseline
        if alerting:
            p = self._level.two_sided(x)
            p_change = self._change.two_sided(change)
        else:
            p = self._level.observe(x)
            p_change = self._change.observe(change)
        kind, level = "level", p
        if p_change < p:
            p, kind = p_change, "change"
            if p < _RECOVERY_CHECK and self._recovery(x, baseline, level):
                p, kind = level, "level"
        self.kind = kind
        p = 2.0 * p if p < 0.5 else 1.0
        if p > absurd_p:  # an ordinary reading (after held ones: they were a glitch)
            self._held = 0
            self._baseline = baseline + self._alpha * change
        else:
            self._held += 1
            if self._held >= self._span:  # absurd for a whole span: a step, not a glitch
                self._held = 0
                self._baseline = x
        return p

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
                "baseline": self._baseline, "started": self._started, "held": self._held}

    def load(self, state: dict[str, Any]) -> None:
        self._level.load(state["level"])
        self._change.load(state["change"])
        self._baseline = float(state["baseline"])
        # snapshots before the jump feature was dropped kept the previous reading instead
        self._started = bool(state["started"]) if "started" in state \
            else state.get("previous") is not None
        self._held = int(state.get("held") or 0)  # absent before glitches were held
