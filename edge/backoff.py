"""Exponential backoff with jitter, shared by every retry loop (MQTT, buffer, central)."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from `initial_s` up to `max_s`, each scaled by a random 0.5-1.0.

    The jitter keeps a fleet of gateways from reconnecting in lockstep after an outage.
    """

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay_s(self) -> float:
        ceiling = min(self._max_s, self._initial_s * 2.0 ** min(self.attempts, 30))
        self.attempts += 1
        return float(ceiling * self._rng.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.attempts = 0
