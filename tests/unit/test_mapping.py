"""Field mapping: five payload shapes from the floor, what a mapping cannot read, and
properties over arbitrary JSON (no crash; every problem names its path)."""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.ingest.codec_reader import _json, _problem
from edge.ingest.mapping import FieldMapping, Mapped
from edge.ingest.sensor_ids import ID_RE
from edge.ingest.timestamps import parse_ts_us
from edge.records import FLAG_TS_FROM_ARRIVAL
from edge.settings import SubscriptionSettings
from edge.settings.payloads import MappingSettings, ValueMapping
from tests.support.services import REPO_ROOT

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


def test_integer_codes_sent_as_floats_match_the_declared_maps() -> None:
    """Many PLCs send integers as 2.0: the state '3' and the quality '0' match them."""
    mapped = _read({"quality": {"path": "q", "map": {"0": "good"}},
                    "values": [{"path": "state", "sensor": "{asset}/state",
                                "states": {"3": "stopped"}}]},
                   {"state": 3.0, "q": 0.0})
    assert [(s.state, s.quality) for s in mapped.states] == [("stopped", "good")]
    assert mapped.problems == []
    fraction = _read({"quality": {"path": "q"}, "values": [{"path": "v", "sensor": "x"}]},
                     {"v": 1.0, "q": 0.5})
    assert fraction.readings == [] and "a quality is text or an integer code" in \
        fraction.problems[0]


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


def test_a_unit_or_quality_a_mapping_cannot_read_is_a_problem_not_dropped() -> None:
    """A new user's tryout: a unit path that is missing stored the value without its unit
    (a configured sensor unit could then not be converted to), and a quality that is an
    object was stored as its JSON text, where the auto codec rejects it."""
    units = _read({"values": [{"path": "v.*", "sensor": "{asset}/{key}",
                               "unit_path": "units.{key}"}]},
                  {"v": {"t0": 1.0, "t1": 2.0}, "units": {"t0": "degC", "t1": {"x": 1}}})
    assert _numbers(units) == {"pump-3/t0": 1.0}
    assert [p for p in units.problems if p.startswith("mapping_unit:")] and \
        all("is dict, not text" in p for p in units.problems)
    missing = _read({"values": [{"path": "v.*", "sensor": "{asset}/{key}",
                                 "unit_path": "units.{key}"}]},
                    {"v": {"t0": 1.0, "t1": 2.0}, "units": {"t0": "degC"}})
    assert _numbers(missing) == {"pump-3/t0": 1.0}, "the rest of the message is kept"
    assert [p for p in missing.problems if p.startswith("mapping_unit:")] == \
        ["mapping_unit: for 'v.* (t1)': unit path 'units.\"t1\"' not found"]
    quality = {"path": "q", "map": {"0": "good"}}
    bad = _read({"quality": quality, "values": [{"path": "a", "sensor": "{asset}/a"}]},
                {"a": 1.0, "q": {"x": 1}})
    assert bad.readings == [] and bad.problems[0].startswith("mapping_quality: quality at path 'q'")
    good = _read({"quality": quality, "values": [{"path": "a", "sensor": "{asset}/a"}]},
                 {"a": 1.0, "q": 0})
    assert [r.quality for r in good.readings] == ["good"]


