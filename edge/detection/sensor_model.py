"""SensorModel: everything learned about one sensor, and its judgement of each reading.

Datasheet limits and configured rates judge from the first reading. The learned detectors
(outlier, drift, flatline) learn through the learning period and stay quiet until it is over:
`learning.readings` readings, `learning.duration_s` of reading time and some variation (a sensor
that never varies has nothing to learn). Each judgement is a tail probability that becomes a
rate per day (see `likelihood`), using the reading period learned from the timestamps.

`update` returns only the *hot* judgements (rarer than the normal level of the hysteresis), so
the common case allocates nothing; detectors that judged and are not hot are normal.
"""

from __future__ import annotations

import zlib
from collections.abc import Container
from typing import Any, NamedTuple

from edge.detection.drift import DriftDetector
from edge.detection.finding import Finding, Severity
from edge.detection.flatline import FlatlineDetector
from edge.detection.history import LevelHistory
from edge.detection.likelihood import SECONDS_PER_DAY, Thresholds
from edge.detection.limits import StaticLimitDetector
from edge.detection.outlier import OutlierDetector
from edge.detection.profiles import SensorProfile
from edge.detection.rate import RateOfChangeDetector
from edge.detection.settings import LearningSettings
from edge.detection.silence import SilenceDetector

_PERIOD_ALPHA = 0.05
DRIFT_PERSIST = 0.5
# A reading this rare for its sensor (once in ~27,000 years of normal readings: a glitch, a
# fault) does not teach the drift's baseline. Merely extreme readings (a load cycle's first
# steps) still do: the drift must learn the cycle's levels as the outlier learns its steps.
ABSURD_PER_DAY = 1e-7
_MIN_DISTINCT = 3  # different values a sensor must show before its learning can end
NOT_JUDGED: frozenset[str] = frozenset()
ASSET_DETECTOR = "asset_model"  # the asset model's alerts are filed under a member sensor


class Judgement(NamedTuple):
    """A detector's view of one reading that is not plainly normal."""

    detector: str
    rate_per_day: float  # normal readings this rare per day (0: impossible, e.g. a limit)
    value: float
    ts: float
    kind: str  # the feature that decided: level, change, shift, stuck, limit, rate
    severity: Severity | None = None  # set by datasheet detectors
    reason: str | None = None
    window: dict[str, Any] | None = None


