"""Sparkplug B sessions: births, aliases, datatypes, seq, deaths, restore. Payloads are built
here with protobuf; tests/integration/test_sparkplug.py uses the Eclipse Tahu library."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.ingest.sparkplug.codec import rebirth_payload
from edge.ingest.sparkplug.schema import DataType, Payload
from edge.ingest.sparkplug.session import Naming, SparkplugSessions
from edge.records import FLAG_HISTORICAL, FLAG_TS_FROM_ARRIVAL

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
    birth = sessions.decode(DEVICE.format(kind="DBIRTH"), _payload(1, []), 1)
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
    assert names["Plant_1/Edge-A/Pump_3/Recipe"][1] == "DataSet"
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
    # A death whose bdSeq is missing or not an integer cannot be matched to the birth: the
    # node stays online and its data keeps decoding.
    for unmatched in (_payload(None, [{"name": "bdSeq", "datatype": DataType.STRING,
                                       "string_value": "7"}]),
                      _payload(None, [{"name": "Uptime", "alias": 1, "long_value": 11}])):
        assert sessions.decode(NODE.format(kind="NDEATH"), unmatched, 5).skip == \
            "sparkplug_stale_death"
    data = sessions.decode(NODE.format(kind="NDATA"), _payload(2, [{"alias": 1, "long_value": 12}]), 5)
    assert [r.value for r in data.readings] == [12.0] and data.problems == []
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
    assert restarted.restore([(b.scope, b.payload, b.received_us) for b in reversed(births)]) == 2
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


def _with_bytes(payload: bytes, text: bytes, replacement: bytes) -> bytes:
    assert payload.count(text) == 1 and len(text) == len(replacement)
    return payload.replace(text, replacement)


def test_invalid_utf8_or_nul_in_a_birth_or_a_string_value_is_quarantined_never_raised() -> None:
    """proto2 hands invalid UTF-8 back as bytes: a name, a unit or a string value that is not
    text a database can hold is a problem of that message, not an exception (review F5, F6)."""
    sessions = SparkplugSessions()
    for text, bad in ((b"ZQ", b"\xff\xfe"), (b"Z\x01", b"Z\x00")):
        birth = _with_bytes(_payload(0, [
            {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
            {"name": text.decode(), "alias": 1, "datatype": DataType.DOUBLE, "double_value": 1.0}]),
            text, bad)
        decoded = sessions.decode(NODE.format(kind="NBIRTH"), birth, 1)
        assert [p.reason for p in decoded.problems] == ["invalid_protobuf"], decoded
        assert "metric 1" in decoded.problems[0].detail and not decoded.births
    unit = _with_bytes(_payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
        {"name": "t", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 1.0, "unit": "KJ"}]),
        b"KJ", b"\xc3\x28")
    assert [p.reason for p in sessions.decode(NODE.format(kind="NBIRTH"), unit, 1).problems] \
        == ["invalid_protobuf"]
    _born(sessions)
    for bad in (b"\xff\xfe", b"A\x00"):
        data = _with_bytes(_payload(2, [{"alias": 14, "string_value": "AB"},
                                        {"alias": 10, "float_value": 2.5}]), b"AB", bad)
        decoded = sessions.decode(DEVICE.format(kind="DDATA"), data, 9)
        assert [p.reason for p in decoded.problems] == ["invalid_value"]
        assert "'Mode'" in decoded.problems[0].detail
        assert [r.value for r in decoded.readings] == [2.5] and decoded.states == []


def test_a_redelivered_message_is_not_a_seq_gap() -> None:
    sessions = SparkplugSessions()
    _born(sessions)
    data = _payload(2, [{"alias": 10, "float_value": 2.5}])
    assert not sessions.decode(DEVICE.format(kind="DDATA"), data, 9).seq_gap
    again = sessions.decode(DEVICE.format(kind="DDATA"), data, 10)
    assert not again.seq_gap and again.rebirth is None and sessions.counts.get("seq_gap") is None
    assert not sessions.decode(DEVICE.format(kind="DDATA"), _payload(3, []), 11).seq_gap


def test_data_after_a_death_waits_for_the_next_birth_and_a_repeated_death_counts_once() -> None:
    sessions = SparkplugSessions()
    _born(sessions)
    death = _payload(None, [{"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}])
    assert [e.state for e in sessions.decode(NODE.format(kind="NDEATH"), death, 5).events] \
        == ["offline"]
    assert sessions.decode(NODE.format(kind="NDEATH"), death, 6).skip == "sparkplug_stale_death"
    late = sessions.decode(DEVICE.format(kind="DDATA"), _payload(2, [
        {"alias": 10, "float_value": 2.5}]), 7)
    assert [p.reason for p in late.problems] == ["no_birth"] and late.readings == []
    assert "NDEATH" in late.problems[0].detail and late.rebirth == ("Plant 1", "Edge-A")
    _born(sessions, bdseq=8)
    assert sessions.decode(DEVICE.format(kind="DDEATH"), _payload(2, []), 8).events
    after_device_death = sessions.decode(DEVICE.format(kind="DDATA"), _payload(3, [
        {"alias": 10, "float_value": 2.5}]), 9)
    assert [p.reason for p in after_device_death.problems] == ["no_birth"]


def test_a_restart_does_not_bring_back_device_births_of_an_earlier_node_session() -> None:
    first = SparkplugSessions()
    old_node = first.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 6}]), 100).births[0]
    old_device = first.decode(DEVICE.format(kind="DBIRTH"), _payload(1, [
        {"name": "Motor Temp (°C)", "alias": 1, "datatype": DataType.FLOAT,
         "float_value": 1.0}]), 200).births[0]
    new_node = first.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}]), 300).births[0]
    assert old_node.scope == new_node.scope  # the buffer keeps the newest per scope
    restarted = SparkplugSessions()
    assert restarted.restore([(b.scope, b.payload, b.received_us)
                              for b in (new_node, old_device)]) == 1
    stale = restarted.decode(DEVICE.format(kind="DDATA"), _payload(2, [
        {"alias": 1, "float_value": 81.0}]), 400)
    assert [p.reason for p in stale.problems] == ["no_birth"] and stale.readings == []


def test_devices_named_in_other_scripts_stay_distinct_assets_and_sensors() -> None:
    """Ids are made level by level: a device name that loses its letters keeps a digest, so
    two pumps named in Cyrillic do not merge into one asset and one sensor (review F17)."""
    sessions = SparkplugSessions()
    sessions.decode("spBv1.0/G/NBIRTH/NC", _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
        {"name": "Температура", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 1.0}]), 1)
    births = {}
    pump = "\u041d\u0430\u0441\u043e\u0441"  # Cyrillic "pump"
    compressor = "\u041a\u043e\u043c\u043f\u0440\u0435\u0441\u0441\u043e\u0440"
    for device in (pump, compressor, "Pump 3"):
        births[device] = sessions.decode(f"spBv1.0/G/DBIRTH/NC/{device}", _payload(1, [
            {"name": "Давление", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 3.0},
            {"name": "Motor Temp (°C)", "alias": 2, "datatype": DataType.DOUBLE,
             "double_value": 4.0}]), 2)
    ids = {device: sorted(r.sensor_id for r in b.readings) for device, b in births.items()}
    assets = {device: b.readings[0].asset_id for device, b in births.items()}
    assert len(set(assets.values())) == 3 and assets["Pump 3"] == "G/NC/Pump_3"
    assert assets[pump].startswith("G/NC/x-")
    assert len({i for group in ids.values() for i in group}) == 6
    assert "G/NC/Pump_3/Motor_Temp_C" in ids["Pump 3"]
    assert all(i.count("/") == 3 and not i.endswith("/") for group in ids.values() for i in group)


def test_a_metric_without_any_timestamp_takes_the_arrival_time_and_is_flagged() -> None:
    sessions = SparkplugSessions()
    _born(sessions)
    message = Payload(seq=2)
    message.metrics.add(alias=10, float_value=5.5)
    message.metrics.add(alias=10, float_value=6.5, timestamp=T_MS + 5)
    [unstamped, stamped] = sessions.decode(DEVICE.format(kind="DDATA"),
                                           message.SerializeToString(), 9_000).readings
    assert (unstamped.ts_us, unstamped.flags) == (9_000, FLAG_TS_FROM_ARRIVAL)
    assert (stamped.ts_us, stamped.flags) == ((T_MS + 5) * 1000, 0)


def _death(bdseq: int = 7) -> bytes:
    return _payload(None, [{"name": "bdSeq", "datatype": DataType.INT64, "long_value": bdseq}])


def _device_birth(seq: int, alias: int = 10) -> bytes:
    return _payload(seq, [{"name": "Motor Temp (°C)", "alias": alias, "datatype": DataType.FLOAT,
                           "float_value": 40.0}])


def _saved(sessions: SparkplugSessions, topic: str, payload: bytes, at: int,
           kept: dict[str, tuple[bytes, int]]) -> Any:
    """Decode, and keep its births as the buffer would (the newest per scope)."""
    decoded = sessions.decode(topic, payload, at)
    for birth in decoded.births:
        kept[birth.scope] = (birth.payload, birth.received_us)
    return decoded


def test_a_device_dead_before_its_node_says_so_when_it_is_born_again() -> None:
    """DDEATH, then NDEATH, then NBIRTH and DBIRTH (an edge node's usual shutdown and
    start): the device's birth says it is back, so its own node_offline alert resolves."""
    sessions = SparkplugSessions()
    _born(sessions)
    assert [e.state for e in sessions.decode(DEVICE.format(kind="DDEATH"), _payload(2, []),
                                             5).events] == ["offline"]
    assert sessions.decode(NODE.format(kind="NDEATH"), _death(), 7).events
    node_back = sessions.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 8}]), 8)
    assert [e.scope for e in node_back.events] == ["Plant 1/Edge-A"]
    reborn = sessions.decode(DEVICE.format(kind="DBIRTH"), _device_birth(1), 9)
    assert [(e.state, e.scope) for e in reborn.events] == [("online", "Plant 1/Edge-A/Pump 3")]


