"""The sensor's recent history, for the validation's last check: "was this level routine?".

Hourly ranges (min, max) of the readings that were normal, over the last week (168 hours,
reading time). A level is routine now when it lay within the range of the same hour of day,
give or take an hour, on at least `min_days` of the previous six days: a value seen routinely
last week at this time of day is not an anomaly now, while a night-time reading at the daytime
level still is. Sensors younger than two days have no history to judge by.
"""

from __future__ import annotations

from array import array
from typing import Any

from edge.detection.snapshot import pack, unpack

HOURS = 168
_SECONDS_PER_HOUR = 3600.0
_EMPTY = -1


class LevelHistory:
    __slots__ = ("_high", "_highs", "_hour", "_hour_end", "_hour_start", "_hours", "_low", "_lows")

    def __init__(self) -> None:
        self._lows = array("d", [0.0]) * HOURS
        self._highs = array("d", [0.0]) * HOURS
        self._hours = array("q", [_EMPTY]) * HOURS  # the absolute hour each slot holds
        # The current hour's range, kept apart and written to its slot when the hour ends.
        self._hour = _EMPTY
        self._hour_start = self._hour_end = 0.0
        self._low = self._high = 0.0

    def add(self, ts: float, value: float) -> None:
        if self._hour_start <= ts < self._hour_end:
            if value < self._low:
                self._low = value
            elif value > self._high:
                self._high = value
            return
        hour = int(ts // _SECONDS_PER_HOUR)
        if hour < self._hour:
            return  # an older hour than the one being kept: already summarised
        self._flush()
        self._hour, self._low, self._high = hour, value, value
        self._hour_start = hour * _SECONDS_PER_HOUR
        self._hour_end = self._hour_start + _SECONDS_PER_HOUR

    def _flush(self) -> None:
        if self._hour != _EMPTY:
            slot = self._hour % HOURS
            self._hours[slot], self._lows[slot], self._highs[slot] = self._hour, self._low, self._high

    def routine(self, ts: float, value: float, min_days: int = 2) -> bool:
        now = int(ts // _SECONDS_PER_HOUR)
        days = 0
        for day in range(1, 7):
            for offset in (-1, 0, 1):
                hour = now - 24 * day + offset
                slot = hour % HOURS
                if self._hours[slot] == hour and self._lows[slot] <= value <= self._highs[slot]:
                    days += 1
                    break
            if days >= min_days:
                return True
        return False

    def state(self) -> dict[str, Any]:
        self._flush()  # the current hour so far; it keeps accumulating in memory
        return {"lows": pack(self._lows), "highs": pack(self._highs), "hours": pack(self._hours)}

    def load(self, state: dict[str, Any]) -> None:
        lows, highs = unpack(state["lows"], "d"), unpack(state["highs"], "d")
        hours = unpack(state["hours"], "q")
        if not len(lows) == len(highs) == len(hours) == HOURS:
            raise ValueError("level history has the wrong size")
        self._lows, self._highs, self._hours = lows, highs, hours
        newest = max(range(HOURS), key=lambda slot: hours[slot])
        if hours[newest] != _EMPTY:  # continue the hour the snapshot was taken in
            self._hour, self._low, self._high = hours[newest], lows[newest], highs[newest]
            self._hour_start = self._hour * _SECONDS_PER_HOUR
            self._hour_end = self._hour_start + _SECONDS_PER_HOUR
