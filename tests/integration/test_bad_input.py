"""Bad input is quarantined with its reason and acknowledged; its neighbours all land."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import orjson

from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

TOPIC = "factory/site1/press-1/s1"
SENSOR = "press-1/s1"


def _obj(**fields: object) -> bytes:
    return orjson.dumps({"sensor_id": SENSOR, **fields})


FAR_FUTURE_S = time.time() + 365 * 24 * 3600

# (description, topic, payload, reason)
MALFORMED: list[tuple[str, str, bytes, str]] = [
    ("not JSON", TOPIC, b"hello there", "invalid_json"),
    ("value as a string", TOPIC, _obj(value="12.5"), "invalid_value"),
    ("NaN literal", TOPIC, b'{"sensor_id": "press-1/s1", "value": NaN}', "invalid_json"),
    ("Infinity literal", TOPIC, b'{"sensor_id": "press-1/s1", "value": Infinity}', "invalid_json"),
    ("bare NaN", TOPIC, b"NaN", "value_not_finite"),
    ("bare inf", TOPIC, b"inf", "value_not_finite"),
    ("missing value", TOPIC, _obj(ts=1_700_000_000), "missing_value"),
    ("unknown sensor (restricted)", TOPIC, orjson.dumps({"sensor_id": "ghost", "value": 1}),
     "unknown_sensor"),
    ("huge payload", TOPIC, b'{"sensor_id": "x", "value": 1, "pad": "' + b"x" * 70_000 + b'"}',
     "payload_too_large"),
    ("invalid UTF-8", TOPIC, b'{"sensor_id": "\xff\xfe", "value": 1}', "invalid_utf8"),
    ("far-future ts", TOPIC, _obj(value=1, ts=FAR_FUTURE_S), "ts_in_future"),
    ("nested garbage", TOPIC, _obj(value={"a": [1, 2, {"b": None}]}), "invalid_value"),
    ("empty payload", TOPIC, b"", "empty_payload"),
    ("empty array", TOPIC, b"[]", "empty_payload"),
    ("JSON string", TOPIC, b'"12.5"', "invalid_shape"),
    ("boolean value", TOPIC, _obj(value=True), "invalid_value"),
    ("ts not a time", TOPIC, _obj(value=1, ts="yesterday"), "invalid_ts"),
    ("ts without offset", TOPIC, _obj(value=1, ts="2024-01-01T00:00:00"), "invalid_ts"),
    ("sensor_id a number", TOPIC, orjson.dumps({"sensor_id": 5, "value": 1}), "invalid_sensor_id"),
    ("bare number, topic names no sensor", "factory/loose", b"3.3", "missing_sensor_id"),
    ("deeply nested arrays", TOPIC, b"[" * 500 + b"]" * 500, "invalid_shape"),
    ("too many readings", TOPIC, orjson.dumps([{"value": 1}] * 1001), "too_many_readings"),
    ("negative epoch", TOPIC, _obj(value=1, ts=-5), "invalid_ts"),
]


def test_malformed_inputs_are_quarantined_and_good_neighbours_land(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(
        ingest={"accept_unknown_sensors": False},
        sensors={SENSOR: {"asset": "press-1"}}, assets={"press-1": {}},
    )
    gateway.start()
    pid = gateway.process.pid if gateway.process else None
    messages: list[tuple[str, bytes]] = []
    good = 0
    for _round in range(3):
        for _, topic, payload, _ in MALFORMED:
            good += 1
            messages.append((TOPIC, _obj(value=good, ts=1_700_000_000 + good)))
            messages.append((topic, payload))
        # an array with one good and one bad element: the good one lands
        good += 1
        messages.append((TOPIC, orjson.dumps([{"sensor_id": SENSOR, "value": good,
                                                "ts": 1_700_000_000 + good},
                                               {"sensor_id": SENSOR, "value": False}])))
    publish_all(broker.port, messages)
    expected_quarantine = 3 * (len(MALFORMED) + 1)
    assert wait_for_rows(gateway.buffer_path, "quarantine", expected_quarantine) == expected_quarantine
    assert wait_for_rows(gateway.buffer_path, "readings", good) == good

    assert gateway.alive() and gateway.process is not None and gateway.process.pid == pid
    assert gateway.terminate() == 0
    values = sorted(int(v) for (v,) in buffer_rows(gateway.buffer_path, "SELECT value FROM readings"))
    assert values == list(range(1, good + 1))
    reasons = Counter(r for (r,) in buffer_rows(gateway.buffer_path, "SELECT reason FROM quarantine"))
    expected = Counter(reason for _ in range(3) for *_, reason in MALFORMED)
    expected["invalid_value"] += 3  # the bad array elements
    assert reasons == expected
    starts = [r for r in gateway.log_records() if r.get("message") == "gateway started"]
    assert len(starts) == 1, "the daemon must never restart"
