"""gmqtt internals that edge/ingest/mqtt_client.py patches: fail loudly if an upgrade moves them.

BatchAckClient replaces gmqtt's per-message QoS 1/2 acknowledgement with batch acks after
the commit. It relies on private names; each test here names the one it checks, so an
upgrade that breaks the hook says where, instead of silently acking before the commit.
"""

from __future__ import annotations

import inspect
import struct
from importlib.metadata import version

import gmqtt
from gmqtt.mqtt.connection import MQTTConnection
from gmqtt.mqtt.constants import MQTTCommands
from gmqtt.mqtt.handler import MqttPackageHandler
from gmqtt.mqtt.package import CommandWithMidPacket

from edge.ingest.mqtt_client import GMQTT_CHECKED_VERSION, BatchAckClient
from edge.ingest.ports import unpack_ack_token
from edge.settings import MqttSettings

HINT = "gmqtt changed: re-check edge/ingest/mqtt_client.py against the new version"


def _client(protocol: str = "3.1.1") -> tuple[BatchAckClient, list[tuple[str, bytes, int, int | None, bool]]]:
    got: list[tuple[str, bytes, int, int | None, bool]] = []
    settings = MqttSettings(protocol=protocol, subscriptions=[{"topic": "#"}])  # type: ignore[arg-type, list-item]
    client = BatchAckClient(settings, "test", 7, lambda *args: got.append(args))
    return client, got


def _publish(topic: bytes, mid: int, payload: bytes, qos: int = 1,
             properties: bytes = b"") -> tuple[int, bytes]:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + properties + payload
    return MQTTCommands.PUBLISH | (qos << 1), body


def test_the_installed_gmqtt_is_the_checked_version() -> None:
    assert version("gmqtt") == GMQTT_CHECKED_VERSION, HINT


def test_the_private_names_exist_with_the_signatures_we_call() -> None:
    for name in ("_handle_packet", "_handle_publish_packet", "_handle_qos_1_publish_packet",
                 "_handle_qos_2_publish_packet"):
        assert callable(getattr(MqttPackageHandler, name, None)), f"{HINT}: {name}"
    assert list(inspect.signature(MqttPackageHandler._handle_qos_1_publish_packet).parameters) == [
        "self", "mid", "packet", "print_topic", "properties"], HINT
    assert list(inspect.signature(MqttPackageHandler._handle_publish_packet).parameters) == [
        "self", "cmd", "raw_packet"], HINT
    assert "proto_ver" in inspect.signature(CommandWithMidPacket.build_package).parameters, HINT
    assert callable(getattr(MQTTConnection, "send_package", None)), HINT
    client, _ = _client()
    assert isinstance(client._package_handler._handler_cache, dict), HINT
    assert client._connection is None, f"{HINT}: Client._connection"
    assert isinstance(client, gmqtt.Client)


def test_a_qos1_publish_reaches_our_fast_path_without_an_ack() -> None:
    client, got = _client()
    cmd, body = _publish(b"f/a/t", 513, b"41.5")
    client._package_handler._handle_packet(cmd, body)  # what gmqtt's protocol calls
    assert len(got) == 1, f"{HINT}: the PUBLISH hook in _handler_cache is not used"
    topic, payload, qos, token, retained = got[0]
    assert (topic, payload, qos, retained) == ("f/a/t", b"41.5", 1, False)
    assert token is not None and unpack_ack_token(token) == (7, 1, 513)


def test_a_publish_with_mqtt5_properties_goes_through_gmqtts_parser_to_our_hook() -> None:
    client, got = _client("5")
    # MQTT 5 properties (length 2): payload format indicator (0x01) = 1
    cmd, body = _publish(b"f/a/t", 9, b"7.0", qos=2, properties=b"\x02\x01\x01")
    client._package_handler._handle_packet(cmd, body)
    assert got and got[0][:3] == ("f/a/t", b"7.0", 2), \
        f"{HINT}: _handle_qos_2_publish_packet override not reached"
    assert got[0][3] is not None and unpack_ack_token(got[0][3]) == (7, 2, 9)


def test_the_retain_bit_survives_both_paths() -> None:
    client, got = _client()
    cmd, body = _publish(b"f/a/t", 1, b"7.5")
    client._package_handler._handle_packet(cmd | 0x01, body)
    client5, got5 = _client("5")
    cmd, body = _publish(b"f/a/t", 2, b"7.5", properties=b"\x02\x01\x01")
    client5._package_handler._handle_packet(cmd | 0x01, body)
    assert got[0][4] is True and got5[0][4] is True, f"{HINT}: retain bit lost"


def test_batch_acks_are_built_by_gmqtts_packet_factory() -> None:
    packet = CommandWithMidPacket.build_package(MQTTCommands.PUBACK, 513, False, proto_ver=4)
    assert packet == bytes([MQTTCommands.PUBACK, 2]) + struct.pack("!H", 513), HINT
