"""Codecs, timestamps, topic templates and unit conversion: pure functions."""

from __future__ import annotations

import pytest

from edge.errors import PayloadError
from edge.ingest.codecs import decode_payload
from edge.ingest.timestamps import parse_ts_us
from edge.ingest.topics import TopicMapper, filter_matches
from edge.settings import SubscriptionSettings
from edge.times import format_ts_us
from edge.units import conversion


def _decode(payload: bytes) -> list[object]:
    return decode_payload(payload, max_bytes=1024, max_items=10)


def test_json_object_array_and_bare_number_decode() -> None:
    assert _decode(b'{"value": 1}') == [{"value": 1}]
    assert _decode(b'[{"value": 1}, {"value": 2}]') == [{"value": 1}, {"value": 2}]
    assert _decode(b" 12.5\n") == [{"value": 12.5}]
    assert _decode(b"-3e2") == [{"value": -300.0}]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "empty_payload"), (b"   ", "empty_payload"), (b"[]", "empty_payload"),
    (b"{", "invalid_json"), (b"abc", "invalid_json"), (b"\xff\xfe", "invalid_utf8"),
    (b'{"a": "\xff"}', "invalid_utf8"), (b"42 and more", "invalid_json"),
    (b"true", "invalid_shape"), (b'"1"', "invalid_shape"), (b"x" * 2000, "payload_too_large"),
    (b"[" + b"{},"*10 + b"{}]", "too_many_readings"),
])
def test_undecodable_payloads_raise_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as error:
        _decode(payload)
    assert error.value.reason == reason


@pytest.mark.parametrize(("raw", "expected_us"), [
    (1_700_000_000, 1_700_000_000_000_000),            # epoch seconds
    (1_700_000_000.25, 1_700_000_000_250_000),         # fractional seconds
    (1_700_000_000_123, 1_700_000_000_123_000),        # epoch milliseconds
    (1_700_000_000_123_456, 1_700_000_000_123_456),    # epoch microseconds
    (1_700_000_000_123_456_789, 1_700_000_000_123_456),  # epoch nanoseconds
    ("2023-11-14T22:13:20Z", 1_700_000_000_000_000),
    ("2023-11-15T00:13:20.5+02:00", 1_700_000_000_500_000),
    ("2023-11-14T22:13:20.000001+00:00", 1_700_000_000_000_001),
])
def test_timestamps_become_utc_microseconds(raw: object, expected_us: int) -> None:
    assert parse_ts_us(raw) == expected_us


@pytest.mark.parametrize("raw", ["2023-11-14T22:13:20", "yesterday", -1, float("nan"), True,
                                 None, [1], "9" * 100])
def test_bad_timestamps_are_rejected(raw: object) -> None:
    with pytest.raises(PayloadError, match="invalid_ts"):
        parse_ts_us(raw)


def test_format_ts_round_trips() -> None:
    assert format_ts_us(1_700_000_000_500_000) == "2023-11-14T22:13:20.500000Z"


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), [
    ("factory/#", "factory/a/b", True), ("factory/+/b", "factory/a/b", True),
    ("factory/+", "factory/a/b", False), ("#", "$SYS/x", False), ("a/b", "a/b", True),
    ("a/+/c", "a/b/d", False), ("a/#", "a", True),  # "#" also matches the parent level
])
def test_filter_matching_follows_mqtt_wildcards(topic_filter: str, topic: str, matches: bool) -> None:
    assert filter_matches(topic_filter, topic) is matches


def test_topic_template_extracts_asset_and_builds_sensor_id() -> None:
    mapper = TopicMapper([
        SubscriptionSettings(topic="plc/#", template="plc/{sensor}"),
        SubscriptionSettings(topic="factory/#", template="factory/{site}/{asset}/{sensor}"),
        SubscriptionSettings(topic="raw/#", template="raw/{site}/{asset}/{sensor}",
                             sensor_id="{site}.{asset}.{sensor}"),
    ])
    context = mapper.context("factory/p1/pump-3/vibration")
    assert (context.subscription, context.asset_id, context.sensor_id) == (
        "factory/#", "pump-3", "pump-3/vibration")
    assert mapper.context("plc/t1").sensor_id == "t1"
    assert mapper.context("plc/t1").asset_id is None
    assert mapper.context("raw/p1/a/b").sensor_id == "p1.a.b"
    unmatched = mapper.context("factory/too/short")
    assert (unmatched.subscription, unmatched.sensor_id) == ("factory/#", None)
    assert mapper.context("elsewhere").subscription == "unmatched"


@pytest.mark.parametrize(("source", "target", "value", "expected"), [
    ("degF", "degC", 212.0, 100.0), ("K", "degC", 273.15, 0.0), ("psi", "bar", 14.5038, 1.0),
    ("in/s", "mm/s", 1.0, 25.4), ("mA", "A", 1500.0, 1.5), ("degC", "degC", 5.0, 5.0),
])
def test_unit_conversions(source: str, target: str, value: float, expected: float) -> None:
    factors = conversion(source, target)
    assert factors is not None
    assert value * factors[0] + factors[1] == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_conversion_between_dimensions_is_refused() -> None:
    assert conversion("degC", "bar") is None
    assert conversion("furlong", "m") is None
