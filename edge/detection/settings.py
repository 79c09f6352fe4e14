"""Detection settings: one set of defaults for every sensor, overridable per sensor and asset.

    detection:
      sensitivity: 0.55         # 0 (quiet) .. 1 (eager); see below
      learning: {readings: 200, duration_s: 300}
      defaults:
        drift: {slow_span: 300}
    sensors:
      pump-3/temperature:
        limits: {max: 95.0, warn_max: 85.0, hysteresis: 1.0}
        detection:
          sensitivity: 0.4
          flatline: {enabled: false}
    assets:
      pump-3:
        detection: {sensitivity: 0.6}

A per-sensor block only names what differs; the rest comes from `detection.defaults`.

Sensitivity is the one knob: it sets how many false alerts a sensor (or an asset model) may
raise per day on normal behaviour, `10 ** (4 * sensitivity - 3)`: 0.25 -> 0.01, 0.5 -> 0.1,
0.75 -> 1 per day. Higher finds smaller and earlier deviations and pays with more false alerts.
Because every detector scores by the sensor's own tail probabilities and its reading rate, the
same number means the same on a 1 Hz vibration sensor and a 5-minute temperature.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    # No number may be infinite or NaN: `duration_s: .inf` would silently never end learning.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LimitSettings(_Model):
    """Static limits from the machine's datasheet; off unless configured. Alert from reading one."""

    min: float | None = None
    max: float | None = None
    warn_min: float | None = None
    warn_max: float | None = None
    hysteresis: float = Field(default=0.0, ge=0,
                              description="A value must come back this far inside to clear.")

    @model_validator(mode="after")
    def _ordered(self) -> LimitSettings:
        low = [v for v in (self.min, self.warn_min) if v is not None]
        high = [v for v in (self.warn_max, self.max) if v is not None]
        if self.min is not None and self.warn_min is not None and self.warn_min < self.min:
            raise ValueError("warn_min must be >= min")
        if self.max is not None and self.warn_max is not None and self.warn_max > self.max:
            raise ValueError("warn_max must be <= max")
        if low and high and max(low) >= min(high):
            raise ValueError("lower limits must be below upper limits")
        return self

    @property
    def configured(self) -> bool:
        return any(v is not None for v in (self.min, self.max, self.warn_min, self.warn_max))


class OutlierSettings(_Model):
    """Readings unusual for this sensor: its level and its change against the recent baseline,
    each scored by the sensor's own tail probabilities."""

    enabled: bool = True
    baseline_span: int = Field(default=10, ge=2, le=10_000,
                               description="Readings the recent baseline (EWMA) averages over.")


class DriftSettings(_Model):
    """A sustained shift of the level: a fast EWMA against a slow baseline that stops learning
    while the shift lasts, scored by the tail probability of their gap."""

    enabled: bool = True
    fast_span: int = Field(default=20, ge=2, le=10_000)
    slow_span: int = Field(default=1000, ge=10, le=1_000_000)

    def span_problem(self) -> str | None:
        """Why these spans cannot work, if they cannot. Checked on `detection.defaults` and on
        each sensor's override merged onto them (a partial override alone proves nothing: its
        unset span is a class default, not the one that applies)."""
        if self.fast_span >= self.slow_span:
            return (f"fast_span ({self.fast_span}) must be below slow_span ({self.slow_span}): "
                    "the baseline it is compared with is the slow one")
        return None


class FlatlineSettings(_Model):
    """Stuck sensor: a run of identical readings far longer than this sensor's own runs.

    Runs at a learned resting value (an idle pump at 0) are an operating state, not a fault."""

    enabled: bool = True
    min_readings: int = Field(default=10, ge=3, description="Never stuck before this many.")
    min_duration_s: float = Field(default=0.0, ge=0, description="... nor before this long.")
    epsilon: float = Field(default=0.0, ge=0, description="Values this close count as identical.")


class SilenceSettings(_Model):
    """Dead sensor or PLC: no reading for `factor` times the sensor's observed period."""

    enabled: bool = True
    factor: float = Field(default=5.0, gt=1)
    min_gap_s: float = Field(default=5.0, ge=0)
    min_intervals: int = Field(default=5, ge=2, description="Intervals seen before it judges.")


class RateSettings(_Model):
    """Rate of change above a configured slope (a datasheet figure); off unless max_per_s is set."""

    max_per_s: float | None = Field(default=None, gt=0)


class DetectorSettings(_Model):
    """The detectors of one sensor; a per-sensor block names only what differs."""

    sensitivity: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                      description="None: detection.sensitivity.")
    outlier: OutlierSettings = OutlierSettings()
    drift: DriftSettings = DriftSettings()
    flatline: FlatlineSettings = FlatlineSettings()
    silence: SilenceSettings = SilenceSettings()
    rate: RateSettings = RateSettings()


class LearningSettings(_Model):
    """A new sensor's learning period: its learned detectors stay quiet until both are reached
    (and until it has shown some variation; a sensor that never varies has nothing to learn)."""

    readings: int = Field(default=200, ge=20)
    duration_s: float = Field(default=300.0, ge=0)


