"""Detection: sensor models, asset models, validation and the alert life cycle, all pure.

`DetectionEngine` is the one decision path (readings in, alert changes out); the anomaly agent
wraps it, and `edge.detection.benchmark` scores the same class on public labelled data.
Everything here is computation only: no I/O, no asyncio, the clock passed in.
"""

from edge.detection.engine import DetectionEngine, SensorInAlertError, SnapshotReport
from edge.detection.finding import SEVERITY_RANK, Finding, Severity
from edge.detection.lifecycle import AlertChange
from edge.detection.profiles import AssetProfile, SensorProfile
from edge.detection.sensor_model import ASSET_DETECTOR
from edge.detection.settings import (
    AssetDetectionSettings,
    DetectionSettings,
    DetectorSettings,
    LimitSettings,
)
from edge.detection.snapshot import SnapshotError, SnapshotVersionError

__all__ = [
    "ASSET_DETECTOR",
    "SEVERITY_RANK",
    "AlertChange",
    "AssetDetectionSettings",
    "AssetProfile",
    "DetectionEngine",
    "DetectionSettings",
    "DetectorSettings",
    "Finding",
    "LimitSettings",
    "SensorInAlertError",
    "SensorProfile",
    "Severity",
    "SnapshotError",
    "SnapshotReport",
    "SnapshotVersionError",
]
