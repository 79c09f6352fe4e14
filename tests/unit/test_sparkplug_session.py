"""Sparkplug B sessions: births, aliases, datatypes, seq, deaths, restore. Payloads are built
here with protobuf; tests/integration/test_sparkplug.py uses the Eclipse Tahu library."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.ingest.sparkplug.codec import rebirth_payload
from edge.ingest.sparkplug.schema import DataType, Payload
from edge.ingest.sparkplug.session import Naming, SparkplugSessions
from edge.records import FLAG_HISTORICAL

T_MS = 1_790_000_000_000
NODE = "spBv1.0/Plant 1/{kind}/Edge-A"
DEVICE = "spBv1.0/Plant 1/{kind}/Edge-A/Pump 3"


def _payload(seq: int | None, metrics: list[dict[str, Any]], ts_ms: int = T_MS) -> bytes:
    message = Payload()
    message.timestamp = ts_ms
    if seq is not None:
        message.seq = seq
    for spec in metrics:
        metric = message.metrics.add()
        for key, value in spec.items():
            if key == "unit":
                metric.properties.keys.append("engUnit")
                metric.properties.values.add(type=DataType.STRING, string_value=value)
            elif isinstance(value, dict):
                getattr(metric, key).CopyFrom(type(getattr(metric, key))(**value))
            else:
                setattr(metric, key, value)
    return bytes(message.SerializeToString())


def _born(sessions: SparkplugSessions, bdseq: int = 7) -> None:
    sessions.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": bdseq},
        {"name": "Node Control/Rebirth", "datatype": DataType.BOOLEAN, "boolean_value": False},
        {"name": "Uptime", "alias": 1, "datatype": DataType.UINT32, "long_value": 10},
    ]), 1)
    sessions.decode(DEVICE.format(kind="DBIRTH"), _payload(1, [
        {"name": "Motor Temp (°C)", "alias": 10, "datatype": DataType.FLOAT, "float_value": 41.5,
         "unit": "degC"},
        {"name": "Running", "alias": 11, "datatype": DataType.BOOLEAN, "boolean_value": True},
        {"name": "Offset", "alias": 12, "datatype": DataType.INT16, "int_value": 2**32 - 5},
        {"name": "Counter", "alias": 13, "datatype": DataType.INT64, "long_value": 2**64 - 2},
        {"name": "Mode", "alias": 14, "datatype": DataType.STRING, "string_value": "AUTO"},
        {"name": "Serviced", "alias": 15, "datatype": DataType.DATETIME, "long_value": T_MS},
        {"name": "Recipe", "alias": 16, "datatype": DataType.DATASET},
    ]), 2)


def test_births_name_sensors_assets_units_and_values_by_datatype() -> None:
    sessions = SparkplugSessions()
    birth = sessions.decode(DEVICE.format(kind="DBIRTH"), b"", 1)
    assert birth.problems[0].reason == "no_birth" and birth.rebirth == ("Plant 1", "Edge-A")
    _born(sessions)
    decoded = sessions.decode(DEVICE.format(kind="DDATA"), _payload(2, [
        {"alias": 10, "float_value": 42.25, "timestamp": T_MS + 5},
        {"alias": 11, "boolean_value": False},
        {"alias": 12, "int_value": 2**32 - 7},
        {"alias": 13, "long_value": 5},
        {"alias": 14, "string_value": "MANUAL"},
        {"alias": 15, "long_value": T_MS + 1000},
        {"alias": 10, "is_null": True, "timestamp": T_MS + 6},
        {"alias": 10, "float_value": 40.0, "timestamp": T_MS - 60_000, "is_historical": True},
        {"alias": 13, "long_value": 9, "is_transient": True},
    ], ts_ms=T_MS + 10), 3)
    assert decoded.problems == [] and decoded.rebirth is None
    numbers = {(r.sensor_id.rsplit("/", 1)[1], r.ts_us): r for r in decoded.readings}
    states = {(r.sensor_id.rsplit("/", 1)[1], r.ts_us): r.state for r in decoded.states}
    temp = numbers[("Motor_Temp_C", (T_MS + 5) * 1000)]
    assert temp.value == 42.25 and temp.unit == "degC" and temp.asset_id == "Plant_1/Edge-A/Pump_3"
    now = (T_MS + 10) * 1000
    assert states[("Running", now)] == "false" and states[("Mode", now)] == "MANUAL"
    assert numbers[("Offset", now)].value == -7.0 and numbers[("Counter", now)].value == 5.0
    assert states[("Serviced", now)] == "2026-09-21T14:13:21.000Z"  # T_MS + 1 s
    assert states[("Motor_Temp_C", (T_MS + 6) * 1000)] is None, "a null is a null state"
    historical = numbers[("Motor_Temp_C", (T_MS - 60_000) * 1000)]
    assert historical.flags & FLAG_HISTORICAL
    assert {r.received_us for r in decoded.readings} == {3}
    assert len(decoded.readings) + len(decoded.states) == 8, "the transient one is not stored"


def test_the_birth_catalogues_original_names_and_quarantines_what_it_cannot_store() -> None:
    sessions = SparkplugSessions()
    sessions.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1}]), 1)
    birth = sessions.decode(DEVICE.format(kind="DBIRTH"), _payload(1, [
        {"name": "Motor Temp (°C)", "alias": 10, "datatype": DataType.FLOAT, "float_value": 1.0,
         "unit": "degC"},
        {"name": "Recipe", "alias": 16, "datatype": DataType.DATASET,
         "dataset_value": {"num_of_columns": 1}},
    ]), 2)
    names = {entry.sensor_id: (entry.name, entry.datatype, entry.unit) for entry in birth.catalog}
    assert names["Plant_1/Edge-A/Pump_3/Motor_Temp_C"] == ("Motor Temp (°C)", "Float", "degC")
    assert names["Plant_1/Edge-A/Pump_3/Recipe"][1] == "Dataset"
    assert [p.reason for p in birth.problems] == ["unsupported_datatype"]
    assert "Recipe" in birth.problems[0].detail
    assert [b.scope for b in birth.births] == ["Plant 1/Edge-A/Pump 3"]


def test_unknown_aliases_and_seq_gaps_ask_for_a_rebirth_and_the_rest_decodes() -> None:
    sessions = SparkplugSessions()
    _born(sessions)
    decoded = sessions.decode(DEVICE.format(kind="DDATA"), _payload(5, [
        {"alias": 10, "float_value": 1.0}, {"alias": 99, "float_value": 2.0}]), 3)
    assert decoded.seq_gap and decoded.rebirth == ("Plant 1", "Edge-A")
    assert [p.reason for p in decoded.problems] == ["unknown_alias"]
    assert len(decoded.readings) == 1
    in_order = sessions.decode(DEVICE.format(kind="DDATA"), _payload(6, [
        {"alias": 10, "float_value": 3.0}]), 4)
    assert not in_order.seq_gap and in_order.rebirth is None
    wrapped = SparkplugSessions()
    _born(wrapped)
    for seq in range(2, 256):
        wrapped.decode(NODE.format(kind="NDATA"), _payload(seq, [{"alias": 1, "long_value": 1}]), 5)
    assert not wrapped.decode(NODE.format(kind="NDATA"),
                              _payload(0, [{"alias": 1, "long_value": 1}]), 6).seq_gap


def test_deaths_mark_sensors_stale_only_for_the_current_birth() -> None:
    sessions = SparkplugSessions()
    _born(sessions, bdseq=7)
    stale = sessions.decode(NODE.format(kind="NDEATH"), _payload(None, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 6}]), 5)
    assert stale.skip == "sparkplug_stale_death" and stale.events == []
    death = sessions.decode(NODE.format(kind="NDEATH"), _payload(None, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}]), 6)
    [event] = death.events
    assert event.state == "offline" and event.scope == "Plant 1/Edge-A"
    assert event.source_id == "Plant_1/Edge-A"
    assert "Plant_1/Edge-A/Pump_3/Motor_Temp_C" in event.sensor_ids
    reborn = sessions.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 8}]), 7)
    assert [(e.state, e.scope) for e in reborn.events] == [("online", "Plant 1/Edge-A")]
    device_death = sessions.decode(DEVICE.format(kind="DDEATH"), _payload(1, []), 8)
    assert device_death.skip == "sparkplug_stale_death", "the rebirth reset the node's devices"


def test_births_restored_after_a_restart_decode_aliases_without_a_gap() -> None:
    first = SparkplugSessions()
    births = []
    _born(first)
    for kind, topic in (("NBIRTH", NODE), ("DBIRTH", DEVICE)):
        births.append(first.decode(topic.format(kind=kind), _payload(0 if kind == "NBIRTH" else 1, [
            {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7},
            {"name": "Motor Temp (°C)", "alias": 10, "datatype": DataType.FLOAT,
             "float_value": 1.0}]), 1).births[0])
    restarted = SparkplugSessions()
    assert restarted.restore([(b.scope, b.payload) for b in reversed(births)]) == 2
    decoded = restarted.decode(DEVICE.format(kind="DDATA"), _payload(40, [
        {"alias": 10, "float_value": 3.5}]), 9)
    assert decoded.problems == [] and not decoded.seq_gap
    assert [r.value for r in decoded.readings] == [3.5]


def test_commands_and_state_are_not_data_and_the_rebirth_request_is_valid_sparkplug() -> None:
    sessions = SparkplugSessions()
    compressed = Payload(uuid="SPBV1.0_COMPRESSED", body=b"\x78\x9c")
    assert [p.reason for p in sessions.decode("spBv1.0/G/NBIRTH/N", compressed.SerializeToString(),
                                              1).problems] == ["unsupported_compression"]
    assert sessions.decode("spBv1.0/G/NCMD/N", b"", 1).skip == "sparkplug_command"
    assert sessions.decode("spBv1.0/STATE/host-1", b"{}", 1).skip == "sparkplug_state"
    request = Payload()
    request.ParseFromString(rebirth_payload(1_790_000_000.0))
    [metric] = request.metrics
    assert (metric.name, metric.datatype, metric.boolean_value) == \
        ("Node Control/Rebirth", DataType.BOOLEAN, True)


def test_naming_templates_decide_ids_and_assets() -> None:
    sessions = SparkplugSessions(Naming(sensor_id="{node}.{metric}", asset="{group}"))
    _born(sessions)
    decoded = sessions.decode(DEVICE.format(kind="DDATA"), _payload(2, [
        {"alias": 10, "float_value": 1.0}]), 3)
    assert [(r.sensor_id, r.asset_id) for r in decoded.readings] == \
        [("Edge-A.Motor_Temp_C", "Plant_1")]


@settings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from(["NBIRTH", "NDATA", "DBIRTH", "DDATA", "NDEATH",
                                                 "DDEATH"]))
def test_any_bytes_on_any_topic_decode_or_come_back_as_problems(data: bytes, kind: str) -> None:
    sessions = SparkplugSessions()
    _born(sessions)
    topic = (DEVICE if kind.startswith("D") else NODE).format(kind=kind)
    decoded = sessions.decode(topic, data, 9)
    for problem in decoded.problems:
        assert problem.reason and problem.detail
    for reading in decoded.readings:
        assert isinstance(reading.value, float)