def test_after_a_restart_the_first_message_of_a_node_or_device_says_it_is_back() -> None:
    """Dead at the restart (their node_offline alerts open), alive after it: data can only
    come from a node born again meanwhile (its QoS 0 birth lost), so the first data, or the
    next birth, says the node and the device are online and their alerts resolve."""
    first = SparkplugSessions()
    kept: dict[str, tuple[bytes, int]] = {}
    _saved(first, NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}]), 1, kept)
    _saved(first, DEVICE.format(kind="DBIRTH"), _device_birth(1), 2, kept)
    assert _saved(first, DEVICE.format(kind="DDEATH"), _payload(2, []), 3, kept).events
    assert _saved(first, NODE.format(kind="NDEATH"), _death(), 4, kept).events
    births = [(scope, payload, at) for scope, (payload, at) in kept.items()]

    by_data = SparkplugSessions()
    by_data.restore(births)
    data = by_data.decode(DEVICE.format(kind="DDATA"), _payload(3, [
        {"alias": 10, "float_value": 41.0}]), 10)
    assert [r.value for r in data.readings] == [41.0]
    assert [(e.state, e.scope) for e in data.events] == [
        ("online", "Plant 1/Edge-A"), ("online", "Plant 1/Edge-A/Pump 3")]
    assert by_data.decode(DEVICE.format(kind="DDATA"), _payload(4, [
        {"alias": 10, "float_value": 41.5}]), 11).events == [], "once"

    by_births = SparkplugSessions()
    by_births.restore(births)
    node_back = by_births.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 8}]), 11)
    assert [(e.state, e.scope) for e in node_back.events] == [("online", "Plant 1/Edge-A")]
    device_back = by_births.decode(DEVICE.format(kind="DBIRTH"), _device_birth(1), 12)
    assert [(e.state, e.scope) for e in device_back.events] == [
        ("online", "Plant 1/Edge-A/Pump 3")], "the device's alert resolves too"

    # The node's data first (it asks for a rebirth), then its births: one event each.
    by_both = SparkplugSessions()
    by_both.restore(births)
    assert [e.scope for e in by_both.decode(NODE.format(kind="NDATA"), _payload(5, [
        {"alias": 1, "long_value": 11}]), 13).events] == ["Plant 1/Edge-A"]
    assert by_both.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 8}]), 14).events == []
    assert [e.scope for e in by_both.decode(DEVICE.format(kind="DBIRTH"), _device_birth(1),
                                            15).events] == ["Plant 1/Edge-A/Pump 3"]


