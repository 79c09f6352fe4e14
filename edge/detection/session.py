"""One gateway's detection state behind a small call surface of plain data.

The anomaly agent drives detection through this class, either in its own process (the
default: `detection.worker: process`, edge/agents/detection_worker.py) or inline. Every
argument and result is picklable data (tuples, records, bytes), so the same calls cross a
process boundary unchanged. It holds the engine and the engine's copy of the operators'
false-alarm book (the agent keeps the master copy, stores it, and sends it here on change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress

from edge.detection.engine import DetectionEngine, SensorInAlertError, SnapshotReport
from edge.detection.feedback import FeedbackBook
from edge.detection.lifecycle import AlertChange
from edge.detection.profiles import AssetProfile, SensorProfile
from edge.detection.settings import DetectionSettings
from edge.records import FLAG_CLOCK_SUSPECT, FLAG_HISTORICAL, AlertRecord

# A reading as detection needs it: sensor_id, asset_id, ts_us, value, flags, received_us
# (fields 0, 1, 2, 3, 6, 7 of `edge.records.Reading`, taken with one itemgetter).
Row = tuple[str, "str | None", int, float, int, int]
_NOT_LIVE = FLAG_CLOCK_SUSPECT | FLAG_HISTORICAL

# The calls another process may make (everything public below but the constructor).
CALLS = frozenset({"judge", "learn", "tick", "release_idle", "source_offline", "pause_silence",
                   "source_online", "close", "take_decided", "set_feedback", "restore", "restore_closed",
                   "drain_candidate_counts", "snapshot", "load_snapshot", "counts"})


class DetectionSession:
    """The engine, the false-alarm book it consults, and batch calls over readings."""

    def __init__(self, gateway_id: str, settings: DetectionSettings,
                 profiles: Mapping[str, SensorProfile], assets: Mapping[str, AssetProfile],
                 clock: Callable[[], float]) -> None:
        self.engine = DetectionEngine(gateway_id, settings, profiles=dict(profiles),
                                      assets=dict(assets))
        self.feedback = FeedbackBook(settings.false_alarm_suppress_s)
        self._clock = clock
        self.engine.suppressed = self._suppressed

    def judge(self, rows: Iterable[Row]) -> list[AlertChange]:
        """Judge readings in order; clock-suspect and historical ones (a Sparkplug device's
        stored history, sent late on purpose) are stored, not judged live."""
        observe = self.engine.observe
        changes: list[AlertChange] = []
        for sensor_id, asset_id, ts_us, value, flags, received_us in rows:
            if flags & _NOT_LIVE:
                continue
            found = observe(sensor_id, asset_id, ts_us / 1e6, value, received_us / 1e6)
            if found:
                changes += found
        return changes

    def learn(self, rows: Iterable[Row]) -> int:
        """Feed the models without judging (readings judged before a restart)."""
        learn = self.engine.learn
        count = 0
        for sensor_id, asset_id, ts_us, value, flags, received_us in rows:
            if not flags & FLAG_CLOCK_SUSPECT:
                learn(sensor_id, asset_id, ts_us / 1e6, value, received_us / 1e6)
                count += 1
        return count

    def tick(self, now: float) -> list[AlertChange]:
        return self.engine.tick(now)

    def release_idle(self, before: float) -> int:
        """Forget the models of sensors idle since `before` (none with an open alert)."""
        released = 0
        for sensor_id in self.engine.idle_sensors(before):
            with suppress(SensorInAlertError):
                self.engine.release(sensor_id)
                released += 1
        return released

    def source_offline(self, source_id: str, sensor_ids: Sequence[str], ts: float,
                       reason: str) -> list[AlertChange]:
        return self.engine.source_offline(source_id, source_id, sensor_ids, ts, reason)

    def pause_silence(self, sensor_ids: Sequence[str]) -> None:
        self.engine.pause_silence(sensor_ids)

    def source_online(self, source_id: str, ts: float) -> list[AlertChange]:
        return self.engine.source_online(source_id, ts)

    def close(self, sensor_id: str, detector: str) -> bool:
        return self.engine.close(sensor_id, detector)

    def take_decided(self, alert: AlertRecord) -> bool:
        return self.engine.take_decided(alert)

    def set_feedback(self, book: list[dict[str, object]]) -> None:
        """Take the agent's false-alarm book: suppressions and each sensor's budget factor."""
        before = self.feedback.sensor_ids()
        self.feedback = FeedbackBook(self.engine.settings.false_alarm_suppress_s)
        self.feedback.load(book)
        for sensor_id in before | self.feedback.sensor_ids():
            self.engine.set_budget_factor(sensor_id, self.feedback.budget_factor(sensor_id))

    def restore(self, alerts: Sequence[AlertRecord]) -> None:
        self.engine.restore(alerts)

    def restore_closed(self, alerts: Sequence[AlertRecord]) -> None:
        self.engine.restore_closed(alerts)

    def drain_candidate_counts(self) -> dict[str, int]:
        return self.engine.drain_candidate_counts()

    def snapshot(self) -> bytes:
        return self.engine.snapshot()

    def load_snapshot(self, data: bytes, shard: tuple[int, int] | None = None) -> SnapshotReport:
        return self.engine.load_snapshot(data, shard)

    def counts(self) -> tuple[int, int]:
        """(open alerts, tracked sensors)."""
        return self.engine.open_count, self.engine.sensor_count

    def _suppressed(self, sensor_id: str, detector: str) -> bool:
        """An operator's recent false-alarm decision silences this condition."""
        return self.feedback.active and self.feedback.suppressed(sensor_id, detector,
                                                                 self._clock())
