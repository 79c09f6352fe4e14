"""DetectionEngine: the one pure decision path from readings to alert changes.

Sensor models, asset models, validation and the alert life cycle in one class, with no I/O,
no asyncio and no clock of its own: the anomaly agent wraps it and adds storage, events and
clocks; `edge.detection.benchmark` and the tests drive the very same class.

    engine = DetectionEngine("gw-1", settings.detection, profiles=profile_for, assets=asset_for)
    engine.load_snapshot(saved)              # optional: SnapshotError -> log, relearn
    engine.restore(open_alerts_from_buffer)  # alerts open when the daemon stopped
    changes = engine.observe_readings(batch)  # per DataProcessedEvent; or observe(...) one by one
    changes = engine.tick(time.time())       # every detection.silence_check_interval_s
    saved = engine.snapshot()                # periodically and on shutdown

- `profiles(sensor_id) -> SensorProfile | None` (or a mapping): limits, detector overrides,
  sensitivity and asset of a sensor; None means the defaults.
- `assets(asset_id) -> AssetProfile | None` (or a mapping): per-asset model settings.
- Readings must come in reading-time order per sensor; an older or repeated timestamp is
  skipped (it was judged already). `learn(...)` feeds the models without judging (warm-up
  replay of readings newer than the snapshot).
- Alert changes are `AlertChange(change, AlertRecord)`; `AlertRecord.score` is the anomaly
  likelihood, `details` hold `likelihood`, `rate_per_day`, `feature`, `accepted_because` and,
  for the asset model (detector `asset_model`, sensor = top contributor), `contributors`.
- `candidate_counts` / `drain_candidate_counts()` count candidate episodes by outcome for
  `edge_anomaly_candidates_total{outcome}`.
- `release(sensor_id)` frees a sensor's live model (refused with `SensorInAlertError` while it
  has an open alert) and keeps it compressed: taken back when the sensor returns, and saved
  with every snapshot; `adopt(sensor_id, data)` takes a released model back explicitly.
"""

from __future__ import annotations

import base64
import gc
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from edge.detection.asset_model import AssetModel
from edge.detection.asset_rows import AssetRows
from edge.detection.finding import Finding, Severity
from edge.detection.lifecycle import AlertChange, AlertTracker
from edge.detection.likelihood import SECONDS_PER_DAY, Thresholds, likelihood
from edge.detection.profiles import AssetProfile, SensorProfile
from edge.detection.sensor_model import ASSET_DETECTOR, Judgement, SensorModel
from edge.detection.settings import DetectionSettings
from edge.detection.shards import shard_of, unpack_parts
from edge.detection.snapshot import SnapshotError, decode, encode, settings_key
from edge.detection.validation import ASSET_SOURCE as _ASSET_SOURCE
from edge.detection.validation import Candidate, Relations, Validator
from edge.records import AlertRecord, Reading

ProfileSource = Callable[[str], SensorProfile | None] | Mapping[str, SensorProfile]
AssetSource = Callable[[str], AssetProfile | None] | Mapping[str, AssetProfile]
NO_CHANGES: list[AlertChange] = []
NODE_OFFLINE = "node_offline"
_PERIOD_ALPHA = 0.05
# Compressed models of released (long idle) sensors kept to be taken back: ~6,500 of them.
RELEASED_KEPT_BYTES = 32 * 1024 * 1024
ASSET_GATE = 1.0
# Why an asset alert resolved without its model judging it (details.resolved_because).
_STALLED = ("a member sensor stopped reporting, so the asset model forms no rows and cannot "
            "judge this alert")
_NOT_RESTORED = ("the asset model was not restored after a restart, so nothing can judge this "
                 "alert; the model learns the asset again from now on (a fault still lasting "
                 "would be learned as normal: check the asset)")


# A sensor whose newest reading is stamped this far ahead of a later reading's arrival is ahead
# of the clock: its late readings are its current ones (for the datasheet limits).
AHEAD_S = 5.0
# Reading times a date can hold (years 1 to 9999): outside them, or not a number, a reading
# has no time to be judged at (the daemon's integer microseconds never are; the pure class
# may be fed anything).
_FIRST_TS = -62_135_596_800.0
_LAST_TS = 253_402_300_799.0
# Values beyond this are not measurements (a float32 maximum, 3.4e38, still is judged: a glitch
# to alert on); beyond it the models' averages and squared excesses could overflow to inf/NaN.
MAX_MAGNITUDE = 1e150


class SensorInAlertError(Exception):
    """A sensor with an open alert cannot be released."""


@dataclass(frozen=True, slots=True)
class SnapshotReport:
    """What `load_snapshot` took over; skipped models relearn (the reason says why)."""

    sensors_restored: int
    assets_restored: int
    skipped: dict[str, str] = field(default_factory=dict)

    def __reduce__(self) -> tuple[type[SnapshotReport], tuple[int, int, dict[str, str]]]:
        # Compiled by mypyc, a frozen class unpickles only through its constructor.
        return SnapshotReport, (self.sensors_restored, self.assets_restored, self.skipped)