@pytest.mark.parametrize(("mapping", "fragment"), [
    ({"values": [{"path": "a..b", "sensor": "x"}]}, "is not a JMESPath expression"),
    ({"values": [{"path": "a.*", "sensor": "x"}]}, "needs {key}"),
    ({"values": [{"path": "a", "sensor": "{key}"}]}, "name what a wildcard path"),
    ({"ts": {"path": "t", "format": "strftime:%Y-%m-%d %H:%M"},
      "values": [{"path": "a", "sensor": "x"}]},
     "needs `zone`"),
    ({"ts": {"path": "t", "format": "epoch_days"}, "values": [{"path": "a", "sensor": "x"}]},
     "format must be one of"),
    ({"values": []}, "at least 1"),
    ({"ts": {"path": "t", "format": "strftime:%H:%M:%S", "zone": "UTC"},
      "values": [{"path": "a", "sensor": "x"}]}, "has no year"),
    ({"values": [{"path": "", "sensor": "x"}]}, "at least 1 character"),
    ({"values": [{"path": "a", "sensor": ""}]}, "at least 1 character"),
    ({"values": [{"path": "a", "sensor": "x", "states": {"1": "on\x00"}}]}, "NUL"),
    ({"values": [{"path": "a", "sensor": "x", "states": {"1": ""}}]}, "is empty"),
    ({"values": [{"path": "a", "sensor": "x", "scale": 0}]}, "scale 0"),
    ({"values": [{"path": "a", "sensor": "x", "states": {"1": "x" * 257}}]}, "longer than 256"),
    ({"ts": {"path": "t", "format": "strftime:%Y-%m-%d %I:%M:%S", "zone": "UTC"},
      "values": [{"path": "a", "sensor": "x"}]}, "a 12-hour %I needs %p"),
    ({"ts": {"path": "t", "format": "strftime:%Y-%m-%d %Y", "zone": "UTC"},
      "values": [{"path": "a", "sensor": "x"}]}, "cannot read the time it writes"),
    # helper-22: these passed check-config, then quarantined every message
    ({"records": "a.*", "values": [{"path": "v", "sensor": "x"}]}, "must name an array"),
    ({"values": [{"path": "v", "sensor": "x", "unit_path": "u.{key}"}]}, "has no keys"),
    ({"values": [{"path": "a[*]", "sensor": "{asset}/v{index}", "unit_path": "u.{key}"}]},
     "has no keys"),
    ({"values": [{"path": "a", "sensor": "x", "states": {}}]}, "states is empty"),
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


# -- review of issue 13 ------------------------------------------------------------------------
def test_topic_fields_never_reach_str_format_twice() -> None:
    """F1: a topic field named `key` (or `index`) made every value mapping raise
    `TypeError: got multiple values for keyword argument 'key'` out of decode (and the
    daemon). Settings now refuse such templates; decode builds one dict regardless."""
    mapped = _read({"values": [{"path": "values.*", "sensor": "x/{key}"},
                               {"path": "v", "sensor": "{site}/temp"}]},
                   {"values": {"a": 1}, "v": 2}, {"site": "p1", "key": "pA", "index": "3"})
    assert _numbers(mapped) == {"x/a": 1.0, "p1/temp": 2.0}


def test_an_empty_key_under_a_wildcard_with_a_unit_path_reads_its_unit() -> None:
    """F2: the key "" was taken for "no key" and `units.{key}` compiled literally: a
    ParseError out of decode, from any publisher, with the cookbook's own shape 2."""
    mapped = _read({"values": [{"path": "fields.*", "sensor": "{asset}/{key}",
                                "unit_path": "units.{key}"}]},
                   {"fields": {"": 3, 'a"b': 4, "x.y": 5, "back\\slash": 6},
                    "units": {"": "degC", 'a"b': "bar", "x.y": "A", "back\\slash": "V"}})
    assert mapped.problems == []
    assert sorted((r.value, r.unit) for r in mapped.readings) == [
        (3.0, "degC"), (4.0, "bar"), (5.0, "A"), (6.0, "V")]


@pytest.mark.parametrize(("mapping", "document", "reason", "path"), [
    ({"records": "samples[?v > `0`]", "values": [{"path": "v", "sensor": "{asset}/v"}]},
     {"samples": [{"v": 1}, {"v": "x"}]}, "mapping_records", "samples[?v > `0`]"),
    ({"values": [{"path": "abs(v)", "sensor": "{asset}/v"}]}, {"v": "x"},
     "mapping_missing", "abs(v)"),
    ({"values": [{"path": "length(v)", "sensor": "{asset}/v"}]}, {"v": 5},
     "mapping_missing", "length(v)"),
    ({"values": [{"path": "max(vals)", "sensor": "{asset}/v"}]}, {"vals": [1, "a"]},
     "mapping_missing", "max(vals)"),
    ({"ts": {"path": "abs(t)", "format": "epoch_ms"},
      "values": [{"path": "v", "sensor": "{asset}/v"}]}, {"t": "x", "v": 1},
     "mapping_ts", "abs(t)"),
    ({"quality": {"path": "starts_with(q, 'G')"},
      "values": [{"path": "v", "sensor": "{asset}/v"}]}, {"q": 0, "v": 1},
     "mapping_quality", "starts_with(q, 'G')"),
    ({"values": [{"path": "v.*", "sensor": "{asset}/{key}", "unit_path": "abs(units.{key})"}]},
     {"v": {"a": 1}, "units": {"a": "degC"}}, "mapping_unit", "abs(units."),
])
def test_a_path_that_raises_on_this_message_is_a_problem_naming_the_path(
    mapping: dict[str, Any], document: Any, reason: str, path: str,
) -> None:
    """F3: filters and functions raise at search time on a payload of the wrong type
    (TypeError, JMESPathTypeError): that came out of decode and ended the daemon."""
    mapped = _read(mapping, document)
    assert [p.split(":", 1)[0] for p in mapped.problems] == [reason], mapped.problems
    assert path in mapped.problems[0]
    assert mapped.readings == [] and mapped.states == []


_ODD_KEYS = st.sampled_from(["", 'a"b', "x.y", "back\\slash", "汉字", "Δp", "p", " ", "{key}",
                             "units", "v", "q", "t", "0", "`", "'", "[*]"])
_MIXED = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True)
                      | st.integers(min_value=-(2 ** 64), max_value=2 ** 64)
                      | st.text(max_size=6),
                      lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(_ODD_KEYS | st.text(max_size=4), inner, max_size=4),
                      max_leaves=25)