def test_a_node_restored_from_the_buffer_is_asked_for_a_rebirth_by_its_first_message() -> None:
    """It may have re-birthed with other aliases while the gateway was away (births are QoS 0
    and not retained): the first message decodes by the saved birth and asks once."""
    first = SparkplugSessions()
    kept: dict[str, tuple[bytes, int]] = {}
    _saved(first, NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}]), 1, kept)
    _saved(first, DEVICE.format(kind="DBIRTH"), _device_birth(1), 2, kept)
    restarted = SparkplugSessions()
    restarted.restore([(scope, payload, at) for scope, (payload, at) in kept.items()])
    data = _payload(9, [{"alias": 10, "float_value": 3.5}])
    first_data = restarted.decode(DEVICE.format(kind="DDATA"), data, 10)
    assert [r.value for r in first_data.readings] == [3.5]
    assert first_data.problems == [] and first_data.rebirth == ("Plant 1", "Edge-A")
    assert restarted.decode(DEVICE.format(kind="DDATA"), _payload(10, [
        {"alias": 10, "float_value": 3.6}]), 11).rebirth is None


def test_a_birth_that_gives_one_alias_to_two_metrics_reads_neither_by_it() -> None:
    sessions = SparkplugSessions()
    birth = sessions.decode("spBv1.0/Plant 1/NBIRTH/Raw", _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
        {"name": "A", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 1.0},
        {"name": "B", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 2.0},
        {"alias": 1, "datatype": DataType.DOUBLE, "double_value": 3.0},  # nameless
    ]), 1)
    assert [p.reason for p in birth.problems] == ["duplicate_alias", "invalid_birth"]
    assert "'A' and 'B'" in birth.problems[0].detail
    assert "metric 3" in birth.problems[1].detail
    assert {(r.sensor_id, r.value) for r in birth.readings} == \
        {("Plant_1/Raw/A", 1.0), ("Plant_1/Raw/B", 2.0)}, "birth values go by name"
    data = sessions.decode("spBv1.0/Plant 1/NDATA/Raw", _payload(1, [
        {"alias": 1, "double_value": 5.0}]), 2)
    assert [p.reason for p in data.problems] == ["unknown_alias"] and data.readings == []


