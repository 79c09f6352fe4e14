"""DetectionSession.judge: which readings are judged live."""

from __future__ import annotations

import time

from edge.detection.profiles import SensorProfile
from edge.detection.session import DetectionSession
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.records import FLAG_CLOCK_SUSPECT, FLAG_HISTORICAL

NOW_US = 1_767_225_600_000_000


def test_historical_and_clock_suspect_readings_are_stored_not_judged() -> None:
    # A device replaying its stored history (Sparkplug is_historical) sends old breaches on
    # purpose; they must not open alerts dated in the past.
    settings = DetectionSettings()
    profile = SensorProfile.build(settings, limits=LimitSettings(max=95.0))
    session = DetectionSession("gw", settings, {"s": profile}, {}, time.time)
    live = [("s", None, NOW_US + i * 1_000_000, 40.0, 0, NOW_US + i * 1_000_000)
            for i in range(100)]
    assert session.judge(live) == []
    for flag in (FLAG_HISTORICAL, FLAG_CLOCK_SUSPECT):
        replayed = [("s", None, NOW_US + 300_000_000 + i, 120.0, flag, NOW_US + 400_000_000)
                    for i in range(3)]
        assert session.judge(replayed) == []
    assert session.judge([("s", None, NOW_US + 500_000_000, 120.0, 0, NOW_US + 500_000_000)]) != []