_TRICKY_MAPPINGS = [
    {"records": "items[?v > `0`]", "ts": {"path": "t", "format": "epoch_ns"},
     "values": [{"path": "v", "sensor": "{asset}/v"}]},
    {"quality": {"path": "starts_with(q, 'G')"},
     "values": [{"path": "abs(v)", "sensor": "{asset}/abs"},
                {"path": "v.*", "sensor": "{asset}/{key}", "unit_path": "units.{key}"},
                {"path": "sort(arr)[*]", "sensor": "{asset}/s{index}"}]},
    {"ts": {"path": "to_number(t) || `1790000000000`", "format": "epoch_ms"},
     "values": [{"path": "*", "sensor": "{asset}/{key}", "unit_path": "units.{key}.name"},
                {"path": "max(vals)", "sensor": "{asset}/max", "kind": "number"},
                {"path": "merge(a, b).*", "sensor": "{asset}/m_{key}", "scale": 0.1},
                {"path": "length(v)", "sensor": "{asset}/len", "states": {"1": "one"}},
                {"path": "keys(v)[*]", "sensor": "{asset}/k{index}", "kind": "state"}]},
    {"values": [{"path": "join(', ', v)", "sensor": "{asset}/joined"},
                {"path": "v[?@ > `1`] | [0]", "sensor": "{asset}/first"},
                {"path": "sum(v)", "sensor": "{asset}/sum", "offset": 1e308},
                {"path": "*", "sensor": "{asset}/{key}", "unit_path": "abs(units.{key})"}]},
]
_DOCUMENT = st.dictionaries(st.sampled_from(["items", "t", "v", "q", "arr", "units", "vals",
                                             "a", "b"]) | _ODD_KEYS, _MIXED, min_size=2,
                            max_size=7)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_TRICKY_MAPPINGS), _DOCUMENT | _MIXED)
def test_decode_never_raises_with_filters_and_functions_over_mixed_json(
    mapping: dict[str, Any], document: Any,
) -> None:
    """F3 property: whatever the message, decode returns; each problem names its path."""
    mapped = _read(mapping, document)
    for problem in mapped.problems:
        reason, _, detail = problem.partition(": ")
        assert reason.startswith("mapping_") and "path" in detail, problem
    for reading in mapped.readings:
        assert math.isfinite(reading.value)
    ids = [r.sensor_id for r in mapped.readings] + [s.sensor_id for s in mapped.states]
    assert all(ID_RE.fullmatch(ident) for ident in ids), ids


