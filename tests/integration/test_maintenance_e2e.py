"""Faults from the simulator become alerts, tasks and MQTT notifications, end to end.

A real Mosquitto and the real daemon: an out-of-range fault on a pump's temperature opens
one alert and one task, is announced on MQTT (retained), and after the fault the alert
resolves and the retained topic is cleared. The daemon is SIGKILLed in the middle of the
fault: after the restart there is still one alert and one task, not two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from edge.simulator.factory import DEFAULT_SENSORS, FactoryModel, Fault
from edge.simulator.publisher import sensor_config
from tests.support.gateway import GatewayProcess, buffer_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

SENSOR = "pump-1/temperature"
ALERT_TOPIC = f"edge/gw-test/alerts/pump-1/{SENSOR}"
TASK_TOPIC = "edge/gw-test/tasks/pump-1"
PERIOD_S = 1.0
FAULT_START, FAULT_END, KILL_AT, STEPS = 300, 400, 350, 700


class Recorder:
    """A paho subscriber that keeps every notification it sees."""

    def __init__(self, port: int, client_id: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("edge/gw-test/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[tuple[bytes, bool]]:
        with self._lock:
            return [(payload, retain) for t, payload, retain in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _messages(start: float) -> list[tuple[float, tuple[str, bytes]]]:
    sensors = tuple(s for s in DEFAULT_SENSORS if s.asset_id == "pump-1")
    model = FactoryModel(seed=7, period_s=PERIOD_S, sensors=sensors)
    fault = Fault("out_of_range", SENSOR, "pump-1", start + FAULT_START * PERIOD_S,
                  start + FAULT_END * PERIOD_S, 3.0)
    return [(ts, (f"factory/plant1/{spec.asset_id}/{spec.kind}",
                  orjson.dumps({"sensor_id": spec.sensor_id, "ts": ts, "value": value,
                                "unit": spec.unit})))
            for ts, spec, value in model.stream(start, STEPS * PERIOD_S, [fault])]


def _wait(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _alert_versions(path: Path) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in buffer_rows(
        path, "SELECT alert_id, state FROM alerts WHERE json_extract(body, '$.sensor_id') = ? "
        "AND json_extract(body, '$.detector') = 'limits' ORDER BY seq", (SENSOR,))]


def test_fault_opens_one_alert_and_task_survives_sigkill_then_resolves_and_clears(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    config = sensor_config(FactoryModel())
    gateway = make_gateway(
        detection={"resolve_after_s": 30, "resolve_after_readings": 5,
                   "defaults": {"silence": {"enabled": False}}},
        assets=config["assets"], sensors=config["sensors"],
    )
    gateway.start()
    recorder = Recorder(broker.port, "e2e-recorder")
    start = time.time() - 7200
    stream = _messages(start)
    first = [m for ts, m in stream if ts < start + KILL_AT * PERIOD_S]
    rest = [m for ts, m in stream if ts >= start + KILL_AT * PERIOD_S]
    try:
        publish_all(broker.port, first)
        _wait(lambda: any(s == "open" for _, s in _alert_versions(gateway.buffer_path)),
              what="the out-of-range alert to open")
        _wait(lambda: bool(recorder.on(TASK_TOPIC)), what="the task notification")
        gateway.kill()  # in the middle of the fault
        gateway.start()
        publish_all(broker.port, rest)
        _wait(lambda: _alert_versions(gateway.buffer_path)[-1][1] == "resolved",
              what="the alert to resolve")
        _wait(lambda: recorder.on(ALERT_TOPIC)[-1] == (b"", False) if recorder.on(ALERT_TOPIC)
              else False, timeout_s=30, what="the retained alert to be cleared")
    finally:
        recorder.close()
    assert gateway.terminate() == 0

    alert_ids = {alert_id for alert_id, _ in _alert_versions(gateway.buffer_path)}
    assert len(alert_ids) == 1, "the restart must update the alert, not open a second one"
    tasks = buffer_rows(gateway.buffer_path, "SELECT DISTINCT task_id FROM tasks "
                        "WHERE json_extract(body, '$.cause') = 'out_of_range'")
    assert len(tasks) == 1, "one open task per asset and cause"
    alert_messages = [orjson.loads(p) for p, retain in recorder.on(ALERT_TOPIC) if p]
    limits = [m for m in alert_messages if m["detector"] == "limits"]
    assert limits[0]["state"] == "open" and limits[0]["severity"] == "critical"
    assert limits[-1]["state"] == "resolved"
    task = orjson.loads(recorder.on(TASK_TOPIC)[0][0])
    assert task["cause"] == "out_of_range" and task["priority"] == "high"

    late = Recorder(broker.port, "e2e-late-subscriber")  # sees only what is retained
    time.sleep(1.0)
    late.close()
    assert late.on(ALERT_TOPIC) == [], "a resolved alert leaves no retained state behind"