class ValidationSettings(_Model):
    """What a candidate anomaly must pass before it opens an alert.

    Datasheet limits and extreme likelihoods open at once (so one- and two-reading spikes are
    caught); other candidates must persist or be corroborated by their asset."""

    persist_readings: int = Field(default=3, ge=1,
                                  description="Candidate readings before it counts as persistent.")
    persist_gap_readings: int = Field(default=2, ge=1,
                                      description="Normal readings that end a candidate episode.")
    extreme_factor: float = Field(default=2.0, ge=1,
                                  description="Candidates this many times rarer than the "
                                              "sensitivity's budget skip the persistence check.")
    corroboration_s: float = Field(default=60.0, ge=0,
                                   description="Another candidate of the same asset this recent "
                                               "corroborates (at least two reading periods).")
    history_check: bool = Field(default=True,
                                description="Reject a level that was routine in the last week.")


class AssetModelSettings(_Model):
    """The multivariate model of each asset's sensors (PCA with T² and SPE)."""

    enabled: bool = True
    min_sensors: int = Field(default=2, ge=2, description="Assets with fewer sensors have none.")
    max_sensors: int = Field(default=32, ge=2, description="Bounds the cost of one row.")
    row_tolerance_s: float = Field(default=0.0, ge=0,
                                   description="Latest values this far apart still form one row; "
                                               "0: three times the slowest sensor's period.")
    learning_rows: int = Field(default=200, ge=20)
    horizon_rows: int = Field(default=5000, ge=100,
                              description="Rows the slow adaptation of the model averages over.")

    @model_validator(mode="after")
    def _consistent(self) -> AssetModelSettings:
        if self.min_sensors > self.max_sensors:
            raise ValueError("min_sensors must be <= max_sensors (no asset could have a model)")
        return self


class AssetDetectionSettings(_Model):
    """Per-asset detection settings (`assets.<id>.detection`)."""

    enabled: bool = True
    sensitivity: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)


class DetectionSettings(_Model):
    """Detection and the alert life cycle, for every sensor."""

    enabled: bool = True
    worker: Literal["process", "inline"] = Field(
        default="process",
        description="process: the models run in a child process on another core, so judging "
                    "never takes CPU from commits and acknowledgements; inline: on the daemon's "
                    "event loop (a one-core box).")
    workers: int = Field(
        default=2, ge=1, le=64,
        description="Worker processes (worker: process), each holding the sensors of a share "
                    "of the assets: one per core that detection may use. Two let a burst be "
                    "judged on both cores of a small box once its commits are done.")
    sensitivity: float = Field(default=0.55, ge=0, le=1, allow_inf_nan=False,
                               description="False alerts allowed per sensor-day on normal "
                                           "behaviour: 10 ** (4 * sensitivity - 3).")
    learning: LearningSettings = LearningSettings()
    defaults: DetectorSettings = DetectorSettings()
    validation: ValidationSettings = ValidationSettings()
    asset_model: AssetModelSettings = AssetModelSettings()
    resolve_after_s: float = Field(default=0.0, ge=0,
                                   description="Normal this long (reading time) resolves an alert.")
    resolve_after_readings: int = Field(default=10, ge=1,
                                        description="... and for at least this many readings.")
    update_interval_s: float = Field(default=60.0, ge=0,
                                     description="Least time between two updates of one alert.")
    accept_after_readings: int = Field(default=2000, ge=10,
                                       description="A deviation lasting this long is a new normal: "
                                                   "the models start learning it again.")
    warmup_window_s: float = Field(default=3600.0, ge=0,
                                   description="After a restart, readings newer than the model "
                                               "snapshot, at most this old, are replayed.")
    silence_check_interval_s: float = Field(default=1.0, gt=0)
    snapshot_interval_s: float = Field(
        default=600.0, gt=0, description="How often what the models learned is saved in the "
                                         "buffer (and at stop), so a restart keeps it.")
    false_alarm_suppress_s: float = Field(
        default=86_400.0, ge=0,
        description="A false-alarm decision silences that detector on that sensor this long "
                    "(and cuts the sensor's false-candidate budget to a third, at most three "
                    "times).")
    release_idle_s: float = Field(
        default=7 * 86_400.0, gt=0,
        description="A sensor with no reading for this long gives its detection state back "
                    "(never while it has an open alert); kept compressed, taken back if it "
                    "returns.")

    @field_validator("defaults")
    @classmethod
    def _drift_spans(cls, defaults: DetectorSettings) -> DetectorSettings:
        problem = defaults.drift.span_problem()
        if problem is not None:
            raise ValueError(f"drift: {problem}")
        return defaults


def merged(defaults: DetectorSettings, override: DetectorSettings | None) -> DetectorSettings:
    """`defaults` with every field the per-sensor override actually sets."""
    if override is None:
        return defaults
    base: dict[str, Any] = defaults.model_dump()
    for name, section in override.model_dump(exclude_unset=True).items():
        base[name] = {**base[name], **section} if isinstance(section, dict) else section
    return DetectorSettings.model_validate(base)