def test_keys_that_collide_as_ids_in_one_message_are_told_apart_the_same_way_every_time() -> None:
    """F4: `Давление` and `Температура` both became `ru/`, `Δp` became `p` (the plain key's
    id): all but one value of each group were refused on every message, and the catalogue
    named the wrong key."""
    mapping = {"values": [{"path": "*", "sensor": "{asset}/{key}", "exclude": ["ts"]}]}
    document = {"Температура": 41.2, "Давление": 3.1, "p": 1.0, "Δp": 0.2, "": 7.0}
    first = _read(mapping, document, {"asset": "ru"})
    again = _read(mapping, dict(reversed(document.items())), {"asset": "ru"})
    ids = {r.value: r.sensor_id for r in first.readings}
    assert len(set(ids.values())) == 5, ids
    assert ids[1.0] == "ru/p", "a key that needed no change keeps its id"
    assert ids[0.2].startswith("ru/p-")
    assert all(ids[v].startswith("ru/m-") for v in (41.2, 3.1, 7.0)), ids
    assert {r.value: r.sensor_id for r in again.readings} == ids, "same names, same ids"
    catalogue = {n.sensor_id: n.name for n in first.new_sensors}
    assert catalogue == {ids[41.2]: "ru/Температура", ids[3.1]: "ru/Давление",
                         ids[0.2]: "ru/Δp", ids[7.0]: "ru/"}


def test_a_key_with_nothing_left_gets_a_digest_not_the_bare_prefix() -> None:
    """F4: an id that is only the template's prefix (`ru/`) gets `m-<digest>` for the key."""
    mapped = _read({"values": [{"path": "*", "sensor": "{asset}/{key}"}]},
                   {"汉字": 6}, {"asset": "u1"})
    [reading] = mapped.readings
    assert reading.sensor_id.startswith("u1/m-") and len(reading.sensor_id) == len("u1/m-") + 8
    assert [(n.sensor_id, n.name) for n in mapped.new_sensors] == [(reading.sensor_id, "u1/汉字")]


def test_a_string_where_a_unit_or_scale_says_number_is_quarantined_not_a_state() -> None:
    """F16: `{"v": "bad"}` under `unit: m3/h` became a state `bad` on a numeric sensor."""
    mapped = _read({"records": "samples", "ts": {"path": "t", "format": "epoch_s"},
                    "values": [{"path": "v", "sensor": "{asset}/flow", "unit": "m3/h"},
                               {"path": "c", "sensor": "{asset}/current", "scale": 0.1},
                               {"path": "w.*", "sensor": "{asset}/{key}",
                                "unit_path": "units.{key}"},
                               {"path": "s", "sensor": "{asset}/s"}]},
                   {"samples": [{"t": 1790000000, "v": "bad", "c": "ERR", "w": {"x": "---"},
                                 "s": "RUNNING"}]})
    assert mapped.readings == []
    assert [s.sensor_id for s in mapped.states] == ["pump-3/s"], "kind auto stays auto"
    assert len(mapped.problems) == 3
    assert all(p.startswith("mapping_value: record 0: path ") and "is not a number" in p
               for p in mapped.problems), mapped.problems
    assert ValueMapping(path="v", sensor="x", unit="A").numeric
    assert not ValueMapping(path="v", sensor="x").numeric


def test_epoch_ns_gives_the_same_microsecond_as_the_auto_codec() -> None:
    """F18: epoch_ns went through a float (`...123457` µs) where auto floors (`...123456`)."""
    ns = 1795708500123456789
    for raw in (ns, str(ns)):
        mapped = _read({"ts": {"path": "t", "format": "epoch_ns"},
                        "values": [{"path": "v", "sensor": "{asset}/v"}]}, {"t": raw, "v": 1})
        assert mapped.readings[0].ts_us == parse_ts_us(ns) == 1795708500123456
    cases: list[tuple[str, float]] = [("epoch_s", 1795708500), ("epoch_ms", 1795708500123),
                                      ("epoch_us", 1795708500123456), ("epoch_s", 1795708500.5)]
    for fmt, number in cases:
        mapped = _read({"ts": {"path": "t", "format": fmt},
                        "values": [{"path": "v", "sensor": "{asset}/v"}]}, {"t": number, "v": 1})
        assert mapped.readings[0].ts_us == parse_ts_us(number), fmt


def test_a_problem_inside_records_names_the_record() -> None:
    """F18: a 50-sample message with one bad sample said only `path 't' not found`."""
    mapped = _read({"records": "samples", "ts": {"path": "t", "format": "epoch_s"},
                    "values": [{"path": "v", "sensor": "{asset}/v", "kind": "number"}]},
                   {"samples": [{"t": 1790000000, "v": 1}, {"v": 2},
                                {"t": 1790000002, "v": "nope"}]})
    assert [r.value for r in mapped.readings] == [1.0]
    assert mapped.problems == ["mapping_ts: record 1: path 't' not found",
                               "mapping_value: record 2: path 'v': str 'nope' is not a number"]


