"""A paho-mqtt publisher for tests and benchmarks (QoS 1, many messages in flight)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt

# Packet ids are 16-bit: wait for a window to be acknowledged before reusing ids.
_WINDOW = 20_000


def _wait_all(window: list[mqtt.MQTTMessageInfo], deadline: float) -> int:
    for info in window:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not info.is_published():
            raise TimeoutError("broker did not acknowledge every message in time")
    count = len(window)
    window.clear()
    return count


def publish_all(port: int, messages: Iterable[tuple[str, bytes]], qos: int = 1,
                client_id: str = "test-publisher", timeout_s: float = 120.0,
                username: str | None = None, password: str | None = None) -> int:
    """Publish every (topic, payload) and wait until the broker acknowledged all of them."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if username is not None:
        client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    published = 0
    window: list[mqtt.MQTTMessageInfo] = []
    try:
        for topic, payload in messages:
            window.append(client.publish(topic, payload, qos=qos))
            if len(window) >= _WINDOW:
                published += _wait_all(window, deadline)
        return published + _wait_all(window, deadline)
    finally:
        client.disconnect()
        client.loop_stop()