@dataclass(slots=True)
class _Asset:
    rows: AssetRows
    profile: AssetProfile
    thresholds: Thresholds
    model: AssetModel | None = None
    period_s: float = 0.0
    last_row_ts: float = float("-inf")
    alert_sensor: str | None = None  # the sensor id its open alert is filed under
    # Its alert was closed by an operator while the condition lasted: filed under this sensor,
    # muted in the tracker until the rows are normal by the resolve rule (as a sensor's).
    muted_sensor: str | None = None
    feedback_counted: bool = False  # this episode's rejection by feedback is counted
    last_rate: float = math.inf  # the newest row's rate per day (for a corroborated opening)


class DetectionEngine:
    """Readings in, alert changes out; see the module docstring for the contract."""

    def __init__(self, gateway_id: str, settings: DetectionSettings | None = None,
                 profiles: ProfileSource | None = None, assets: AssetSource | None = None) -> None:
        self.settings = settings = settings or DetectionSettings()
        self._profiles = _lookup(profiles)
        self._asset_profiles = _lookup(assets)
        self._tracker = AlertTracker(gateway_id, settings)
        self._validator = Validator(settings.validation)
        self._models: dict[str, SensorModel] = {}
        self._assets: dict[str, _Asset] = {}
        self._asset_of: dict[str, str | None] = {}
        # Assets whose restored open alert no model can judge (the model was not restored,
        # or is off): resolved at the asset's next reading, so the model can learn again.
        self._orphans: set[str] = set()
        # Released sensors' models, compressed (~5 kB, a fifth of a live model), oldest first:
        # taken back when the sensor returns, and part of every snapshot.
        self._released: dict[str, bytes] = {}
        self._released_bytes = 0
        self._thresholds: dict[float, Thresholds] = {}
        self._default_profile = SensorProfile.build(settings)
        self._assets_enabled = settings.asset_model.enabled
        self._budget_factors: dict[str, float] = {}  # operators' false-alarm feedback
        self.last_judgements: list[Judgement] | None = None  # the last reading's hot judgements
        # (sensor, detector) -> True while an operator's false-alarm decision silences it.
        self.suppressed: Callable[[str, str], bool] | None = None

    # -- readings -------------------------------------------------------------------------
    def observe(self, sensor_id: str, asset_id: str | None, ts: float, value: float,
                arrival: float | None = None) -> list[AlertChange]:
        """Judge one reading (`ts` in seconds since the epoch, reading time; `arrival`: when
        it reached the gateway, for silence; None: at `ts`)."""
        if not _FIRST_TS < ts < _LAST_TS:  # NaN, infinite, or no date: nothing to judge
            return NO_CHANGES
        model = self._models.get(sensor_id) or self._model_for(sensor_id, asset_id)
        measurable = -MAX_MAGNITUDE < value < MAX_MAGNITUDE
        if ts <= model.last_ts or not measurable:
            if ts < model.last_ts and measurable and \
                    model.last_ts - (ts if arrival is None else arrival) > AHEAD_S:
                return self._judge_late(model, asset_id, ts, value)
            # Redelivered, out of order, or not a number (or too large for any arithmetic on
            # it, squares included, to stay finite): nothing to judge.
            return NO_CHANGES
        alerting = self._tracker.open_detectors(sensor_id)
        hot = self.last_judgements = model.update(ts, value, alerting, arrival)
        asset_id = model.profile.asset_id or asset_id
        changes = NO_CHANGES
        if self._orphans and asset_id in self._orphans:
            changes = self._resolve_orphan(asset_id, ts)
        # A muted condition (closed by an operator) must see the normal readings too, or it
        # would never be lifted (tests/unit/test_false_alarm_feedback.py).
        if hot is not None or alerting or self._validator.pending(sensor_id) or \
                self._tracker.is_muted(sensor_id):
            judged = self._judge(model, asset_id, ts, hot)
            changes = changes + judged if changes else judged
        if asset_id is not None and self._assets_enabled:
            asset_changes = self._feed_asset(model, asset_id, ts, value, judge=True)
            if asset_changes:
                changes = changes + asset_changes
        return changes

    def observe_readings(self, readings: Iterable[Reading]) -> list[AlertChange]:
        """`observe` for a batch of buffered readings (times in integer microseconds)."""
        changes: list[AlertChange] = []
        for reading in readings:
            found = self.observe(reading.sensor_id, reading.asset_id, reading.ts_us / 1e6,
                                 reading.value, reading.received_us / 1e6)
            if found:
                changes += found
        return changes

    def reading_rate(self, sensor_id: str, asset_id: str | None, ts: float, value: float) -> float:
        """`observe`, returning the lowest rate per day a sensor detector gave the reading
        (inf: nothing hot); its likelihood is `likelihood(rate)`."""
        self.last_judgements = None
        self.observe(sensor_id, asset_id, ts, value)
        return self._lowest_rate()

    def _lowest_rate(self) -> float:
        # Its own method: compiled (mypyc), a read of `last_judgements` in `reading_rate` right
        # after setting it to None would be checked as None, though `observe` set it since.
        hot = self.last_judgements
        return min((j.rate_per_day for j in hot), default=math.inf) if hot else math.inf

    def learn(self, sensor_id: str, asset_id: str | None, ts: float, value: float,
              arrival: float | None = None) -> None:
        """Feed the models without judging (replaying readings judged before a restart)."""
        if not _FIRST_TS < ts < _LAST_TS:
            return
        model = self._models.get(sensor_id) or self._model_for(sensor_id, asset_id)
        if ts <= model.last_ts or not -MAX_MAGNITUDE < value < MAX_MAGNITUDE:
            return
        model.update(ts, value, self._tracker.open_detectors(sensor_id), arrival)
        asset_id = model.profile.asset_id or asset_id
        if asset_id is not None and self.settings.asset_model.enabled:
            self._feed_asset(model, asset_id, ts, value, judge=False)

    def tick(self, now: float) -> list[AlertChange]:
        """Clock-driven checks (silence), at wall-clock time `now`."""
        changes: list[AlertChange] = []
        silence_only = frozenset({"silence"})
        for sensor_id, model in self._models.items():
            if model.silence is None:
                continue
            finding = model.silence.check(now)
            if finding is not None and self.suppressed is not None and \
                    not self._tracker.is_open(sensor_id, "silence") and \
                    self.suppressed(sensor_id, "silence"):
                self._validator.counts["rejected_false_alarm_feedback"] += 1
                continue  # an operator called this sensor's silence a false alarm
            if finding is not None:
                asset_id = model.profile.asset_id or self._asset_of.get(sensor_id)
                changes += self._tracker.observe(sensor_id, asset_id, now, (finding,), silence_only)
        return changes

    # -- decisions ------------------------------------------------------------------------
    def _judge_late(self, model: SensorModel, asset_id: str | None, ts: float,
                    value: float) -> list[AlertChange]:
        """A reading older than the sensor's newest, which is stamped more than AHEAD_S ahead
        of this reading's arrival: judged by its datasheet limits alone (see
        `SensorModel.late_datasheet`). Late copies of readings judged before (a QoS 1
        redelivery after a restart, a replayed history) arrive after their time and are not
        judged again: they would reopen a resolved alert under its own id. A late reading
        opens or extends a limit alert, never counts towards resolving one (so a copy arriving
        inside the window finds its alert still open); the readings in order after the window
        resolve it, with the hysteresis the late ones left."""
        judgement = model.late_datasheet(ts, value)
        if judgement is None:
            return NO_CHANGES
        sensor_id = model.sensor_id
        reason = None
        if not self._tracker.is_open(sensor_id, judgement.detector):
            reason = "datasheet"
            self._validator.counts["accepted_datasheet"] += 1
        return self._tracker.observe(sensor_id, model.profile.asset_id or asset_id, ts,
                                     (_finding(judgement, model.thresholds, reason),),
                                     frozenset({judgement.detector}))

    def _judge(self, model: SensorModel, asset_id: str | None, ts: float,
               hot: list[Judgement] | None) -> list[AlertChange]:
        sensor_id, thresholds = model.sensor_id, model.thresholds
        findings: list[Finding] = []
        undecided: set[str] = set()  # neither normal nor abnormal: no step towards resolution
        candidates: set[str] = set()
        asset_changes: list[AlertChange] = []
        for judgement in hot or ():
            datasheet = judgement.severity is not None
            if not datasheet and judgement.rate_per_day > thresholds.candidate:
                undecided.add(judgement.detector)
                continue
            candidates.add(judgement.detector)
            if not datasheet:
                self._validator.note_candidate(asset_id, sensor_id, ts)
            reason = None
            if not self._tracker.is_open(sensor_id, judgement.detector):
                # A datasheet limit always alerts: feedback never silences it.
                if not datasheet and self.suppressed is not None and \
                        self.suppressed(sensor_id, judgement.detector):
                    self._validator.counts["rejected_false_alarm_feedback"] += 1
                    undecided.add(judgement.detector)
                    continue
                drift = judgement.detector == "drift"
                candidate = Candidate(
                    sensor_id, asset_id, judgement.detector, judgement.kind, ts, judgement.value,
                    # a drift is an average that must last: no extreme shortcut
                    extreme=judgement.rate_per_day <= thresholds.extreme and not drift,
                    datasheet=datasheet, persist=model.drift_persist if drift else 1,
                    period_s=model.period_s)
                if not datasheet and not candidate.extreme and \
                        self._asset_alert_names(asset_id, sensor_id):
                    # The asset model's open alert already names this sensor: the same
                    # episode, reported once (the asset alert carries the contributors).
                    undecided.add(judgement.detector)
                    continue
                reason = self._validator.consider(candidate, model.history,
                                                  self._relations(asset_id))
                if reason is None:
                    undecided.add(judgement.detector)
                    continue
                if reason == "corroborated" and asset_id is not None:
                    # Its relation to the asset's other sensors broke: the asset model's
                    # alert, filed under this sensor, names where to look. Where the asset
                    # may not alert (a member's own alert explains the rows, or feedback
                    # silenced it), the sensor's own alert does.
                    opened = self._open_asset_alert(asset_id, sensor_id, ts)
                    asset = self._assets[asset_id]
                    if opened or asset.alert_sensor is not None or asset.muted_sensor is not None:
                        asset_changes += opened
                        undecided.add(judgement.detector)
                        continue
            findings.append(_finding(judgement, thresholds, reason))
        self._validator.quiet(sensor_id, model.judged - candidates)
        judged = model.judged - undecided if undecided else model.judged
        changes = self._tracker.observe(sensor_id, asset_id, ts, tuple(findings), judged)
        return asset_changes + changes if asset_changes else changes

    def _open_asset_alert(self, asset_id: str, sensor_id: str, ts: float) -> list[AlertChange]:
        """Open the asset model's alert under `sensor_id`, accepted by corroboration."""
        asset = self._assets[asset_id]
        model = asset.model
        if model is None or asset.alert_sensor is not None or asset.muted_sensor is not None:
            return NO_CHANGES
        if self._members_alerting(asset) or self._asset_suppressed(asset):
            return NO_CHANGES
        contributors = model.contributors(asset.rows.members)
        judgement = Judgement(ASSET_DETECTOR, asset.last_rate, float("nan"), ts, model.kind,
                              window={"contributors": contributors})
        asset.alert_sensor = sensor_id
        return self._tracker.observe(
            sensor_id, asset_id, ts,
            (_finding(judgement, asset.thresholds, "corroborated", contributors),),
            frozenset({ASSET_DETECTOR}))

    def _asset_suppressed(self, asset: _Asset) -> bool:
        """An operator called this asset's model a false alarm lately. Its alert is filed
        under whichever sensor contributes most, so the decision on any member counts
        (counted once per episode, like a sensor's candidate silenced by feedback)."""
        suppressed = self.suppressed
        if suppressed is None or not any(suppressed(member, ASSET_DETECTOR)
                                         for member in asset.rows.members):
            return False
        if not asset.feedback_counted:
            asset.feedback_counted = True
            self._validator.counts["rejected_false_alarm_feedback"] += 1
        return True

    def _members_alerting(self, asset: _Asset) -> bool:
        """A member sensor has an open alert of its own: what the SPE sees now is that
        sensor's deviation (a spike on two sensors ripples through the averaged SPE for some
        rows), already alerted and named; a second, asset-wide alert would only repeat it.
        The asset model's own alert (filed under a member) does not count."""
        return self._tracker.any_alerting(asset.rows.members, besides=ASSET_DETECTOR)

    def _asset_alert_names(self, asset_id: str | None, sensor_id: str) -> bool:
        asset = self._assets.get(asset_id) if asset_id is not None else None
        return asset is not None and asset.alert_sensor == sensor_id

    def _relations(self, asset_id: str | None) -> Relations:
        asset = self._assets.get(asset_id) if asset_id is not None else None
        if asset is None or asset.model is None or not asset.model.learned:
            return "unknown"
        return "related" if asset.model.related else "independent"

    def _feed_asset(self, model: SensorModel, asset_id: str, ts: float, value: float,
                    judge: bool) -> list[AlertChange]:
        asset = self._assets.get(asset_id) or self._new_asset(asset_id)
        if not asset.profile.enabled:
            return NO_CHANGES
        column = asset.rows.index.get(model.sensor_id)
        if column is None:
            # A new member makes the model relearn, and it never learns while its alert is
            # open: joined now, that alert could never resolve. It joins once the alert ends.
            if asset.alert_sensor is not None or not asset.rows.join(model.sensor_id):
                return NO_CHANGES
            column = asset.rows.index[model.sensor_id]
            asset.model = None  # a new member changes the row: relearn
        formed = asset.rows.add(column, ts, value, model.period_s)
        if formed is None:
            if asset.rows.stalled and (asset.alert_sensor is not None or
                                       asset.muted_sensor is not None):
                # A member went silent or left: nothing judges the alert any more (the
                # member's own silence alert says what happened).
                return self._let_go(asset, asset_id, ts, _STALLED)
            return NO_CHANGES
        row_ts, row = formed
        if row_ts > asset.last_row_ts and asset.last_row_ts > float("-inf"):
            step = row_ts - asset.last_row_ts
            asset.period_s = step if asset.period_s == 0 else \
                asset.period_s + _PERIOD_ALPHA * (min(step, 10 * asset.period_s) - asset.period_s)
        asset.last_row_ts = max(row_ts, asset.last_row_ts)
        members = asset.rows.members
        if len(members) < self.settings.asset_model.min_sensors:
            return NO_CHANGES  # too few sensors for a relation
        models = self._models
        for member in members:
            member_model = models.get(member)
            if member_model is not None and member_model.resting:
                return NO_CHANGES  # an operating state (idle) the model skips
        if asset.model is None:
            asset.model = AssetModel(len(members), self.settings.asset_model, zlib.crc32(asset_id.encode()))
        per_day = SECONDS_PER_DAY / asset.period_s if asset.period_s > 0 else SECONDS_PER_DAY
        # Never learn from alerting periods: the asset's or any of its sensors' alert is open.
        members_alerting = asset.alert_sensor is None and self._members_alerting(asset)
        quiet = asset.alert_sensor is None and not members_alerting
        p_learn = ASSET_GATE * asset.thresholds.normal / (per_day * asset.model.trials_factor)
        p = asset.model.update(row, may_learn=quiet, p_learn=p_learn, explained=members_alerting)
        if not judge or not asset.model.learned:
            return NO_CHANGES
        return self._judge_asset(asset, asset_id, row_ts, p * per_day * asset.model.trials_factor)

    def _let_go(self, asset: _Asset, asset_id: str, ts: float, because: str) -> list[AlertChange]:
        """Nothing can judge the asset's alert any more: it resolves now, saying `because`,
        and a close's mute is dropped (else neither could ever end, nor the sensor it is
        filed under be released)."""
        changes = NO_CHANGES
        sensor_id, asset.alert_sensor = asset.alert_sensor, None
        if sensor_id is not None:
            self._validator.forget_candidates(asset_id, _ASSET_SOURCE)
            change = self._tracker.resolve_now(sensor_id, ASSET_DETECTOR, ts, because)
            changes = [change] if change is not None else NO_CHANGES
        if asset.muted_sensor is not None:
            self._tracker.unmute(asset.muted_sensor, ASSET_DETECTOR)
            asset.muted_sensor = None
        return changes

    def _judge_asset(self, asset: _Asset, asset_id: str, ts: float, rate: float) -> list[AlertChange]:
        thresholds = asset.thresholds
        asset.last_rate = rate
        episode_key = _ASSET_SOURCE + asset_id
        # The sensor its alert is filed under: open, or closed while the condition lasts.
        holder = asset.alert_sensor or asset.muted_sensor
        if rate > thresholds.normal and holder is None and not self._validator.pending(episode_key):
            asset.feedback_counted = False
            return NO_CHANGES
        model = asset.model
        assert model is not None
        contributors = model.contributors(asset.rows.members)
        sensor_id = holder or (contributors[0]["sensor_id"] if contributors
                               else asset.rows.members[0])
        judgement = Judgement(ASSET_DETECTOR, rate, float("nan"), ts, model.kind,
                              window={"contributors": contributors})
        findings: tuple[Finding, ...] = ()
        judged = frozenset({ASSET_DETECTOR})
        if rate <= thresholds.candidate:
            # A candidate row corroborates its sensors' candidates (they are then this
            # episode), except where it is no evidence: a member's own alert explains it, or
            # an operator called the asset model a false alarm (`_asset_suppressed`).
            if holder is not None:
                findings = (_finding(judgement, thresholds, None, contributors),)
                if asset.alert_sensor is not None or not self._asset_suppressed(asset):
                    self._validator.note_candidate(asset_id, _ASSET_SOURCE, ts)
            elif not self._members_alerting(asset) and not self._asset_suppressed(asset):
                self._validator.note_candidate(asset_id, _ASSET_SOURCE, ts)
                # Like a drift, an averaged SPE must last: no extreme shortcut, no corroboration.
                reason = self._validator.consider(Candidate(
                    episode_key, asset_id, ASSET_DETECTOR, model.kind, ts, rate,
                    persist=model.persist_rows, period_s=asset.period_s))
                if reason is not None:
                    findings = (_finding(judgement, thresholds, reason, contributors),)
                    asset.alert_sensor = sensor_id
        else:
            asset.feedback_counted = False
            self._validator.quiet(episode_key, judged)
            if rate <= thresholds.normal:
                judged = frozenset()
        if asset.alert_sensor is None and asset.muted_sensor is None:
            return NO_CHANGES
        changes = self._tracker.observe(sensor_id, asset_id, ts, findings, judged)
        if asset.muted_sensor is not None and \
                not self._tracker.is_muted_detector(asset.muted_sensor, ASSET_DETECTOR):
            asset.muted_sensor = None  # normal again: the next episode may alert
        if any(c.change == "resolved" for c in changes):
            asset.alert_sensor = None
            # Its candidates were evidence for the alert that just ended: they must not
            # corroborate a sensor's candidate into reopening it a moment later.
            self._validator.forget_candidates(asset_id, _ASSET_SOURCE)
        return changes

    # -- sources that say they are gone -----------------------------------------------------
    def source_offline(self, source_id: str, asset_id: str | None, sensor_ids: Iterable[str],
                       ts: float, reason: str) -> list[AlertChange]:
        """A Sparkplug node or device died: its sensors are stale (no silence alert each) and
        one `node_offline` alert, filed under the source, says so."""
        self.pause_silence(sensor_ids)
        finding = Finding(NODE_OFFLINE, "warning", 1.0, float("nan"), ts,
                          f"{source_id} is offline ({reason}): its sensors report nothing "
                          "until it is born again", {}, {"accepted_because": "source"})
        return self._tracker.observe(source_id, asset_id, ts, (finding,),
                                     frozenset({NODE_OFFLINE}))

    def pause_silence(self, sensor_ids: Iterable[str]) -> None:
        """These sensors' source is gone: their silence is not theirs to report."""
        for sensor_id in sensor_ids:
            model = self._models.get(sensor_id)
            if model is not None and model.silence is not None:
                model.silence.pause()

    def source_online(self, source_id: str, ts: float) -> list[AlertChange]:
        change = self._tracker.resolve_now(source_id, NODE_OFFLINE, ts)
        return [change] if change is not None else NO_CHANGES

    # -- operators ------------------------------------------------------------------------
    def close(self, sensor_id: str, detector: str) -> bool:
        """An operator closed an alert: it is dropped, and the same condition opens none until
        the sensor has been normal by the resolve rule (so a close does not flap)."""
        closed = self._tracker.close(sensor_id, detector)
        if detector == ASSET_DETECTOR:
            for asset_id, asset in self._assets.items():
                if asset.alert_sensor != sensor_id:
                    continue
                asset.alert_sensor = None
                if asset_id in self._orphans:  # no model judges it: no mute could be lifted
                    self._orphans.discard(asset_id)
                    self._tracker.unmute(sensor_id, detector)
                else:
                    asset.muted_sensor = sensor_id if closed else None
        return closed

    def take_decided(self, alert: AlertRecord) -> bool:
        """An operator acknowledged or snoozed an open alert: later versions build on `alert`
        (the stored version with the decision), so the decision is never dropped."""
        return self._tracker.take_decided(alert)

    def set_budget_factor(self, sensor_id: str, factor: float) -> None:
        """Scale a sensor's budget of false candidates per day (false-alarm feedback: < 1 is
        quieter); 1 restores its configured sensitivity."""
        if factor == 1.0:
            self._budget_factors.pop(sensor_id, None)
        else:
            self._budget_factors[sensor_id] = factor
        model = self._models.get(sensor_id)
        if model is not None:
            model.thresholds = self._thresholds_for(self._sensitivity(sensor_id, model.profile))

    def idle_sensors(self, before: float) -> list[str]:
        """Sensors last heard from before `before` (arrival time where silence tracks it)."""
        return [sensor_id for sensor_id, model in self._models.items()
                if (model.silence.last_seen if model.silence and model.silence.last_seen
                    is not None else model.last_ts) < before]

    def _sensitivity(self, sensor_id: str, profile: SensorProfile) -> float:
        factor = self._budget_factors.get(sensor_id)
        if factor is None:
            return profile.sensitivity
        # budget = 10 ** (4 s - 3): a factor on the budget is log10(factor) / 4 on s.
        return min(1.0, max(0.0, profile.sensitivity + math.log10(factor) / 4))

    # -- alerts and counters --------------------------------------------------------------
    def restore(self, alerts: Iterable[AlertRecord]) -> None:
        """Take back the alerts that were open when the daemon stopped."""
        alerts = [a for a in alerts if a.state == "open"]
        self._tracker.restore(alerts)
        for alert in alerts:
            if alert.detector == ASSET_DETECTOR and alert.asset_id is not None:
                asset = self._assets.get(alert.asset_id) or self._new_asset(alert.asset_id)
                asset.alert_sensor = alert.sensor_id
                # No learned model to judge it (none in the snapshot, or asset models are
                # off now): it could never resolve, and it would keep new members out.
                if not self._judging(asset):
                    self._orphans.add(alert.asset_id)

    def _judging(self, asset: _Asset) -> bool:
        """The asset has a learned model that judges its rows."""
        return self._assets_enabled and asset.profile.enabled and \
            asset.model is not None and asset.model.learned

    def _resolve_orphan(self, asset_id: str, ts: float) -> list[AlertChange]:
        """Resolve a restored asset alert no model can judge, at the asset's next reading."""
        self._orphans.discard(asset_id)
        return self._let_go(self._assets[asset_id], asset_id, ts, _NOT_RESTORED)

    def restore_closed(self, alerts: Iterable[AlertRecord]) -> None:
        """Take back what operators closed while its condition lasted (see `close`), newest
        first. An asset model's close is muted again only where a learned model will judge
        the rows that lift it (else a restart forgets it: nothing could lift the mute)."""
        muted = []
        for alert in alerts:
            if alert.detector == ASSET_DETECTOR:
                asset = self._assets.get(alert.asset_id) if alert.asset_id is not None else None
                if asset is None or not self._judging(asset) or \
                        asset.alert_sensor is not None or asset.muted_sensor is not None or \
                        self._tracker.lifted(alert.alert_id):
                    continue
                asset.muted_sensor = alert.sensor_id
            muted.append(alert)
        self._tracker.restore_muted(muted)

    def open_alerts(self) -> list[AlertRecord]:
        return self._tracker.open_alerts()

    @property
    def open_count(self) -> int:
        return self._tracker.open_count

    @property
    def sensor_count(self) -> int:
        return len(self._models)

    @property
    def candidate_counts(self) -> dict[str, int]:
        """Candidate episodes so far, by outcome (`accepted_<reason>`, `rejected_<reason>`)."""
        return dict(self._validator.counts)

    def drain_candidate_counts(self) -> dict[str, int]:
        """The counts since the last drain (for a Prometheus counter's `inc`)."""
        counts = dict(self._validator.counts)
        self._validator.counts.clear()
        return counts

    # -- snapshots and release ------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Everything learned (sensor and asset models), as versioned bytes; no alerts.

        Safe to run in a worker thread while nothing else touches the engine. The cyclic
        garbage collector is held off meanwhile: copying the models allocates enough to start
        full collections, each of which holds the GIL (the event loop) for most of a second;
        reference counting frees as usual."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return encode({
                "sensors": {sid: self._sensor_state(sid, m) for sid, m in self._models.items()},
                "assets": {aid: self._asset_state(a) for aid, a in self._assets.items()},
                "released": {sid: base64.b64encode(data).decode()
                             for sid, data in self._released.items()},
                # closes whose mute lifted: `restore_closed` must not mute them again
                "lifted_closes": self._tracker.lifted_ids})
        finally:
            if was_enabled:
                gc.enable()

    def load_snapshot(self, data: bytes, shard: tuple[int, int] | None = None) -> SnapshotReport:
        """Take over a snapshot (before any reading). Raises `SnapshotError` if it is unusable
        as a whole; single models that do not fit are skipped and relearn (see the report).

        A snapshot packed of several workers' parts is loaded part by part, every part
        checked before any is loaded. `shard` (this worker's index, the worker count): keep
        only the sensors and assets this worker owns (edge/detection/shards.py); a sharded
        host always passes it."""
        parts = unpack_parts(data)
        bodies = [_checked_body(decode(part)) for part in ([data] if parts is None else parts)]
        skipped: dict[str, str] = {}
        restored = restored_assets = 0
        for body in bodies:
            sensors, assets = self._load_body(body, shard, skipped)
            restored += sensors
            restored_assets += assets
        return SnapshotReport(restored, restored_assets, skipped)

    def _load_body(self, body: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
                   shard: tuple[int, int] | None, skipped: dict[str, str]) -> tuple[int, int]:
        sensors, assets, whole = body

        def owned(key: str) -> bool:
            return shard is None or shard_of(key, shard[1]) == shard[0]

        restored = sum(self._load_sensor(sid, state, skipped) for sid, state in sensors.items()
                       if owned(self._home(sid, state)))
        restored_assets = sum(self._load_asset(aid, state, skipped)
                              for aid, state in assets.items() if owned(aid))
        released = whole.get("released", {})  # absent in snapshots from before it was kept
        for sensor_id, text in released.items() if isinstance(released, dict) else ():
            try:
                data = base64.b64decode(text, validate=True)
                if shard is not None and not owned(self._released_home(str(sensor_id), data)):
                    continue
                self._keep_released(str(sensor_id), data)
            except (TypeError, ValueError, SnapshotError):
                skipped[str(sensor_id)] = "released model malformed"
        lifted = whole.get("lifted_closes", [])  # absent in snapshots from before it was kept
        if isinstance(lifted, list):
            self._tracker.remember_lifted(a for a in lifted if isinstance(a, str))
        return restored, restored_assets

    def _home(self, sensor_id: str, state: Any) -> str:
        """What decides a sensor's worker: its asset as the engine files it (the configured
        one, else the one saved), else its own id."""
        profile = self._profiles(sensor_id)
        saved = state.get("asset") if isinstance(state, dict) else None
        return (profile.asset_id if profile is not None else None) or \
            (saved if isinstance(saved, str) else None) or sensor_id

    def _released_home(self, sensor_id: str, data: bytes) -> str:
        sensors = decode(data).get("sensors")
        state = sensors.get(sensor_id) if isinstance(sensors, dict) else None
        return self._home(sensor_id, state)

    def release(self, sensor_id: str) -> bytes | None:
        """Free a sensor's live model, keeping it compressed (taken back when the sensor
        returns, saved with every snapshot); returns that snapshot (None: not known).

        Refused with `SensorInAlertError` while the sensor has an open alert. The compressed
        models kept are bounded (`RELEASED_KEPT_BYTES`): beyond it the oldest relearn."""
        if self._tracker.has_open(sensor_id):
            raise SensorInAlertError(f"sensor {sensor_id!r} has an open alert")
        model = self._models.pop(sensor_id, None)
        if model is None:
            return None
        self._validator.forget(sensor_id)
        data = encode({"sensors": {sensor_id: self._sensor_state(sensor_id, model)}, "assets": {}})
        self._keep_released(sensor_id, data)
        return data

    def _keep_released(self, sensor_id: str, data: bytes) -> None:
        self._released_bytes += len(data) - len(self._released.pop(sensor_id, b""))
        self._released[sensor_id] = data
        while self._released_bytes > RELEASED_KEPT_BYTES and self._released:
            oldest = next(iter(self._released))
            self._released_bytes -= len(self._released.pop(oldest))

    @property
    def released_count(self) -> int:
        return len(self._released)

    def _model_for(self, sensor_id: str, asset_id: str | None) -> SensorModel:
        """A sensor without a live model: its released model back, or a new one."""
        data = self._released.pop(sensor_id, None)
        if data is not None:
            self._released_bytes -= len(data)
            with suppress(SnapshotError):
                if self.adopt(sensor_id, data):
                    return self._models[sensor_id]
        return self._new_model(sensor_id, asset_id)

    def adopt(self, sensor_id: str, data: bytes) -> bool:
        """Take back a released sensor's snapshot; False if it does not fit (it relearns)."""
        body = decode(data)
        sensors = body.get("sensors")
        if not isinstance(sensors, dict) or sensor_id not in sensors:
            raise SnapshotError(f"snapshot does not hold sensor {sensor_id!r}")
        return self._load_sensor(sensor_id, sensors[sensor_id], {})

    def _sensor_state(self, sensor_id: str, model: SensorModel) -> dict[str, Any]:
        return {"key": self._sensor_key(model.profile), "asset": self._asset_of.get(sensor_id),
                "model": model.state()}

    def _sensor_key(self, profile: SensorProfile) -> str:
        # Sensitivity is not part of it: changing the knob keeps what was learned.
        return settings_key([profile.detectors.model_dump(exclude={"sensitivity"}),
                             self.settings.learning.model_dump(), self.settings.accept_after_readings])

    def _load_sensor(self, sensor_id: str, state: Any, skipped: dict[str, str]) -> bool:
        try:
            asset_id = state["asset"]
            model = self._new_model(sensor_id, asset_id)
            if state["key"] != self._sensor_key(model.profile):
                del self._models[sensor_id]
                skipped[sensor_id] = "settings changed since the snapshot"
                return False
            model.load(state["model"])
        except (KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
            self._models.pop(sensor_id, None)
            skipped[sensor_id] = f"malformed: {type(e).__name__}: {e}"
            return False
        return True

    def _asset_state(self, asset: _Asset) -> dict[str, Any]:
        return {"key": settings_key(self.settings.asset_model.model_dump()),
                "members": list(asset.rows.members), "period_s": asset.period_s,
                "last_row_ts": asset.last_row_ts,
                "model": asset.model.state() if asset.model is not None else None}

    def _load_asset(self, asset_id: str, state: Any, skipped: dict[str, str]) -> bool:
        key = "asset " + asset_id
        try:
            if state["key"] != settings_key(self.settings.asset_model.model_dump()):
                skipped[key] = "settings changed since the snapshot"
                return False
            asset = self._new_asset(asset_id)
            for member in state["members"]:
                asset.rows.join(str(member))
            asset.period_s = float(state["period_s"])
            asset.last_row_ts = float(state["last_row_ts"])
            if state["model"] is not None:
                model = AssetModel(len(asset.rows.members), self.settings.asset_model,
                                   zlib.crc32(asset_id.encode()))
                model.load(state["model"])
                asset.model = model
        except (KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
            self._assets.pop(asset_id, None)
            skipped[key] = f"malformed: {type(e).__name__}: {e}"
            return False
        return True

    # -- models ---------------------------------------------------------------------------
    def _new_model(self, sensor_id: str, asset_id: str | None) -> SensorModel:
        profile = self._profiles(sensor_id) or self._default_profile
        model = SensorModel(sensor_id, profile, self.settings.learning,
                            self._thresholds_for(self._sensitivity(sensor_id, profile)),
                            self.settings.accept_after_readings)
        self._models[sensor_id] = model
        self._asset_of[sensor_id] = profile.asset_id or asset_id
        return model

    def _new_asset(self, asset_id: str) -> _Asset:
        profile = self._asset_profiles(asset_id) or AssetProfile.build(self.settings)
        asset = _Asset(AssetRows(self.settings.asset_model), profile,
                       self._thresholds_for(profile.sensitivity))
        self._assets[asset_id] = asset
        return asset

    def _thresholds_for(self, sensitivity: float) -> Thresholds:
        thresholds = self._thresholds.get(sensitivity)
        if thresholds is None:
            thresholds = Thresholds(sensitivity, self.settings.validation.extreme_factor)
            self._thresholds[sensitivity] = thresholds
        return thresholds


def _lookup(source: Callable[[str], Any] | Mapping[str, Any] | None) -> Callable[[str], Any]:
    if source is None:
        return lambda _key: None
    if isinstance(source, Mapping):
        return source.get
    return source


def _checked_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A snapshot body's sensors and assets (and the body), or `SnapshotError`."""
    sensors, assets = body.get("sensors"), body.get("assets")
    if not isinstance(sensors, dict) or not isinstance(assets, dict):
        raise SnapshotError("snapshot has no sensors or assets")
    return sensors, assets, body


def _finding(judgement: Judgement, thresholds: Thresholds, accepted_because: str | None,
             contributors: list[dict[str, Any]] | None = None) -> Finding:
    details: dict[str, Any] = {"feature": judgement.kind}
    if accepted_because is not None:
        details["accepted_because"] = accepted_because
    if judgement.severity is not None:  # datasheet: certain by definition
        window = judgement.window or {}
        return Finding(judgement.detector, judgement.severity, 1.0, judgement.value, judgement.ts,
                       judgement.reason or judgement.detector, window,
                       {**details, "likelihood": 1.0})
    rate = judgement.rate_per_day
    score = likelihood(rate)
    details.update(likelihood=score, rate_per_day=rate)
    if contributors is not None:
        details["contributors"] = contributors
    severity: Severity = "critical" if rate <= thresholds.extreme else "warning"
    once_in = _once_in(rate)
    where = f" (mostly {contributors[0]['sensor_id']})" if contributors else ""
    reason = (f"{judgement.detector} ({judgement.kind}){where}: as rare as {once_in} of normal "
              f"behaviour, likelihood {score:.4f}")
    return Finding(judgement.detector, severity, score, judgement.value, judgement.ts, reason,
                   judgement.window or {}, details)


def _once_in(rate_per_day: float) -> str:
    """How rare, in words a person reads at a glance (not a 30-digit count of days)."""
    if rate_per_day <= 0 or 1.0 / rate_per_day >= 365_000:
        return "less than once in a thousand years"
    days = 1.0 / rate_per_day
    if days >= 365:
        return f"about once in {days / 365:,.0f} years"
    return f"about once in {days:,.0f} days" if days >= 1.5 else \
        f"about {rate_per_day:,.1f} times a day"