def _example_mapping_subscription() -> dict[str, Any]:
    """The commented `codec: mapping` subscription of config/edge.example.yaml."""
    lines = (REPO_ROOT / "config" / "edge.example.yaml").read_text().splitlines()
    start = lines.index("    # - topic: plant/+/+/telemetry")
    block = []
    for line in lines[start:]:
        if not line.startswith("    # ") or line.startswith("    # Sparkplug"):
            break
        block.append(line[len("    # "):])
    [subscription] = yaml.safe_load("\n".join(block))
    return dict(subscription)


def test_the_example_configs_mapping_takes_state_once_and_warns_of_nothing() -> None:
    """F13: the example's `*` took `state` raw and the `states` line mapped it again: the
    mapped value was refused as conflicting_duplicate on every message."""
    subscription = SubscriptionSettings.model_validate(_example_mapping_subscription())
    assert subscription.mapping is not None and subscription.mapping.overlaps() == []
    mapped = FieldMapping(subscription.mapping).decode(
        {"ts": 1790000000000, "temp": 41.2, "state": "RUNNING", "flow": 1.5},
        {"site": "s1", "asset": "pA"}, RECEIVED)
    assert [(s.sensor_id, s.state) for s in mapped.states] == [("pA/state", "running")]
    assert _numbers(mapped) == {"pA/temp": 41.2, "pA/flow": 1.5} and mapped.problems == []


def test_the_readme_cookbook_fragments_are_whole_subscriptions_that_validate() -> None:
    """F18: fragments 2-5 had no topic/template/codec (pasted, they failed check-config)."""
    readme = (REPO_ROOT / "README.md").read_text()
    cookbook = readme[readme.index("#### Mapping cookbook"):readme.index("#### Sparkplug B")]
    blocks = re.findall(r"```yaml\n(.*?)```", cookbook, flags=re.DOTALL)
    assert len(blocks) == 5
    for block in blocks:
        [subscription] = yaml.safe_load(textwrap.dedent(block))
        settings = SubscriptionSettings.model_validate(subscription)
        assert settings.codec == "mapping" and settings.mapping is not None
        assert settings.mapping.overlaps() == []
    assert "17324" not in cookbook, "example epochs from 2024 are stored clock_suspect"


def test_a_sensitivity_that_is_not_a_number_is_refused_as_such() -> None:
    from edge.detection.settings import DetectionSettings

    with pytest.raises(ValidationError) as error:
        DetectionSettings(sensitivity=float("nan"))
    assert "finite number" in str(error.value)


def test_a_number_beyond_a_double_costs_only_its_own_value() -> None:
    # orjson refuses 1e400 (valid JSON); the message is read all the same and only that
    # value is quarantined (helper-22: the whole message was invalid_json).
    document = _json(b'{"vals": [1, 2.5], "big": 1e400, "huge": 1' + b"0" * 400 + b"}")
    assert document["vals"] == [1, 2.5] and document["big"] == document["huge"] == math.inf
    mapped = _read({"values": [{"path": "vals[*]", "sensor": "{asset}/v{index}"},
                               {"path": "big", "sensor": "{asset}/big"}]}, document)
    assert _numbers(mapped) == {"pump-3/v0": 1.0, "pump-3/v1": 2.5}
    assert mapped.problems == ["mapping_value: path 'big': inf is not finite"]
    for not_json in (b'{"a": NaN, "b": 1e400}', b'{"a": 1e400,', b'{"a": "\xff", "b": 1e400}'):
        with pytest.raises(orjson.JSONDecodeError):
            _json(not_json)


def test_a_long_list_of_problems_names_the_ones_it_cannot_show() -> None:
    # helper-22: sixteen problems were cut at 1,000 characters mid-number, the last unnamed.
    problems = [f"mapping_value: path 'v{i}': {'x' * 60} is not a number" for i in range(15)]
    problems.append("invalid_state: 'longstr' is longer than 256 characters")
    error = _problem(problems)
    assert error is not None and error.reason == "mapping_value"
    assert error.detail.startswith("16 problems: mapping_value: path 'v0'")
    assert error.detail.endswith("more (invalid_state, mapping_value)")
    assert len(error.detail) <= 1000
    shown = error.detail.split("; and ")[0].removeprefix("16 problems: ").split("; ")
    assert all(problem in problems for problem in shown)
