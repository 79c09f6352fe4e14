"""Detector settings: defaults for every sensor, overridable per sensor in YAML.

    detection:
      defaults:
        zscore: {window: 120, warning: 6.0}
    sensors:
      pump-3/temperature:
        limits: {max: 95.0, warn_max: 85.0, hysteresis: 1.0}
        detection:
          flatline: {readings: 60}

A per-sensor block only names what differs; the rest comes from `detection.defaults`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitSettings(_Model):
    """Static limits from the machine's datasheet; off unless configured."""

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


class ZScoreSettings(_Model):
    """Spikes and noise bursts: robust z-score against the rolling median and MAD."""

    enabled: bool = True
    window: int = Field(default=120, ge=10, le=10_000, description="Readings in the rolling window.")
    min_readings: int = Field(default=30, ge=5, description="Warm-up: readings before it judges.")
    warning: float = Field(default=6.0, gt=0, description="|z| that opens a warning.")
    critical: float = Field(default=12.0, gt=0, description="|z| that makes it critical.")


class DriftSettings(_Model):
    """Slow drift of the mean: a fast EWMA against a slow baseline, in noise units."""

    enabled: bool = True
    fast_span: int = Field(default=20, ge=2, description="Readings the fast EWMA averages over.")
    slow_span: int = Field(default=1000, ge=10, description="Readings the baseline averages over.")
    min_readings: int = Field(default=200, ge=10)
    threshold: float = Field(default=5.0, gt=0, description="Shift, in noise sigmas, that warns.")
    critical: float = Field(default=12.0, gt=0)
    persist: int = Field(default=5, ge=1, description="Consecutive readings beyond the threshold.")


class RateSettings(_Model):
    """Rate of change above a configured slope; off unless max_per_s is set."""

    max_per_s: float | None = Field(default=None, gt=0)


class FlatlineSettings(_Model):
    """Stuck sensor: the same value (within epsilon) for N readings and T seconds."""

    enabled: bool = True
    readings: int = Field(default=30, ge=3)
    min_duration_s: float = Field(default=0.0, ge=0)
    epsilon: float = Field(default=0.0, ge=0)


class SilenceSettings(_Model):
    """Dead sensor or PLC: no reading for `factor` times the sensor's observed period."""

    enabled: bool = True
    factor: float = Field(default=5.0, gt=1)
    min_gap_s: float = Field(default=5.0, ge=0)
    min_intervals: int = Field(default=5, ge=2, description="Intervals seen before it judges.")


class DetectorSettings(_Model):
    zscore: ZScoreSettings = ZScoreSettings()
    drift: DriftSettings = DriftSettings()
    rate: RateSettings = RateSettings()
    flatline: FlatlineSettings = FlatlineSettings()
    silence: SilenceSettings = SilenceSettings()


class DetectionSettings(_Model):
    """Detection and the alert life cycle, for every sensor."""

    enabled: bool = True
    defaults: DetectorSettings = DetectorSettings()
    resolve_after_s: float = Field(default=300.0, ge=0,
                                   description="Normal this long (reading time) resolves an alert.")
    resolve_after_readings: int = Field(default=10, ge=1,
                                        description="... and for at least this many readings.")
    update_interval_s: float = Field(default=60.0, ge=0,
                                     description="Least time between two updates of one alert.")
    warmup_window_s: float = Field(default=3600.0, ge=0,
                                   description="After a restart, recent readings replayed from "
                                               "the buffer to warm the detectors up.")
    silence_check_interval_s: float = Field(default=1.0, gt=0)
    false_alarm_suppress_s: float = Field(
        default=86_400.0, ge=0,
        description="A false-alarm decision silences that detector on that sensor this long "
                    "(and lowers its sensitivity one step, at most three).")
    release_idle_s: float = Field(
        default=7 * 86_400.0, gt=0,
        description="A sensor with no reading for this long gives its detection state back "
                    "(never while it has an open alert).")


def merged(defaults: DetectorSettings, override: DetectorSettings | None) -> DetectorSettings:
    """`defaults` with every field the per-sensor override actually sets."""
    if override is None:
        return defaults
    base: dict[str, Any] = defaults.model_dump()
    for name, section in override.model_dump(exclude_unset=True).items():
        base[name] = {**base[name], **section}
    return DetectorSettings.model_validate(base)
