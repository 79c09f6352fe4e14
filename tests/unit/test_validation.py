"""ReadingValidator: checks, cleaning (units) and enrichment (asset context)."""

from __future__ import annotations

import pytest

from edge.errors import PayloadError
from edge.ingest.topics import TopicContext
from edge.ingest.validation import ReadingValidator
from edge.records import FLAG_TS_FROM_ARRIVAL, FLAG_UNIT_CONVERTED
from edge.settings import IngestLimits, SensorSettings

NOW_US = 1_700_000_000_000_000
TOPIC = TopicContext("factory/#", "pump-3", "pump-3/temp")
NO_TOPIC = TopicContext("unmatched", None, None)


def _validator(**limits: object) -> ReadingValidator:
    return ReadingValidator(IngestLimits(**limits), {  # type: ignore[arg-type]
        "pump-3/temp": SensorSettings(asset="pump-3", unit="degC"),
        "loose": SensorSettings(asset="press-9", unit="bar"),
    })


def test_payload_sensor_id_and_ts_win_over_topic() -> None:
    reading = _validator().validate({"sensor_id": "loose", "ts": 1_700_000_000, "value": 2},
                                    NO_TOPIC, NOW_US)
    assert reading.sensor_id == "loose"
    assert reading.asset_id == "press-9"  # enriched from the sensor config
    assert reading.ts_us == 1_700_000_000_000_000
    assert reading.unit == "bar"


def test_missing_ts_takes_arrival_time_and_is_flagged() -> None:
    reading = _validator().validate({"value": 1.5}, TOPIC, NOW_US)
    assert reading.ts_us == NOW_US
    assert reading.flags & FLAG_TS_FROM_ARRIVAL
    assert (reading.sensor_id, reading.asset_id) == ("pump-3/temp", "pump-3")


def test_units_are_converted_to_the_sensor_canonical_unit() -> None:
    reading = _validator().validate({"value": 212, "unit": "degF"}, TOPIC, NOW_US)
    assert reading.value == pytest.approx(100.0)
    assert reading.unit == "degC"
    assert reading.flags & FLAG_UNIT_CONVERTED


def test_integer_quality_is_kept_as_text() -> None:
    assert _validator().validate({"value": 1, "quality": 192}, TOPIC, NOW_US).quality == "192"


@pytest.mark.parametrize(("item", "context", "reason"), [
    ({"value": "1"}, TOPIC, "invalid_value"),
    ({"value": True}, TOPIC, "invalid_value"),
    ({"value": None}, TOPIC, "missing_value"),
    ({}, TOPIC, "missing_value"),
    ({"value": float("inf")}, TOPIC, "value_not_finite"),
    ({"value": 1e308 * 10}, TOPIC, "value_not_finite"),
    ({"value": 1}, NO_TOPIC, "missing_sensor_id"),
    ({"value": 1, "sensor_id": ""}, TOPIC, "invalid_sensor_id"),
    ({"value": 1, "sensor_id": "a b"}, TOPIC, "invalid_sensor_id"),
    ({"value": 1, "sensor_id": "x" * 200}, TOPIC, "invalid_sensor_id"),
    ({"value": 1, "ts": (NOW_US / 1e6) + 3600}, TOPIC, "ts_in_future"),
    ({"value": 1, "unit": "bar"}, TOPIC, "unit_mismatch"),
    ({"value": 1, "unit": 5}, TOPIC, "invalid_unit"),
    ({"value": 1, "quality": 1.5}, TOPIC, "invalid_quality"),
    ([1, 2], TOPIC, "invalid_shape"),
])
def test_bad_readings_are_rejected_with_their_reason(item: object, context: TopicContext,
                                                     reason: str) -> None:
    with pytest.raises(PayloadError) as error:
        _validator().validate(item, context, NOW_US)
    assert error.value.reason == reason


def test_unknown_sensors_are_rejected_only_when_restricted() -> None:
    item = {"sensor_id": "ghost", "value": 1}
    assert _validator().validate(item, NO_TOPIC, NOW_US).sensor_id == "ghost"
    with pytest.raises(PayloadError, match="unknown_sensor"):
        _validator(accept_unknown_sensors=False).validate(item, NO_TOPIC, NOW_US)


def test_future_skew_limit_is_configurable() -> None:
    item = {"value": 1, "ts": NOW_US / 1e6 + 30}
    assert _validator(max_future_skew_s=60).validate(item, TOPIC, NOW_US)
    with pytest.raises(PayloadError, match="ts_in_future"):
        _validator(max_future_skew_s=10).validate(item, TOPIC, NOW_US)
