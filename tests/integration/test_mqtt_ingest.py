"""The daemon against a real Mosquitto: every QoS 1 message lands once, correctly mapped."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import orjson

from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

SENSORS = 100
MESSAGES = 10_000
BASE_MS = (int(time.time()) - 20_000) * 1000  # recent: older readings are clock_suspect
PLUS_TWO = timezone(timedelta(hours=2))


def _sensor(k: int) -> tuple[str, str, str]:
    """(topic, asset_id, sensor_id) of message k."""
    index = k % SENSORS
    asset = f"asset-{index // 10}"
    return f"factory/site1/{asset}/s{index}", asset, f"{asset}/s{index}"


def _message(k: int) -> tuple[str, bytes]:
    topic, _, sensor_id = _sensor(k)
    form = k % 3
    if form == 0:  # one JSON object, epoch milliseconds
        return topic, orjson.dumps({"sensor_id": sensor_id, "ts": BASE_MS + k, "value": k})
    if form == 1:  # a JSON array: RFC 3339 with an offset, and epoch seconds
        local = datetime.fromtimestamp((BASE_MS + k) / 1000, PLUS_TWO).isoformat()
        return topic, orjson.dumps([
            {"sensor_id": sensor_id, "ts": local, "value": k},
            {"sensor_id": sensor_id, "ts": (BASE_MS + 10_000_000 + k) / 1000, "value": k + 0.5},
        ])
    return topic, str(k).encode()  # a bare number: sensor from the topic, ts from arrival


def test_10k_qos1_messages_in_three_forms_land_exactly_once(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    publish_all(broker.port, (_message(k) for k in range(MESSAGES)))
    arrays = sum(1 for k in range(MESSAGES) if k % 3 == 1)
    expected = MESSAGES + arrays
    assert wait_for_rows(gateway.buffer_path, "readings", expected) == expected
    assert gateway.terminate() == 0

    rows = buffer_rows(gateway.buffer_path,
                       "SELECT sensor_id, asset_id, ts_us, value, flags FROM readings")
    assert len(rows) == expected
    seen = Counter((sensor_id, value) for sensor_id, _, _, value, _ in rows)
    assert max(seen.values()) == 1, "a reading landed twice"
    by_value = {(sensor_id, value): (asset, ts_us, flags) for sensor_id, asset, ts_us, value, flags in rows}
    for k in range(MESSAGES):
        _, asset, sensor_id = _sensor(k)
        got_asset, ts_us, flags = by_value[(sensor_id, float(k))]
        assert got_asset == asset
        if k % 3 in (0, 1):
            assert ts_us == (BASE_MS + k) * 1000, f"message {k}: ts not stored as UTC"
            assert flags == 0
        else:
            assert flags & 1, "a reading without ts must be flagged"
            assert abs(ts_us / 1e6 - datetime.now(UTC).timestamp()) < 600
        if k % 3 == 1:
            assert by_value[(sensor_id, k + 0.5)][1] == (BASE_MS + 10_000_000 + k) * 1000
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM quarantine")[0][0] == 0


def test_messages_queued_while_the_daemon_was_away_arrive_when_it_returns(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()  # registers the persistent session and its subscription
    assert gateway.terminate() == 0
    publish_all(broker.port, ((f"factory/s/a/t{k % 7}", str(k).encode()) for k in range(3000)))
    gateway.start()
    assert wait_for_rows(gateway.buffer_path, "readings", 3000) == 3000
    assert gateway.terminate() == 0


def test_mqtt_311_sessions_work_too(broker: Broker,
                                    make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(mqtt={
        "port": broker.port, "protocol": "3.1.1", "client_id": "gw-311",
        "subscriptions": [{"topic": "factory/#", "qos": 1,
                           "template": "factory/{site}/{asset}/{sensor}"}]})
    gateway.start()
    publish_all(broker.port, ((f"factory/s/a/t{k % 3}", str(k).encode()) for k in range(2000)))
    assert wait_for_rows(gateway.buffer_path, "readings", 2000) == 2000
    assert gateway.terminate() == 0


def test_messages_with_mqtt5_properties_take_the_general_path_and_land(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    gateway = make_gateway()
    gateway.start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="props-pub",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [("plc", "S7-1500")]
    properties.ContentType = "application/json"
    for k in range(50):
        client.publish(f"factory/s/a/p{k % 2}", orjson.dumps({"ts": BASE_MS + k, "value": k}),
                       qos=1, properties=properties).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    assert wait_for_rows(gateway.buffer_path, "readings", 50) == 50
    assert gateway.terminate() == 0
