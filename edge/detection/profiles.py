"""What the engine needs to know about a sensor or an asset, resolved from the configuration.

The settings package builds these from `sensors.<id>` and `assets.<id>` (this package does not
import it: the settings import `edge.detection.settings`, not the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.detection.settings import (
    AssetDetectionSettings,
    DetectionSettings,
    DetectorSettings,
    LimitSettings,
    merged,
)


@dataclass(frozen=True, slots=True)
class SensorProfile:
    """One sensor's effective detector settings, datasheet limits, sensitivity and asset."""

    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    limits: LimitSettings | None = None
    sensitivity: float = DetectionSettings.model_fields["sensitivity"].default
    asset_id: str | None = None  # None: the asset named by the reading (topic) is used

    @classmethod
    def build(cls, detection: DetectionSettings, *, limits: LimitSettings | None = None,
              override: DetectorSettings | None = None, asset_id: str | None = None) -> SensorProfile:
        """Merge a per-sensor override onto `detection.defaults` and resolve the sensitivity."""
        detectors = merged(detection.defaults, override)
        problem = detectors.drift.span_problem()
        if problem is not None:  # the config loader names the field; this catches code
            raise ValueError(f"drift: {problem}")
        sensitivity = detectors.sensitivity if detectors.sensitivity is not None \
            else detection.sensitivity
        return cls(detectors, limits, sensitivity, asset_id)


@dataclass(frozen=True, slots=True)
class AssetProfile:
    """One asset's model settings (`assets.<id>.detection`)."""

    enabled: bool = True
    sensitivity: float = DetectionSettings.model_fields["sensitivity"].default

    @classmethod
    def build(cls, detection: DetectionSettings,
              asset: AssetDetectionSettings | None = None) -> AssetProfile:
        asset = asset or AssetDetectionSettings()
        sensitivity = asset.sensitivity if asset.sensitivity is not None else detection.sensitivity
        return cls(asset.enabled and detection.asset_model.enabled, sensitivity)
