"""Static limits with hysteresis: out-of-range readings, without flapping at a limit."""

from __future__ import annotations

from typing import ClassVar

from edge.detection.finding import Finding, Severity
from edge.detection.settings import LimitSettings

_INF = float("inf")


class StaticLimitDetector:
    """Critical beyond min/max, warning beyond warn_min/warn_max.

    Once beyond a limit, a value must come back `hysteresis` inside it to clear, so a value
    hovering at the limit keeps one finding going instead of flapping.
    """

    name: ClassVar[str] = "limits"

    def __init__(self, settings: LimitSettings) -> None:
        self._low_critical = settings.min if settings.min is not None else -_INF
        self._high_critical = settings.max if settings.max is not None else _INF
        self._low_warning = settings.warn_min if settings.warn_min is not None else self._low_critical
        self._high_warning = settings.warn_max if settings.warn_max is not None else self._high_critical
        self._hysteresis = settings.hysteresis
        self._state: Severity | None = None

    def update(self, ts: float, value: float) -> Finding | None:
        self._state = self._classify(value)
        if self._state is None:
            return None
        high = value - self._low_warning > self._high_warning - value
        if self._state == "critical":
            limit = self._high_critical if high else self._low_critical
        else:
            limit = self._high_warning if high else self._low_warning
        return Finding(self.name, self._state, abs(value - limit), value, ts,
                       f"value {value:g} is {'above' if high else 'below'} the "
                       f"{self._state} limit {limit:g}", {"limit": limit})

    def _classify(self, value: float) -> Severity | None:
        was = self._state
        back = self._hysteresis
        if value > self._high_critical or value < self._low_critical or (
            was == "critical"
            and (value > self._high_critical - back or value < self._low_critical + back)
        ):
            return "critical"
        if value > self._high_warning or value < self._low_warning or (
            was is not None
            and (value > self._high_warning - back or value < self._low_warning + back)
        ):
            return "warning"
        return None
