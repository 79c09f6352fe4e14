"""How the readings of one asset's sensors, arriving at different times, become rows.

The asset keeps the latest (time, value) of each member sensor. A row is formed when every
member has reported since the previous row, or earlier when a member reports a second time
(rows then follow the fastest member, slower members contributing their latest value). A row is
formed only if every member's latest reading lies within the tolerance of the newest one
(`row_tolerance_s`, default three times the slowest member's reading period); otherwise the
round is dropped and counted, so a dead or lagging sensor stops the asset model instead of
feeding it stale values. The row's time is its newest reading's time.

Members are the sensors seen for the asset, in order of appearance, up to `max_sensors`; a new
member changes the row's shape, so the asset model relearns (new members are rare: they appear
in the first minutes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.detection.settings import AssetModelSettings

STALLED_ROUNDS = 30


class AssetRows:
    __slots__ = ("_fixed_tolerance_s", "_max_sensors", "_periods", "_reported", "_times",
                 "_values", "dropped", "dropped_in_a_row", "index", "members")

    def __init__(self, settings: AssetModelSettings) -> None:
        self._fixed_tolerance_s = settings.row_tolerance_s
        self._max_sensors = settings.max_sensors
        self.members: list[str] = []
        self.index: dict[str, int] = {}
        self._values: list[float] = []
        self._times: list[float] = []
        self._periods: list[float] = []
        self._reported: set[int] = set()
        self.dropped = 0
        self.dropped_in_a_row = 0  # rounds dropped since the last row formed

    def join(self, sensor_id: str) -> bool:
        """Add a member; False when the asset is full (the sensor is then left out)."""
        if sensor_id in self.index:
            return True
        if len(self.members) >= self._max_sensors:
            return False
        self.index[sensor_id] = len(self.members)
        self.members.append(sensor_id)
        self._values.append(0.0)
        self._times.append(float("-inf"))
        self._periods.append(0.0)
        self._reported.clear()
        return True

    def add(self, column: int, ts: float, value: float, period_s: float) -> tuple[float, np.ndarray] | None:
        """Record a member's reading; a (time, row) when this reading completes one."""
        row = None
        if column in self._reported:
            row = self._form()
            self._reported.clear()
        self._values[column] = value
        self._times[column] = ts
        self._periods[column] = period_s
        self._reported.add(column)
        if row is None and len(self._reported) == len(self.members):
            row = self._form()
            self._reported.clear()
        return row

    def _form(self) -> tuple[float, np.ndarray] | None:
        newest, oldest = max(self._times), min(self._times)
        tolerance_s = self._fixed_tolerance_s or 3.0 * max(self._periods)
        if newest - oldest > tolerance_s:
            self.dropped += 1
            self.dropped_in_a_row += 1
            return None
        self.dropped_in_a_row = 0
        return newest, np.array(self._values)

    @property
    def stalled(self) -> bool:
        """No row for `STALLED_ROUNDS` rounds: a member has stopped reporting, not just lagged."""
        return self.dropped_in_a_row >= STALLED_ROUNDS

    def state(self) -> dict[str, Any]:
        return {"members": list(self.members)}
