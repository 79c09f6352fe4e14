"""Silence: no reading for `factor` times the sensor's cadence (a dead sensor or PLC).

Unlike the others this detector is driven by the clock: `update` records readings with
their arrival time, and `check(now)` is called periodically with the gateway's clock. The
silence itself is measured on arrival times, so a sensor whose clock runs behind or ahead
is judged like any other. The allowed gap is `factor` times the larger of two cadences:
the readings' own period (from their timestamps; a gap, the silence itself, does not teach
a longer period) and the pace at which their deliveries arrive, so a publisher that sends
a minute of 1 Hz readings as one batch every minute is silent after `factor` minutes, not
seconds.

Silence is judged only for a sensor that reports live: its readings arrive about as fast
as their timestamps advance (averaged over recent intervals, so batching is still live).
A burst or a backfill of old readings (they arrive far faster than their timestamps
advance) teaches nothing about liveness and never opens a silence alert; live readings
afterwards make the sensor judged again. After a restart the first check starts the
count afresh: the downtime is not the sensor's silence, but a sensor that died while the
daemon was down is alerted `factor` cadences later. When no arrival time is known
(benchmarks on recorded data), the reading time stands in for it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from edge.detection.finding import Finding
from edge.detection.settings import SilenceSettings

_ALPHA = 0.1
_LIVE_RATIO = (0.5, 2.0)  # arrival pace / timestamp pace for "reporting live"
_SAME_DELIVERY = 0.1  # arrivals closer than this share of the period came in one delivery


class SilenceDetector:
    name: ClassVar[str] = "silence"

    __slots__ = ("_arrival_step_s", "_delivery_s", "_factor", "_intervals", "_last_arrival",
                 "_last_delivery", "_last_ts", "_min_gap_s", "_min_intervals", "_paused",
                 "_period_s", "_restarted")

    def __init__(self, settings: SilenceSettings) -> None:
        self._factor = settings.factor
        self._min_gap_s = settings.min_gap_s
        self._min_intervals = settings.min_intervals
        self._last_ts: float | None = None
        self._last_arrival = 0.0
        self._last_delivery = 0.0  # arrival time of the newest delivery (batch)
        self._period_s = 0.0  # EWMA of timestamp steps
        self._arrival_step_s = 0.0  # EWMA of arrival steps over the same intervals
        self._delivery_s = 0.0  # EWMA of the time between deliveries
        self._intervals = 0
        self._restarted = False
        self._paused = False

    @property
    def period_s(self) -> float:
        return self._period_s

    @property
    def last_seen(self) -> float | None:
        """Arrival time of the newest reading (None: none yet)."""
        return self._last_arrival if self._last_ts is not None else None

    def pause(self) -> None:
        """The source said it is gone (a Sparkplug death): no silence until it reports again."""
        self._paused = True

    def update(self, ts: float, arrival: float | None = None) -> None:
        arrival = ts if arrival is None else arrival
        self._paused = False
        last_ts = self._last_ts
        if last_ts is not None and ts <= last_ts:
            return  # a repeat or out of order: no interval to learn from
        previous_arrival = self._last_arrival
        self._last_ts, self._last_arrival = ts, arrival
        if last_ts is None:
            self._last_delivery = arrival
            return
        step = ts - last_ts
        # A gap (the silence itself) must not teach us a longer period.
        if self._intervals >= self._min_intervals and step >= 3 * self._period_s:
            self._last_delivery = arrival
            return
        arrival_step = max(0.0, arrival - previous_arrival)
        if self._intervals == 0:
            self._period_s, self._arrival_step_s = step, arrival_step
        else:
            self._period_s += _ALPHA * (step - self._period_s)
            self._arrival_step_s += _ALPHA * (arrival_step - self._arrival_step_s)
        self._intervals += 1
        self._learn_delivery(arrival)

    def _learn_delivery(self, arrival: float) -> None:
        gap = arrival - self._last_delivery
        if gap <= _SAME_DELIVERY * self._period_s:
            return  # the same delivery (batch) as the reading before
        self._last_delivery = arrival
        if self._delivery_s == 0.0:
            self._delivery_s = gap
        elif gap < 3 * self._delivery_s:  # as for the period: a gap teaches nothing
            self._delivery_s += _ALPHA * (gap - self._delivery_s)

    @property
    def live(self) -> bool:
        """Enough intervals seen, arriving about as fast as the timestamps advance."""
        if self._intervals < self._min_intervals or self._period_s <= 0:
            return False
        low, high = _LIVE_RATIO
        return low <= self._arrival_step_s / self._period_s <= high

    @property
    def allowed_gap_s(self) -> float:
        return max(self._factor * max(self._period_s, self._delivery_s), self._min_gap_s)

    def check(self, now: float) -> Finding | None:
        if self._last_ts is None or self._paused or not self.live:
            return None
        if self._restarted:  # the downtime is not the sensor's silence: count from now
            self._restarted = False
            self._last_arrival = max(self._last_arrival, now)
            return None
        silent_s = now - self._last_arrival
        if silent_s <= self.allowed_gap_s:
            return None
        cadence = max(self._period_s, self._delivery_s)
        return Finding(self.name, "critical", silent_s / cadence, float("nan"), now,
                       f"no reading for {silent_s:.0f} s (usually every {cadence:.1f} s)",
                       {"last_reading": self._last_arrival, "period_s": self._period_s,
                        "delivery_s": self._delivery_s})

    def state(self) -> dict[str, Any]:
        return {"last_ts": self._last_ts, "last_arrival": self._last_arrival,
                "last_delivery": self._last_delivery, "period_s": self._period_s,
                "arrival_step_s": self._arrival_step_s, "delivery_s": self._delivery_s,
                "intervals": self._intervals}

    def load(self, state: dict[str, Any]) -> None:
        last_ts = state["last_ts"]
        self._last_ts = None if last_ts is None else float(last_ts)
        self._last_arrival = float(state["last_arrival"])
        self._last_delivery = float(state["last_delivery"])
        self._period_s = float(state["period_s"])
        self._arrival_step_s = float(state["arrival_step_s"])
        self._delivery_s = float(state["delivery_s"])
        self._intervals = int(state["intervals"])
        self._restarted = True
