"""Flatline: a stuck sensor, judged against this sensor's own history of repeated values.

Runs of identical readings (within `epsilon`) are tracked; the probability of a run at least
this long comes from the larger of two models of the sensor's completed runs: a geometric one
(from how often a reading repeats the previous one: quantised sensors repeat a lot) and a tail
model of the run lengths themselves (step signals and slow sensors have long runs). A run is
never stuck before `min_readings` and `min_duration_s`.

Operating states: a value at which the sensor rests for a run of `min_readings`, far below its
running levels (below the 5 % level by three times the body's spread, or rarer than 1e-3 among
them) and nearer to zero than to them (an idle pump at 0, a valve closed: off means the measured
quantity stops; a flow that falls by a fifth is a fault), is learned as a resting value; a run there
is the machine being off, not a stuck sensor, and the other detectors pause while it lasts (so
running levels are learned from running readings only). A run stuck at a running level is not
a rest. Rest runs teach neither the run lengths nor the repeat fraction.

A machine that is off a third of the time teaches its running levels that zero is common
before a rest can be learned (the first off spans come before the levels are ready), and
then zero is never "far below" them. So a value nearer to zero than to the running levels is
also learned as a rest once the sensor has sat there `_REST_VOTES` times for a whole run
(`min_readings` or more) and moved on each time: a duty cycle repeats, a sensor that sticks
and recovers on its own again and again at the same idle value is the rarer case. Such a
rest has a span: a run there longer than `_REST_SPAN_FACTOR` times the median run that
taught it is no longer idle but stuck (judged, and the other detectors resume), so even a
recurring fault learned as a rest cannot hide a sensor that stays dead (the median: one long
fault among the runs does not stretch it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from edge.detection.settings import FlatlineSettings
from edge.detection.tails import TailModel

_REPEAT_HORIZON = 2000.0  # readings over which the repeat fraction is averaged
_MAX_RESTS = 2
_REST_RARITY = 1e-3  # a resting value lies below all but this fraction of the running levels
_REST_VOTES = 3  # whole runs at one idle value, ended by the sensor moving on: a duty cycle
_MAX_VOTED = 4  # idle values counted at a time
_REST_SPAN_FACTOR = 4.0  # a voted rest lasting longer than this times its median run: stuck
_NO_LIMIT = float("inf")


class FlatlineDetector:
    name: ClassVar[str] = "flatline"
    kind: ClassVar[str] = "stuck"

    __slots__ = (
        "_epsilon",
        "_far_below",
        "_level",
        "_min_duration_s",
        "_min_readings",
        "_overstayed",
        "_repeat",
        "_rest_limit",
        "_rest_spans",
        "_rests",
        "_runs",
        "_seen",
        "_since",
        "_value",
        "_votes",
        "length",
        "resting",
    )

    def __init__(self, settings: FlatlineSettings, level: TailModel | None, seed: int) -> None:
        self._min_readings = settings.min_readings
        self._min_duration_s = settings.min_duration_s
        self._epsilon = settings.epsilon
        self._level = level
        self._runs = TailModel(size=64, horizon=2000, seed=seed)
        self._repeat = 0.0  # fraction of readings equal to the previous one
        self._seen = 0.0
        self._rests: list[float] = []
        self._rest_spans: dict[float, int] = {}  # voted rest -> the median run that taught it
        self._votes: dict[float, list[int]] = {}  # idle value -> lengths of its whole runs
        self._rest_limit = _NO_LIMIT  # readings the current rest may last
        self._overstayed = False  # the current run outlasted its rest: stuck, not idle
        self._value: float | None = None
        self._since = 0.0
        self.length = 0
        self.resting = False
        self._far_below = False

    @property
    def trials_factor(self) -> float:
        """Runs end about (1 - repeat) times a reading: one judgement per run."""
        factor = 1.0 - self._repeat
        return factor if factor > 0.01 else 0.01

    def update(self, ts: float, x: float, p_gate: float) -> float:
        value = self._value
        seen = self._seen
        if seen < _REPEAT_HORIZON:
            seen = self._seen = seen + 1.0
        if value is None or abs(x - value) > self._epsilon + 1e-12 * abs(value):
            if value is not None:
                self._complete(p_gate)
            self._repeat -= self._repeat / seen
            self._value, self._since, self.length = x, ts, 1
            self.resting = bool(self._rests) and self._is_rest(x)
            self._rest_limit = self._limit_of(x) if self.resting else _NO_LIMIT
            self._far_below = self._overstayed = False
            return 1.0
        if not self.resting:  # an idle machine's repeats say nothing about its sensor's runs
            self._repeat += (1.0 - self._repeat) / seen
        self.length += 1
        length = self.length
        if length == 2 and not self.resting:
            # Judged as the run begins, before its own readings weigh on the running levels
            # (and only for runs at all: continuous signals seldom repeat a value).
            self._far_below = self._below_running(x)
        if length == self._min_readings and self._far_below and not self.resting:
            self._add_rest(x, None)
            self.resting = True
            self._rest_limit = _NO_LIMIT
        if self.resting and length > self._rest_limit:
            self.resting = False  # idle far longer than it ever idled: judged as stuck
            self._overstayed = True
        if self.resting or length < self._min_readings or ts - self._since < self._min_duration_s:
            return 1.0
        return self.probability(length)

    def probability(self, length: int) -> float:
        """P(a normal run lasts at least `length` readings)."""
        geometric = self._repeat ** (length - 1)
        runs = self._runs
        if length > runs.quantile(1.0) and not runs.tail_fitted(high=True):
            return geometric  # longer than any run seen, and no tail to extrapolate
        return max(geometric, runs.upper(float(length)))

    def _complete(self, p_gate: float) -> None:
        # Idle runs and runs that were candidates (stuck) are not learned as normal runs.
        if self.resting or self._overstayed:
            return
        if self.length < self._min_readings or self.probability(self.length) > p_gate:
            self._runs.add(float(self.length))
        if self.length >= self._min_readings and self._value is not None \
                and self._nearer_zero(self._value):
            self._vote_rest(self._value)

    def _vote_rest(self, x: float) -> None:
        """One more whole run at this idle value that ended: a rest after _REST_VOTES."""
        votes = self._votes
        key = self._same(votes, x)
        key = x if key is None else key
        lengths = [*votes.get(key, []), self.length]
        if len(lengths) >= _REST_VOTES:
            votes.pop(key, None)
            self._add_rest(x, sorted(lengths)[len(lengths) // 2])
            return
        votes[key] = lengths
        if len(votes) > _MAX_VOTED:
            del votes[min(votes, key=lambda v: len(votes[v]))]

    def _add_rest(self, x: float, span: int | None) -> None:
        """A resting value (at most _MAX_RESTS, the newest kept); `span`: a voted rest's
        median run (None: learned far below the running levels, no limit)."""
        self._rests = [*self._rests[-(_MAX_RESTS - 1):], x]
        self._rest_spans = {v: n for v, n in self._rest_spans.items() if v in self._rests}
        if span is not None:
            self._rest_spans[x] = span
        else:
            self._rest_spans.pop(x, None)

    def _limit_of(self, x: float) -> float:
        rest = self._same(self._rest_spans, x)
        return _NO_LIMIT if rest is None else _REST_SPAN_FACTOR * self._rest_spans[rest]

    def _same(self, values: Iterable[float], x: float) -> float | None:
        """The first of `values` identical to `x` (within epsilon), or None."""
        epsilon = self._epsilon + 1e-12 * abs(x)
        return next((v for v in values if abs(v - x) <= epsilon), None)

    def _nearer_zero(self, x: float) -> bool:
        level = self._level
        return level is not None and level.ready and abs(x) < abs(level.quantile(0.5) - x)

    def _is_rest(self, x: float) -> bool:
        return self._same(self._rests, x) is not None

    def _below_running(self, x: float) -> bool:
        level = self._level
        if level is None or not level.ready:
            return False
        low, middle, high = level.quantile(0.05), level.quantile(0.5), level.quantile(0.95)
        # Off or idle is nearer to zero than to the running level (a pump at 0, a valve
        # closed): a flow that falls to 80 % of its level is a fault to judge, not a rest.
        if abs(x) >= abs(middle - x):
            return False
        # A quantised sensor's body may sit on one level (5 % quantile = median): the upper
        # half of the body gives the spread then.
        spread = max(middle - low, high - middle)
        # Within reach of the running levels, a long run is a stuck sensor, not a rest.
        return x < low - 3.0 * spread or level.lower(x) <= _REST_RARITY

    def window(self) -> dict[str, Any]:
        return {"since": self._since, "readings": self.length, "stuck_value": self._value}

    def state(self) -> dict[str, Any]:
        return {"runs": self._runs.state(), "repeat": self._repeat, "seen": self._seen,
                "rests": list(self._rests),
                "rest_votes": [[v, lengths] for v, lengths in self._votes.items()],
                "rest_spans": list(self._rest_spans.items()),
                "rest_limit": self._rest_limit, "overstayed": self._overstayed,
                "value": self._value, "since": self._since, "length": self.length,
                "resting": self.resting, "far_below": self._far_below}

    def load(self, state: dict[str, Any]) -> None:
        self._runs.load(state["runs"])
        self._repeat = float(state["repeat"])
        self._seen = float(state["seen"])
        self._rests = [float(v) for v in state["rests"]][-_MAX_RESTS:]
        # Older snapshots have none of these: counted afresh.
        self._votes = {float(v): [int(n) for n in lengths]
                       for v, lengths in state.get("rest_votes", [])[:_MAX_VOTED]
                       if isinstance(lengths, list)}  # earlier entries held a count
        self._rest_spans = {float(v): int(n) for v, n in state.get("rest_spans", [])
                            if float(v) in self._rests}
        self._rest_limit = float(state.get("rest_limit", _NO_LIMIT))
        self._overstayed = bool(state.get("overstayed", False))
        value = state["value"]
        self._value = None if value is None else float(value)
        self._since = float(state["since"])
        self.length = int(state["length"])
        self.resting = bool(state["resting"])
        self._far_below = bool(state["far_below"])
