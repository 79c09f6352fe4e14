"""Drift: a sustained shift of the level, judged against the sensor's own history of shifts.

A fast EWMA (the recent level) is compared with a slow baseline; their gap is scored by a
`TailModel` of past gaps, so a sensor whose level wanders (load changes, slow thermal swings)
has learned how far it wanders and only a shift beyond that counts. When the sensor has a daily
or weekly cycle (`SeasonalProfile` decides), both averages follow the seasonal residual, so the
cycle is the expected level and not a drift.

While a drift alert is open (or an asset alert filed under this sensor) the baseline and the
tail stop learning (an alerting period never becomes normal by itself), so a slow ramp cannot
drag the baseline along and hide itself; after `accept_after` alerting readings the new level is
learned as normal. The gap is an average of about `fast_span` readings: about one independent
judgement per `fast_span` readings (`trials_factor`), and its tail is an averaged one (see
`TailModel`): fitted from independent excursions, extrapolated from its body while young.
"""

from __future__ import annotations

from typing import Any, ClassVar

from edge.detection.seasonal import DAY_S, WEEK_S, SeasonalProfile
from edge.detection.settings import DriftSettings
from edge.detection.tails import TailModel

XI_MAX = 0.5
HUBER = 5.0
CLIP = 3.0


class DriftDetector:
    name: ClassVar[str] = "drift"
    kind: ClassVar[str] = "shift"

    __slots__ = ("_accept_after", "_daily", "_fast", "_fast_alpha", "_flat", "_gated", "_learned",
                 "_season", "_slow", "_slow_alpha", "_spread", "_tail",
                 "_weekly", "trials_factor")

    def __init__(self, settings: DriftSettings, accept_after: int, seed: int) -> None:
        self._fast_alpha = 2.0 / (settings.fast_span + 1)
        self._slow_alpha = 2.0 / (settings.slow_span + 1)
        self.trials_factor = 1.0 / settings.fast_span
        self._accept_after = accept_after
        self._tail = TailModel(xi_max=XI_MAX, clip=CLIP, seed=seed, averaged=True)
        self._weekly = SeasonalProfile(WEEK_S, 168)
        self._daily = SeasonalProfile(DAY_S, 48, feeds=self._weekly)  # hours from half-hours
        self._season: SeasonalProfile | None = None  # the profile the averages follow
        self._fast: float | None = None
        self._slow = 0.0
        self._flat = 0.0  # a slow EWMA of the readings, the flat competitor of the profiles
        self._spread = 0.0  # mean absolute departure of readings from the fast level
        self._learned = 0
        self._gated = 0

    @property
    def seasonal(self) -> str | None:
        season = self._season
        return None if season is None else ("weekly" if season is self._weekly else "daily")

    def pause(self) -> None:
        """Idle readings are not levels: resume from the first running reading."""
        self._fast = None

    def update(self, ts: float, x: float, alerting: bool) -> float:
        season = self._season
        expected = season.expected(ts) if season is not None else 0.0
        level = x - expected
        fast = self._fast
        if fast is None:
            self._fast = level
            if self._learned == 0:
                self._slow = self._flat = level
                self._learned = 1
            return 1.0
        # Huber-weighted EWMA: one reading moves the level by at most HUBER spreads, so a spike
        # (the outlier detector's) barely moves it while a lasting shift still carries it along.
        departure = level - fast
        spread = self._spread
        bound = HUBER * spread
        if bound > 0.0 and (departure > bound or departure < -bound):
            departure = bound if departure > 0.0 else -bound
        learned = self._learned
        slow_alpha = 1.0 / learned if learned * self._slow_alpha < 1.0 else self._slow_alpha
        self._spread = spread + slow_alpha * (abs(departure) - spread)
        fast += self._fast_alpha * departure
        self._fast = fast
        gap = fast - self._slow
        # The profiles learn every reading: a recurring pattern must not stay unlearned (and
        # alerting every day) just because it alerted the first time.
        # The competitor of a profile is a flat baseline of the readings themselves.
        self._flat += slow_alpha * (x - self._flat)
        self._daily.add(ts, x, self._flat)
        if alerting:
            self._gated += 1
            if self._gated < self._accept_after:
                return self._tail.two_sided(gap)
        else:
            self._gated = 0
        p = self._tail.observe(gap)
        self._learned += 1
        self._slow += slow_alpha * (level - self._slow)
        if p > 0.01:  # never change the frame of reference under a developing shift
            self._choose_season(ts, x)
        return p

    def _choose_season(self, ts: float, x: float) -> None:
        season = self._weekly if self._weekly.active else self._daily if self._daily.active else None
        if season is self._season:
            return
        self._season = season
        level = x - season.expected(ts) if season is not None else x
        self._fast = self._slow = level  # a new frame of reference: start it at the present

    def window(self) -> dict[str, Any]:
        return {"recent_level": self._fast, "baseline": self._slow, "seasonal": self.seasonal}

    def state(self) -> dict[str, Any]:
        return {"tail": self._tail.state(), "fast": self._fast, "slow": self._slow,
                "learned": self._learned, "gated": self._gated, "spread": self._spread,
                "flat": self._flat, "daily": self._daily.state(),
                "weekly": self._weekly.state(), "season": self.seasonal}

    def load(self, state: dict[str, Any]) -> None:
        self._tail.load(state["tail"])
        self._daily.load(state["daily"])
        self._weekly.load(state["weekly"])
        fast = state["fast"]
        self._fast = None if fast is None else float(fast)
        self._slow = float(state["slow"])
        self._learned = int(state["learned"])
        self._gated = int(state["gated"])
        self._spread = float(state["spread"])
        self._flat = float(state["flat"])
        season = state["season"]
        self._season = self._weekly if season == "weekly" else \
            self._daily if season == "daily" else None