class SensorModel:
    """One sensor's detectors, learning state and reading period."""

    __slots__ = ("_distinct", "_drift", "_first_ts", "_flatline", "_learned_names", "_learning",
                 "_limits", "_outlier", "_period_s", "_rate", "count", "history", "judged", "last_ts",
                 "learned", "profile", "sensor_id", "silence", "thresholds")

    def __init__(self, sensor_id: str, profile: SensorProfile, learning: LearningSettings,
                 thresholds: Thresholds, accept_after: int) -> None:
        self.sensor_id = sensor_id
        self.profile = profile
        self.thresholds = thresholds
        self._learning = learning
        detectors = profile.detectors
        seed = zlib.crc32(sensor_id.encode())
        self._limits = StaticLimitDetector(profile.limits) \
            if profile.limits is not None and profile.limits.configured else None
        self._rate = RateOfChangeDetector(detectors.rate.max_per_s) \
            if detectors.rate.max_per_s is not None else None
        self._outlier = OutlierDetector(detectors.outlier, seed) \
            if detectors.outlier.enabled else None
        self._drift = DriftDetector(detectors.drift, accept_after, seed + 7) \
            if detectors.drift.enabled else None
        self._flatline = FlatlineDetector(
            detectors.flatline, self._outlier.level if self._outlier else None, seed + 13) \
            if detectors.flatline.enabled else None
        self.silence = SilenceDetector(detectors.silence) if detectors.silence.enabled else None
        self.history = LevelHistory()
        self.count = 0
        self.learned = False
        self.last_ts = float("-inf")
        self._first_ts = 0.0
        self._period_s = 0.0
        self._distinct: set[float] = set()
        # A reading is a normal judgement for silence too: it ends a silence alert.
        static = frozenset(d.name for d in (self._limits, self._rate, self.silence) if d is not None)
        self.judged = static
        self._learned_names = static | frozenset(
            d.name for d in (self._outlier, self._drift, self._flatline) if d is not None)

    @property
    def drift_persist(self) -> int:
        """Candidate readings a drift needs (a shift averaged over readings must last)."""
        return int(DRIFT_PERSIST * self.profile.detectors.drift.fast_span)

    @property
    def period_s(self) -> float:
        return self._period_s

    @property
    def trials_per_day(self) -> float:
        return SECONDS_PER_DAY / self._period_s if self._period_s > 0 else SECONDS_PER_DAY

    def update(self, ts: float, x: float, alerting: Container[str] = (),
               arrival: float | None = None) -> list[Judgement] | None:
        """Judge and learn one reading (in time order). None: nothing hot.

        `alerting`: the detectors with an open alert on this sensor (they do not learn);
        `arrival`: when the reading reached the gateway (silence; None: at `ts`)."""
        if self.count:
            step = ts - self.last_ts
            if step > 0:
                self._period_s = step if self._period_s == 0 else \
                    self._period_s + _PERIOD_ALPHA * (min(step, 10 * self._period_s) - self._period_s)
        else:
            self._first_ts = ts
        self.count += 1
        self.last_ts = ts
        if self.silence is not None:
            self.silence.update(ts, arrival)
        hot = self._datasheet(ts, x) if self._limits is not None or self._rate is not None else None
        learned = self.learned or self._learning_done(ts, x)
        return self._learned_detectors(ts, x, learned, hot, alerting)

    def _datasheet(self, ts: float, x: float) -> list[Judgement] | None:
        hot = None
        for detector in (self._limits, self._rate):
            if detector is None:
                continue
            finding = detector.update(ts, x)
            if finding is not None:
                hot = hot or []
                hot.append(_datasheet_judgement(finding, ts, x))
        return hot

    def late_datasheet(self, ts: float, x: float) -> Judgement | None:
        """A late reading while the sensor's newest is stamped ahead of the clock: until the
        timestamps pass it, the late readings are the sensor's current ones. The learned
        detectors and the rate need readings in order and skip them; the datasheet limits
        judge them as they come (with their hysteresis), so they do not go blind."""
        finding = self._limits.update(ts, x) if self._limits is not None else None
        return _datasheet_judgement(finding, ts, x) if finding is not None else None

    def _learned_detectors(self, ts: float, x: float, learned: bool, hot: list[Judgement] | None,
                           alerting: Container[str]) -> list[Judgement] | None:
        period = self._period_s
        per_day = SECONDS_PER_DAY / period if period > 0 else SECONDS_PER_DAY
        thresholds = self.thresholds
        # While learning nothing is gated: p_gate below any probability.
        gate = thresholds.candidate / per_day if learned else -1.0
        normal = thresholds.normal
        candidate_seen = False
        flatline = self._flatline
        if flatline is not None:
            factor = flatline.trials_factor
            p = flatline.update(ts, x, gate / factor)
            if learned and p * per_day * factor <= normal:
                hot = hot or []
                hot.append(Judgement("flatline", p * per_day * factor, x, ts, "stuck",
                                     window=flatline.window()))
                candidate_seen = True
            if flatline.resting:
                if self._outlier is not None:
                    self._outlier.pause()
                if self._drift is not None:
                    self._drift.pause()
                return hot
        candidate = thresholds.candidate
        outlier, drift = self._outlier, self._drift
        # A reading beyond a datasheet limit is not normal by definition: like an alerting
        # period, it must not teach the baseline (a fault's level would read as a drift after).
        beyond_datasheet = hot is not None
        # Likewise a reading the outlier detector finds absurd: one glitch, say a 16-bit error
        # code, would drag the drift's slow baseline far off and read as a lasting drift.
        absurd = False
        if outlier is not None:
            p = outlier.update(x, beyond_datasheet or "outlier" in alerting,
                               ABSURD_PER_DAY / per_day)
            rate = p * per_day
            absurd = rate <= ABSURD_PER_DAY
            if learned and rate <= normal:
                hot = hot or []
                hot.append(Judgement("outlier", rate, x, ts, outlier.kind, window=outlier.window()))
                candidate_seen = candidate_seen or rate <= candidate
        if drift is not None:
            factor = drift.trials_factor
            # An asset alert filed under this sensor is its alert too: the level it is about
            # must not become the drift's baseline (it would read as a shift once it ends).
            p = drift.update(ts, x, beyond_datasheet or absurd or "drift" in alerting
                             or ASSET_DETECTOR in alerting)
            rate = p * per_day * factor
            if learned and rate <= normal:
                hot = hot or []
                hot.append(Judgement("drift", rate, x, ts, "shift", window=drift.window()))
                candidate_seen = candidate_seen or rate <= candidate
        if not candidate_seen:
            self.history.add(ts, x)
        return hot

    def _learning_done(self, ts: float, x: float) -> bool:
        distinct = self._distinct
        if len(distinct) < _MIN_DISTINCT:
            distinct.add(x)
        if self.count < self._learning.readings or ts - self._first_ts < self._learning.duration_s \
                or len(distinct) < _MIN_DISTINCT:
            return False
        self.learned = True
        self.judged = self._learned_names
        self._distinct = set()
        return True

    @property
    def resting(self) -> bool:
        """The sensor sits at a learned resting value (its machine is off or idle)."""
        return self._flatline is not None and self._flatline.resting

    # -- snapshots ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"count": self.count, "learned": self.learned, "last_ts": self.last_ts,
                "first_ts": self._first_ts, "period_s": self._period_s,
                "distinct": sorted(self._distinct), "history": self.history.state(),
                "outlier": self._outlier.state() if self._outlier else None,
                "drift": self._drift.state() if self._drift else None,
                "flatline": self._flatline.state() if self._flatline else None,
                "silence": self.silence.state() if self.silence else None}

    def load(self, state: dict[str, Any]) -> None:
        """Take over a saved state (raises ValueError, KeyError or TypeError if it does not fit)."""
        for name, part in (("outlier", self._outlier), ("drift", self._drift),
                           ("flatline", self._flatline), ("silence", self.silence)):
            if (part is None) != (state[name] is None):
                raise ValueError(f"{name} is enabled on one side only")
            if part is not None:
                part.load(state[name])
        self.history.load(state["history"])
        self.count = int(state["count"])
        self.learned = bool(state["learned"])
        self.judged = self._learned_names if self.learned else self.judged
        self.last_ts = float(state["last_ts"])
        self._first_ts = float(state["first_ts"])
        self._period_s = float(state["period_s"])
        self._distinct = {float(v) for v in state["distinct"]}


def _datasheet_judgement(finding: Finding, ts: float, x: float) -> Judgement:
    return Judgement(finding.detector, 0.0, x, ts, finding.detector, finding.severity,
                     finding.reason, finding.window)
