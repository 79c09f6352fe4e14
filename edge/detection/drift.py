"""Drift: a sustained shift of the level, judged against the sensor's own history of shifts.

A fast EWMA (the recent level) is compared with a slow baseline; their gap is scored by a
`TailModel` of past gaps, so a sensor whose level wanders (a daily cycle, a load cycle) has
learned how far it wanders and only a shift beyond that counts. While the gap is a candidate
the baseline and the tail stop learning, so a slow ramp cannot drag the baseline along and hide
itself; after `accept_after` candidate readings the new level is learned as normal.

The gap is an average of about `fast_span` readings, so it has light tails (the tail shape is
held at exponential) and about one independent judgement per `fast_span` readings.
"""

from __future__ import annotations

from typing import Any

from edge.detection.settings import DriftSettings
from edge.detection.tails import TailModel


class DriftDetector:
    name = "drift"
    kind = "shift"

    __slots__ = ("_accept_after", "_fast", "_fast_alpha", "_gated", "_learned", "_slow",
                 "_slow_alpha", "_tail", "trials_factor")

    def __init__(self, settings: DriftSettings, accept_after: int, seed: int) -> None:
        self._fast_alpha = 2.0 / (settings.fast_span + 1)
        self._slow_alpha = 2.0 / (settings.slow_span + 1)
        self.trials_factor = 1.0 / settings.fast_span
        self._accept_after = accept_after
        self._tail = TailModel(xi_max=0.0, seed=seed)
        self._fast: float | None = None
        self._slow = 0.0
        self._learned = 0
        self._gated = 0

    def pause(self) -> None:
        """Idle readings are not levels: resume from the first running reading."""
        self._fast = None

    def update(self, x: float, p_gate: float) -> float:
        fast = self._fast
        if fast is None:
            self._fast = x
            if self._learned == 0:
                self._slow = x
                self._learned = 1
            return 1.0
        fast += self._fast_alpha * (x - fast)
        self._fast = fast
        gap = fast - self._slow
        p = self._tail.two_sided(gap)
        if p > p_gate:
            self._gated = 0
        else:
            self._gated += 1
            if self._gated < self._accept_after:
                return p
        self._tail.add(gap)
        self._learned += 1
        self._slow += max(self._slow_alpha, 1.0 / self._learned) * (x - self._slow)
        return p

    def window(self) -> dict[str, Any]:
        return {"recent_level": self._fast, "baseline": self._slow}

    def state(self) -> dict[str, Any]:
        return {"tail": self._tail.state(), "fast": self._fast, "slow": self._slow,
                "learned": self._learned, "gated": self._gated}

    def load(self, state: dict[str, Any]) -> None:
        self._tail.load(state["tail"])
        fast = state["fast"]
        self._fast = None if fast is None else float(fast)
        self._slow = float(state["slow"])
        self._learned = int(state["learned"])
        self._gated = int(state["gated"])
