"""Operators' false-alarm decisions, fed back into detection (pure, serialisable).

A false alarm on (sensor, detector) does two bounded, reversible things:
- it suppresses that condition for `detection.false_alarm_suppress_s` (default a day): the
  same detector on the same sensor opens no alert meanwhile (the rejected candidates are
  counted as `false_alarm_feedback`);
- it lowers that sensor's sensitivity one step: its budget of false candidates per day is
  cut to a third (sensitivity -0.12), at most three steps (1/27): a sensor an operator keeps
  calling wrong gets quieter, never silent. The detection engine applies the strongest
  cut among the sensor's detectors (`budget_factor`).
`undo` (the `undo_false_alarm` decision) takes one false alarm back. The book is saved in
the buffer, shown by `status` and in the details of the alert it closed.

Only learned detectors take feedback (`LEARNED_DETECTORS`: outlier, drift, flatline,
silence, the asset model): a datasheet limit (`limits`, `rate`) is a hard physical limit and
always alerts, so a false alarm on one is recorded on the alert but silences nothing, and
an older book's entries for one are dropped when it is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edge.detection.sensor_model import LEARNED_DETECTORS

STEP = 1 / 3
FEEDBACK_KEY = "anomaly_detection.feedback"  # where the agent keeps the book (buffer meta)
MAX_STEPS = 3


@dataclass(slots=True)
class _Entry:
    false_alarms: int = 0
    suppressed_until: float = 0.0
    decisions: list[str] = field(default_factory=list)


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
        entry.false_alarms += 1
        entry.suppressed_until = now + self._suppress_s
        entry.decisions.append(decision_id)
        return self._view(sensor_id, detector, entry)

    def undo(self, sensor_id: str, detector: str, decision_id: str) -> FeedbackView | None:
        entry = self._entries.get((sensor_id, detector))
        if entry is None or decision_id not in entry.decisions:
            return None
        entry.decisions.remove(decision_id)
        entry.false_alarms -= 1
        entry.suppressed_until = 0.0
        if entry.false_alarms <= 0:
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
        return [{"sensor_id": s, "detector": d, **asdict(e)} for (s, d), e in self._entries.items()]

    def load(self, rows: list[dict[str, object]]) -> None:
        for row in rows:
            key = (str(row["sensor_id"]), str(row["detector"]))
            if not self.takes_feedback(key[1]):
                continue  # an older gateway silenced a datasheet limit: never again
            decisions = row.get("decisions")
            self._entries[key] = _Entry(
                int(row["false_alarms"]),  # type: ignore[call-overload]
                float(row["suppressed_until"]),  # type: ignore[arg-type]
                [str(d) for d in decisions] if isinstance(decisions, list) else [])

    def _view(self, sensor_id: str, detector: str, entry: _Entry) -> FeedbackView:
        return FeedbackView(sensor_id, detector, entry.false_alarms,
                            round(STEP ** min(entry.false_alarms, MAX_STEPS), 3),
                            entry.suppressed_until)
