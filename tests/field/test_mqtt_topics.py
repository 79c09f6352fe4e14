"""Field trial: retained messages and the gateway's own topics, with a real broker."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import paho.mqtt.publish as mqtt_publish
import pytest

from tests.field.support import run_cli, write_config
from tests.field.test_http import metric
from tests.support.gateway import GatewayProcess, buffer_rows, gateway_config, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker, free_port


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_retained_message_is_stored_once_flagged_and_never_again_after_restarts(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], protocol: str,
) -> None:
    """Item 8: a bare 7.5 retained on a topic became a new reading on every restart."""
    mqtt_publish.single("factory/s1/pump/temp", "7.5", qos=1, retain=True,
                        hostname="127.0.0.1", port=broker.port)
    gateway = make_gateway(mqtt={
        "port": broker.port, "protocol": protocol, "client_id": "gw-retained",
        "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
        "subscriptions": [{"topic": "factory/#", "qos": 1,
                           "template": "factory/{site}/{asset}/{sensor}"}]})
    for _ in range(3):
        gateway.start()
        publish_all(broker.port, [("factory/s1/pump/marker", b"1.0")])  # a live one, each time
        assert wait_for_rows(gateway.buffer_path, "readings", gateway.starts + 1) == gateway.starts + 1
        assert gateway.terminate() == 0
    rows = buffer_rows(gateway.buffer_path,
                       "SELECT value, flags FROM readings WHERE sensor_id = 'pump/temp'")
    assert len(rows) == 1, f"the retained message was taken {len(rows)} times"
    assert rows[0][0] == 7.5 and rows[0][1] & 8, "flagged as retained (flags & 8)"
    live = buffer_rows(gateway.buffer_path,
                       "SELECT count(*) FROM readings WHERE sensor_id = 'pump/marker'")[0][0]
    assert live >= 1


def test_a_new_retained_value_on_the_same_topic_is_taken(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 8: remembering what was taken per topic still takes a changed retained value.

    MQTT 3.1.1 (the demo's embedded broker speaks only that): every re-subscribe resends the
    retained message, so the third start sees "2" again and skips it.
    """
    gateway = make_gateway(mqtt={
        "port": broker.port, "protocol": "3.1.1", "client_id": "gw-retained-311",
        "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
        "subscriptions": [{"topic": "factory/#", "qos": 1,
                           "template": "factory/{site}/{asset}/{sensor}"}]})
    mqtt_publish.single("factory/s1/pump/mode", "1", qos=1, retain=True,
                        hostname="127.0.0.1", port=broker.port)
    gateway.start()
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    assert gateway.terminate() == 0
    mqtt_publish.single("factory/s1/pump/mode", "2", qos=1, retain=True,
                        hostname="127.0.0.1", port=broker.port)
    gateway.start()
    assert wait_for_rows(gateway.buffer_path, "readings", 2) == 2
    assert gateway.terminate() == 0
    gateway.start()  # "2" is retained again on this subscribe: seen, skipped, counted
    publish_all(broker.port, [("factory/s1/pump/live", b"3")])
    assert wait_for_rows(gateway.buffer_path, "readings", 3) == 3
    assert metric(gateway, 'edge_messages_skipped_total{reason="retained_seen"}') == 1
    assert gateway.terminate() == 0
    values = [r[0] for r in buffer_rows(gateway.buffer_path,
                                        "SELECT value FROM readings ORDER BY seq")]
    assert values == [1.0, 2.0, 3.0]


