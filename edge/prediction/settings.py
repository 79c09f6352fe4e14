"""Prediction settings: when a trend towards a datasheet limit becomes a `forecast` alert.

    prediction:
      horizon_s: 28800        # forecast crossings up to 8 h ahead
    sensors:
      pump-3/temperature:
        limits: {max: 95.0}   # only sensors with limits are forecast

A sensor is forecast when it has a `max` or `min` limit (`limits` in the sensor's config).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictionSettings(BaseModel):
    """Time-to-limit forecasts from the recent trend (the PredictionAgent)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    bucket_s: float = Field(default=60.0, gt=0, le=3600,
                            description="Readings are averaged per bucket before the fit.")
    window_s: float = Field(default=7200.0, gt=0,
                            description="The trend is fitted over this much recent history.")
    min_span_s: float = Field(default=1800.0, gt=0,
                              description="History needed before a sensor is forecast at all.")
    horizon_s: float = Field(default=28_800.0, gt=0,
                             description="A crossing predicted further ahead raises nothing.")
    confidence: float = Field(default=0.8, gt=0.5, lt=1.0,
                              description="Coverage of the interval shown (0.8: 80 %).")
    raise_z: float = Field(default=3.0, gt=0,
                           description="Trend significance (Mann-Kendall z, corrected for "
                                       "autocorrelation) needed to raise a forecast.")
    withdraw_z: float = Field(default=1.0, ge=0,
                              description="Below this significance the trend has stopped.")
    withdraw_after: int = Field(default=3, ge=1,
                                description="Consecutive evaluations without a trend that "
                                            "withdraw a forecast.")
    seasonal_period_s: float | None = Field(
        default=86_400.0, gt=0,
        description="A daily cycle is not a trend: once this much history exists, the change "
                    "against one period earlier must trend towards the limit too (null: off).")
    critical_within_s: float = Field(
        default=3600.0, ge=0,
        description="A crossing possible this soon (the interval's early end) is critical.")
    update_interval_s: float = Field(
        default=900.0, ge=0, description="Least time between two updates of one forecast alert.")
    check_interval_s: float = Field(default=60.0, gt=0,
                                    description="How often the agent evaluates its sensors.")

    @model_validator(mode="after")
    def _spans(self) -> PredictionSettings:
        if self.min_span_s > self.window_s:
            raise ValueError("min_span_s must not exceed window_s")
        if self.window_s / self.bucket_s < 10:
            raise ValueError("window_s must hold at least 10 buckets of bucket_s")
        if self.withdraw_z >= self.raise_z:
            raise ValueError("withdraw_z must be below raise_z")
        return self

    @property
    def history_s(self) -> float:
        """History a sensor keeps: the fit window, and one seasonal period before it."""
        return self.window_s + (self.seasonal_period_s or 0.0) + self.bucket_s