def test_a_birth_that_names_a_metric_twice_keeps_the_first() -> None:
    # helper-22: both aliases mapped to one sensor, and the birth's second value was
    # quarantined as a conflicting duplicate of the first.
    sessions = SparkplugSessions()
    birth = sessions.decode("spBv1.0/Plant 1/NBIRTH/Raw", _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
        {"name": "Motor Temp (°C)", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 1.0},
        {"name": "Motor Temp (°C)", "alias": 12, "datatype": DataType.DOUBLE, "double_value": 13.0},
    ]), 1)
    assert [p.reason for p in birth.problems] == ["duplicate_name"]
    assert "metric 2 repeats the name 'Motor Temp (°C)'" in birth.problems[0].detail
    assert [r.value for r in birth.readings] == [1.0]
    data = sessions.decode("spBv1.0/Plant 1/NDATA/Raw", _payload(1, [
        {"alias": 1, "double_value": 5.0}, {"alias": 12, "double_value": 6.0}]), 2)
    assert [r.value for r in data.readings] == [5.0]
    assert [p.reason for p in data.problems] == ["unknown_alias"]


def test_a_copy_of_the_last_birth_is_not_a_new_session() -> None:
    # helper-23: a retained NBIRTH, resent by the broker after a gateway restart, reset the
    # node's devices, and the device's data was quarantined as no_birth until a rebirth.
    first = SparkplugSessions()
    kept: dict[str, tuple[bytes, int]] = {}
    nbirth = _payload(0, [{"name": "bdSeq", "datatype": DataType.INT64, "long_value": 7}])
    _saved(first, NODE.format(kind="NBIRTH"), nbirth, 1, kept)
    dbirth = _device_birth(1)
    _saved(first, DEVICE.format(kind="DBIRTH"), dbirth, 2, kept)
    for sessions in (first, SparkplugSessions()):  # live, and after a restart
        if sessions is not first:
            sessions.restore([(scope, payload, at) for scope, (payload, at) in kept.items()])
        for topic, payload in ((NODE.format(kind="NBIRTH"), nbirth),
                               (DEVICE.format(kind="DBIRTH"), dbirth)):
            copy = sessions.decode(topic, payload, 5)
            assert copy.skip == "sparkplug_birth_copy" and not copy.seq_gap
            assert copy.births == [] and copy.readings == []
        data = sessions.decode(DEVICE.format(kind="DDATA"), _payload(2, [
            {"alias": 10, "float_value": 41.0}]), 6)
        assert [r.value for r in data.readings] == [41.0] and data.problems == []
    # A new birth (another bdSeq and timestamp) is a new session: it resets the devices.
    reborn = first.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 8}], ts_ms=T_MS + 1), 7)
    assert reborn.skip is None and reborn.births
    late = first.decode(DEVICE.format(kind="DDATA"), _payload(1, [
        {"alias": 10, "float_value": 42.0}]), 8)
    assert [p.reason for p in late.problems] == ["no_birth"]


def test_a_device_metric_never_takes_the_id_of_a_node_metric() -> None:
    # helper-23: node metric "Pump 3/Flow" and device "Pump 3"'s metric "Flow" were one series.
    sessions = SparkplugSessions()
    sessions.decode(NODE.format(kind="NBIRTH"), _payload(0, [
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 1},
        {"name": "Pump_3/Flow", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 100.0},
    ]), 1)
    device = sessions.decode(DEVICE.format(kind="DBIRTH"), _payload(1, [
        {"name": "Flow", "alias": 1, "datatype": DataType.DOUBLE, "double_value": 5.0}]), 2)
    node_data = sessions.decode(NODE.format(kind="NDATA"), _payload(2, [
        {"alias": 1, "double_value": 101.0}]), 3)
    [node_reading], [device_reading] = node_data.readings, device.readings
    assert node_reading.sensor_id == "Plant_1/Edge-A/Pump_3/Flow"
    assert device_reading.sensor_id.startswith("Plant_1/Edge-A/Pump_3/Flow-")
    assert [e.sensor_id for e in device.catalog] == [device_reading.sensor_id]
