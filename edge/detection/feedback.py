"""Operators' false-alarm decisions, fed back into detection (pure, serialisable).

A false alarm on (sensor, detector) does two bounded, reversible things:
- it suppresses that condition for `detection.false_alarm_suppress_s` (default a day): the
  same detector on the same sensor opens no alert meanwhile (the rejected candidates are
  counted as `false_alarm_feedback`);
- it lowers that sensor's sensitivity one step: its budget of false candidates per day is
  cut to a third (sensitivity -0.12), at most three steps (1/27): a sensor an operator keeps
  calling wrong gets quieter, never silent. The detection engine applies the strongest
  cut among the sensor's detectors (`budget_factor`).
Both are held per decision: each false alarm keeps its own suppression span, and `undo`
(the `undo_false_alarm` decision) takes back that decision's step and span only, so another
false-alarm decision on the same sensor and detector stays in force. The book is saved in
the buffer, shown by `status` and in the details of the alert it closed.

Only learned detectors take feedback (`LEARNED_DETECTORS`: outlier, drift, flatline,
silence, the asset model): a datasheet limit (`limits`, `rate`) is a hard physical limit and
always alerts, so a false alarm on one is recorded on the alert but silences nothing, and
an older book's entries for one are dropped when it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.records import LEARNED_DETECTORS

STEP = 1 / 3
FEEDBACK_KEY = "anomaly_detection.feedback"  # where the agent keeps the book (buffer meta)
MAX_STEPS = 3


@dataclass(slots=True)
class _Entry:
    """The false alarms on one (sensor, detector): decision id -> its suppression end."""

    decisions: dict[str, float] = field(default_factory=dict)

    @property
    def false_alarms(self) -> int:
        return len(self.decisions)

    @property
    def suppressed_until(self) -> float:
        return max(self.decisions.values(), default=0.0)


@dataclass(frozen=True, slots=True)
class FeedbackView:
    sensor_id: str
    detector: str
    false_alarms: int
    sensitivity_factor: float
    suppressed_until: float


class FeedbackBook:
    def __init__(self, suppress_s: float) -> None:
        self._suppress_s = suppress_s
        self._entries: dict[tuple[str, str], _Entry] = {}

    @staticmethod
    def takes_feedback(detector: str) -> bool:
        """Whether a false alarm on `detector` feeds back (learned, not a datasheet limit)."""
        return detector in LEARNED_DETECTORS

    def false_alarm(self, sensor_id: str, detector: str, now: float,
                    decision_id: str) -> FeedbackView | None:
        """Record a false alarm (None: `detector` takes no feedback, nothing recorded)."""
        if not self.takes_feedback(detector):
            return None
        entry = self._entries.setdefault((sensor_id, detector), _Entry())
        entry.decisions[decision_id] = now + self._suppress_s
        return self._view(sensor_id, detector, entry)

    def undo(self, sensor_id: str, detector: str, decision_id: str) -> FeedbackView | None:
        """Take back one decision's step and span (None: the book does not hold it)."""
        entry = self._entries.get((sensor_id, detector))
        if entry is None or decision_id not in entry.decisions:
            return None
        del entry.decisions[decision_id]
        if not entry.decisions:
            del self._entries[(sensor_id, detector)]
            return FeedbackView(sensor_id, detector, 0, 1.0, 0.0)
        return self._view(sensor_id, detector, entry)

    @property
    def active(self) -> bool:
        """Whether any feedback is held (the hot path skips the lookups when not)."""
        return bool(self._entries)

    def suppressed(self, sensor_id: str, detector: str, now: float) -> bool:
        entry = self._entries.get((sensor_id, detector))
        return entry is not None and now < entry.suppressed_until

    def sensitivity_factor(self, sensor_id: str, detector: str) -> float:
        entry = self._entries.get((sensor_id, detector))
        return 1.0 if entry is None else STEP ** min(entry.false_alarms, MAX_STEPS)

    def budget_factor(self, sensor_id: str) -> float:
        """The strongest cut on `sensor_id` among its detectors (1: none)."""
        return min((STEP ** min(e.false_alarms, MAX_STEPS)
                    for (s, _), e in self._entries.items() if s == sensor_id), default=1.0)

    def sensor_ids(self) -> set[str]:
        return {s for s, _ in self._entries}

    def views(self) -> list[FeedbackView]:
        return [self._view(s, d, e) for (s, d), e in sorted(self._entries.items())]

    def to_json(self) -> list[dict[str, object]]:
        return [{"sensor_id": s, "detector": d, "false_alarms": e.false_alarms,
                 "suppressed_until": e.suppressed_until, "decisions": dict(e.decisions)}
                for (s, d), e in self._entries.items()]

    def load(self, rows: list[dict[str, object]]) -> None:
        for row in rows:
            key = (str(row["sensor_id"]), str(row["detector"]))
            if not self.takes_feedback(key[1]):
                continue  # an older gateway silenced a datasheet limit: never again
            entry = _Entry(_decisions(row))
            if entry.decisions:
                self._entries[key] = entry

    def _view(self, sensor_id: str, detector: str, entry: _Entry) -> FeedbackView:
        return FeedbackView(sensor_id, detector, entry.false_alarms,
                            round(STEP ** min(entry.false_alarms, MAX_STEPS), 3),
                            entry.suppressed_until)


def _decisions(row: dict[str, object]) -> dict[str, float]:
    """decision id -> suppression end; an older book (one span, a list of ids, maybe fewer
    ids than false alarms) gives each of its decisions that span."""
    saved = row.get("decisions")
    if isinstance(saved, dict):
        return {str(k): float(v) for k, v in saved.items()}
    until = float(row.get("suppressed_until", 0.0))  # type: ignore[arg-type]
    ids = [str(d) for d in saved] if isinstance(saved, list) else []
    count = int(row.get("false_alarms", len(ids)))  # type: ignore[call-overload]
    ids += [f"unnamed-{k}" for k in range(max(0, count - len(ids)))]
    return dict.fromkeys(ids, until)
