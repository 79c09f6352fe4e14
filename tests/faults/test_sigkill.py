"""Guarantee 1: a `kill -9` at any moment loses nothing that the broker acknowledged to us.

The buffer's unique key (sensor_id, ts) turns broker redeliveries of messages that were
committed but not yet acknowledged into counted duplicates, so the buffer holds each
reading exactly once (and the central side dedups with the same key).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson

from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.load import reconcile
from tests.support.publish import publish_all
from tests.support.services import Broker

MESSAGES = 20_000
BASE_MS = 1_700_000_000_000


def _messages() -> list[tuple[str, bytes]]:
    return [
        (f"factory/site1/asset-{k % 50}/vib",
         orjson.dumps({"sensor_id": f"sensor-{k % 200}", "ts": BASE_MS + k, "value": k}))
        for k in range(MESSAGES)
    ]


def test_sigkill_during_a_qos1_stream_loses_nothing_and_duplicates_nothing(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    publisher = threading.Thread(target=publish_all, args=(broker.port, _messages()))
    publisher.start()
    killed_at = wait_for_rows(gateway.buffer_path, "readings", MESSAGES // 4, timeout_s=60)
    gateway.kill()
    time.sleep(0.5)  # the publisher keeps going; the broker queues for our session
    gateway.start()
    publisher.join(120)
    assert not publisher.is_alive()

    assert wait_for_rows(gateway.buffer_path, "readings", MESSAGES, timeout_s=90) == MESSAGES
    assert gateway.terminate() == 0
    print(f"killed with {killed_at} of {MESSAGES} rows committed")
    assert killed_at < MESSAGES, "the kill must happen mid-stream"
    reconcile(MESSAGES, [v for (v,) in buffer_rows(gateway.buffer_path, "SELECT value FROM readings")],
              "buffer")