def test_a_catch_all_subscription_never_ingests_the_gateways_own_notifications(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 9: with `#`, retained edge/<gw>/alerts/... became readings and quarantine rows."""
    gateway = make_gateway(
        mqtt={"port": broker.port, "client_id": "gw-all",
              "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
              "subscriptions": [{"topic": "#", "qos": 1,
                                 "template": "factory/{site}/{asset}/{sensor}"}]},
        sensors={"pump/temp": {"limits": {"max": 90.0}}})
    gateway.start()
    publish_all(broker.port, [("factory/s1/pump/temp", b"95.0")])  # opens an alert: notified
    gateway.wait_for_log("alert opened")
    time.sleep(2)  # the alert and task notifications come back through `#`
    assert metric(gateway, 'edge_messages_skipped_total{reason="own_notification"}') >= 1
    assert gateway.terminate() == 0
    gateway.start()  # and the retained alert state once more, on the re-subscribe
    time.sleep(2)
    own = buffer_rows(gateway.buffer_path,
                      "SELECT count(*) FROM quarantine WHERE source LIKE 'edge/%'")[0][0]
    assert own == 0, f"{own} quarantine rows from the gateway's own topics"
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM readings")[0][0] == 1
    assert gateway.terminate() == 0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_wrong_mqtt_password_is_one_line_that_names_the_reason_and_the_fix(
    tmp_path: Path, protocol: str,
) -> None:
    """Item 15: a wrong password logged only MQTTConnectError(135), while gmqtt said 'not
    reconnecting' and the gateway said 'reconnecting with backoff'."""
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "edge", "right-password"],
                   check=True, capture_output=True)
    port = free_port()
    listener = (f"allow_anonymous false\npassword_file {passwords}\n"
                f"listener {port} 127.0.0.1\n")
    secret = tmp_path / "mqtt-password"
    secret.write_text("wrong-password")
    broker = Broker(workdir=tmp_path / "broker", port=port, listener_config=listener)
    broker.start()
    try:
        config = gateway_config(broker.port, tmp_path / "gw" / "buffer.sqlite")
        config["mqtt"].update({"protocol": protocol, "username": "edge",
                               "password_file": str(secret),
                               "reconnect": {"initial_delay_s": 0.2, "max_delay_s": 1.0}})
        gateway = GatewayProcess(tmp_path / "gw", config)
        gateway.start(wait_connected=False)
        try:
            time.sleep(4)
            assert gateway.alive(), "it keeps retrying: a broker admin may fix the account"
            lines = [r for r in gateway.log_records() if r.get("level") in ("WARNING", "ERROR")]
            assert len(lines) == 1, [r.get("message") for r in lines]
            text = f"{lines[0]['message']} {lines[0]['reason']}"
            assert "not authorised" in text or "bad user name or password" in text, text
            assert "mqtt.username" in text and "password_file" in text and "reconnecting" in text
            assert "not reconnecting" not in gateway.log_text()
        finally:
            assert gateway.terminate() == 0
    finally:
        broker.stop()


def _catch_all(port: int, client_id: str) -> dict[str, object]:
    return {"port": port, "client_id": client_id,
            "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
            "subscriptions": [{"topic": "#", "qos": 1,
                               "template": "factory/{site}/{asset}/{sensor}"}]}


def test_sensor_topics_under_the_notification_prefix_are_still_data(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 9: every topic under the notification prefix was skipped, so with
    topic_prefix `factory` every sensor reading vanished as own_notification, unlogged."""
    gateway = make_gateway(mqtt=_catch_all(broker.port, "gw-prefix"),
                           notifications={"topic_prefix": "factory"})
    gateway.start()
    publish_all(broker.port, [("factory/s1/pump/temp", b"1.5"),
                              ("factory/alerts/pump/temp", b'{"alert_id": "a", "value": null}')])
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    time.sleep(0.5)
    assert metric(gateway, 'edge_messages_skipped_total{reason="own_notification"}') == 1
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM quarantine")[0][0] == 0
    skipped = [r for r in gateway.log_records() if r.get("reason") == "own_notification"]
    assert skipped and skipped[0]["topic"] == "factory/alerts/pump/temp", "skips are logged"
    assert gateway.terminate() == 0


def test_other_gateways_notifications_on_a_shared_broker_are_skipped_not_quarantined(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 9: edge/<other-gw>/alerts/... came in through `#` and was quarantined."""
    gateway = make_gateway(mqtt=_catch_all(broker.port, "gw-shared"))
    gateway.start()
    alert = orjson.dumps({"alert_id": "x", "sensor_id": "pump/temp", "value": None,
                          "state": "open"})
    publish_all(broker.port, [("edge/gw-other/alerts/pump/pump-temp", alert),
                              ("edge/gw-other/tasks/pump", b'{"task_id": "t"}'),
                              ("factory/s1/pump/temp", b"1.5")])
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    time.sleep(0.5)
    quarantined = buffer_rows(gateway.buffer_path, "SELECT source, reason FROM quarantine")
    assert quarantined == [], quarantined
    assert metric(gateway, 'edge_messages_skipped_total{reason="gateway_notification"}') == 2
    assert any(r.get("reason") == "gateway_notification" for r in gateway.log_records())
    assert gateway.terminate() == 0


def test_a_notification_prefix_inside_a_data_subscription_is_a_config_error(
    tmp_path: Path,
) -> None:
    """Review of item 9: topic_prefix `factory` with subscription `factory/#` passed
    check-config, and every reading was then skipped as the gateway's own notification."""
    config = write_config(tmp_path / "edge.yaml", {
        **gateway_config(free_port(), tmp_path / "b.sqlite"),
        "notifications": {"topic_prefix": "factory"}})
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stdout
    assert "notifications.topic_prefix" in result.stderr, result.stderr
    assert "mqtt.subscriptions.0.topic" in result.stderr, result.stderr
