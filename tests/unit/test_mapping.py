"""Field mapping: five payload shapes from the floor, what a mapping cannot read, and
properties over arbitrary JSON (no crash; every problem names its path)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.ingest.mapping import FieldMapping, Mapped
from edge.records import FLAG_TS_FROM_ARRIVAL
from edge.settings import SubscriptionSettings
from edge.settings.payloads import MappingSettings

RECEIVED = 1_790_000_000_000_000


def _read(mapping: dict[str, Any], document: Any, fields: dict[str, str] | None = None) -> Mapped:
    return FieldMapping(MappingSettings.model_validate(mapping)).decode(
        document, fields or {"asset": "pump-3"}, RECEIVED)


def _numbers(mapped: Mapped) -> dict[str, float]:
    return {r.sensor_id: r.value for r in mapped.readings}


def test_shape_1_flat_multi_value_message() -> None:
    mapped = _read({"ts": {"path": "ts", "format": "epoch_ms"},
                    "values": [{"path": "*", "sensor": "{asset}/{key}", "exclude": ["ts"]}]},
                   {"temp": 41.2, "press": 3.1, "rpm": 1480, "ts": 1790000000123})
    assert _numbers(mapped) == {"pump-3/temp": 41.2, "pump-3/press": 3.1, "pump-3/rpm": 1480.0}
    assert {r.ts_us for r in mapped.readings} == {1790000000123000}
    assert mapped.problems == []


def test_shape_2_nested_objects_with_scaling_and_units() -> None:
    mapped = _read({"ts": {"path": "time", "format": "rfc3339"}, "values": [
        {"path": "data.motor.current", "sensor": "{asset}/motor_current", "unit": "A",
         "scale": 0.1},
        {"path": "data.motor.temps.*", "sensor": "{asset}/{key}", "unit_path": "units.{key}"}]},
        {"time": "2026-11-24T10:00:00+01:00", "data": {"motor": {"current": 121,
                                                                  "temps": {"winding": 71.5}}},
         "units": {"winding": "degC"}})
    assert mapped.problems == []
    current, winding = mapped.readings
    assert (current.sensor_id, current.unit) == ("pump-3/motor_current", "A")
    assert current.value == pytest.approx(12.1)
    assert (winding.sensor_id, winding.unit) == ("pump-3/winding", "degC")
    assert current.ts_us == 1_795_510_800_000_000


def test_shape_3_arrays_of_samples() -> None:
    mapped = _read({"records": "samples", "ts": {"path": "t", "format": "epoch_s"},
                    "values": [{"path": "v", "sensor": "{asset}/flow", "unit": "m3/h"}]},
                   {"device": "pump-3", "samples": [{"t": 1790000000, "v": 1.5},
                                                    {"t": 1790000001.5, "v": 1.75}]})
    assert [(r.ts_us, r.value) for r in mapped.readings] == [(1_790_000_000_000_000, 1.5),
                                                             (1_790_000_001_500_000, 1.75)]


def test_shape_4_telegraf_like_fields_and_free_text_keys() -> None:
    mapped = _read({"ts": {"path": "timestamp", "format": "epoch_s"}, "asset": "{site}-{line}",
                    "values": [{"path": "fields.*", "sensor": "{line}/{key}"}]},
                   {"name": "motor", "fields": {"Motor Temp (°C)": 55.0, "usage idle": 98.1},
                    "timestamp": 1790000000},
                   {"site": "p1", "line": "l3"})
    assert _numbers(mapped) == {"l3/Motor_Temp_C": 55.0, "l3/usage_idle": 98.1}
    assert {r.asset_id for r in mapped.readings} == {"p1-l3"}
    assert {(n.sensor_id, n.name) for n in mapped.new_sensors} == {
        ("l3/Motor_Temp_C", "l3/Motor Temp (°C)"), ("l3/usage_idle", "l3/usage idle")}


def test_shape_5_states_quality_and_a_local_time_format() -> None:
    mapped = _read({"ts": {"path": "ts", "format": "strftime:%d.%m.%Y %H:%M:%S",
                           "zone": "Europe/Berlin"},
                    "quality": {"path": "q", "map": {"0": "good", "1": "uncertain"}},
                    "values": [
                        {"path": "state", "sensor": "{asset}/state",
                         "states": {"RUNNING": "running", "IDLE": "idle", "3": "stopped"}},
                        {"path": "alarm", "sensor": "{asset}/alarm"},
                        {"path": "level", "sensor": "{asset}/level"}]},
                   {"state": "RUNNING", "alarm": False, "level": None, "q": 0,
                    "ts": "24.11.2026 10:00:00"})
    states = {s.sensor_id: (s.state, s.quality) for s in mapped.states}
    assert states == {"pump-3/state": ("running", "good"), "pump-3/alarm": ("false", "good"),
                      "pump-3/level": (None, "good")}
    assert {s.ts_us for s in mapped.states} == {1_795_510_800_000_000}  # 09:00 UTC


def test_what_a_mapping_cannot_read_is_named_and_the_rest_is_kept() -> None:
    mapped = _read({"ts": {"path": "ts", "format": "epoch_ms"}, "values": [
        {"path": "a", "sensor": "{asset}/a"}, {"path": "b.c", "sensor": "{asset}/c"},
        {"path": "state", "sensor": "{asset}/state", "states": {"ON": "on"}},
        {"path": "n", "sensor": "{asset}/n", "kind": "number"}]},
        {"ts": 1790000000000, "a": 1.0, "state": "EXPLODED", "n": "12"})
    assert _numbers(mapped) == {"pump-3/a": 1.0}
    assert any("'b.c' not found" in p for p in mapped.problems)
    assert any("'state'" in p and "EXPLODED" in p for p in mapped.problems)
    assert any("'n'" in p and "not a number" in p for p in mapped.problems)
    no_time = _read({"ts": {"path": "ts", "format": "epoch_ms"},
                     "values": [{"path": "a", "sensor": "{asset}/a"}]}, {"a": 1})
    assert no_time.readings == [] and no_time.problems == ["mapping_ts: path 'ts' not found"]
    arrival = _read({"values": [{"path": "a", "sensor": "{asset}/a"}]}, {"a": 1})
    assert arrival.readings[0].flags & FLAG_TS_FROM_ARRIVAL


@pytest.mark.parametrize(("mapping", "fragment"), [
    ({"values": [{"path": "a..b", "sensor": "x"}]}, "is not a JMESPath expression"),
    ({"values": [{"path": "a.*", "sensor": "x"}]}, "needs {key}"),
    ({"values": [{"path": "a", "sensor": "{key}"}]}, "name what a wildcard path"),
    ({"ts": {"path": "t", "format": "strftime:%H:%M"}, "values": [{"path": "a", "sensor": "x"}]},
     "needs `zone`"),
    ({"ts": {"path": "t", "format": "epoch_days"}, "values": [{"path": "a", "sensor": "x"}]},
     "format must be one of"),
    ({"values": []}, "at least 1"),
])
def test_bad_mappings_are_refused_at_load(mapping: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as error:
        SubscriptionSettings.model_validate({"topic": "t/#", "codec": "mapping",
                                             "mapping": mapping})
    assert fragment in str(error.value)


def test_a_mapping_may_only_use_template_fields_the_topic_gives() -> None:
    with pytest.raises(ValidationError, match=r"uses \['line'\]"):
        SubscriptionSettings.model_validate({
            "topic": "t/+", "template": "t/{asset}", "codec": "mapping",
            "mapping": {"values": [{"path": "a", "sensor": "{line}/a"}]}})
    with pytest.raises(ValidationError, match="needs a mapping block"):
        SubscriptionSettings.model_validate({"topic": "t/#", "codec": "mapping"})


_JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers()
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_PROPERTY_MAPPING = {"records": "items", "ts": {"path": "t", "format": "epoch_ms"},
                     "quality": {"path": "q"},
                     "values": [{"path": "v.*", "sensor": "{asset}/{key}"},
                                {"path": "s", "sensor": "{asset}/s", "states": {"A": "a"}},
                                {"path": "x[*]", "sensor": "{asset}/x{index}", "scale": 1e308}]}


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["items", "t", "v", "s", "x", "q"]), _JSON, max_size=6)
       | _JSON)
def test_any_json_reads_or_comes_back_as_named_problems(document: Any) -> None:
    mapped = _read(_PROPERTY_MAPPING, document)
    for problem in mapped.problems:
        reason, _, detail = problem.partition(": ")
        assert reason.startswith("mapping_") and ("path" in detail or "topic" in detail)
    for reading in mapped.readings:
        assert math.isfinite(reading.value)
