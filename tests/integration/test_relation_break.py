"""A relation break through MQTT, end to end: every sensor of a pump stays inside its own
normal band, only their relation breaks (it draws more current for the same flow, pressure
and vibration). The asset model opens one alert naming the sensor, validated, with one
task; the same plant without the fault opens none."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from edge.simulator.factory import DEFAULT_SENSORS, FactoryModel, Fault
from edge.simulator.publisher import sensor_config
from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}
PUMP = tuple(s for s in DEFAULT_SENSORS if s.asset_id == "pump-1")
BROKEN = "pump-1/current"
PERIOD_S = 10.0
DAYS = 3  # the models learn the daily load cycle first
STEPS_PER_MESSAGE = 10  # a PLC sends the pump's readings of 100 s together
FAULT_READINGS = (600, 200)  # starts this many readings before the end, lasts ... less


def _messages(with_fault: bool) -> tuple[list[tuple[str, bytes]], int]:
    # A fixed phase of the daily cycle (midnight-aligned), recent enough to be judged.
    start = (time.time() // 86_400 - DAYS) * 86_400
    duration = DAYS * 86_400
    fault_start = start + duration - FAULT_READINGS[0] * PERIOD_S
    fault_end = start + duration - FAULT_READINGS[1] * PERIOD_S
    faults = [Fault("relation_break", BROKEN, "pump-1", fault_start, fault_end, 4.0)] \
        if with_fault else []
    model = FactoryModel(seed=7, period_s=PERIOD_S, sensors=PUMP)
    readings = [{"sensor_id": spec.sensor_id, "ts": ts, "value": value, "unit": spec.unit}
                for ts, spec, value in model.stream(start, duration, faults)]
    per_message = STEPS_PER_MESSAGE * len(PUMP)
    return [("factory/plant1/pump-1/batch", orjson.dumps(readings[i:i + per_message]))
            for i in range(0, len(readings), per_message)], len(readings)


def _judged(gateway: GatewayProcess) -> int:
    rows = buffer_rows(gateway.buffer_path,
                       "SELECT value FROM buffer_meta WHERE key = 'anomaly_detection.judged_seq'")
    return int(rows[0][0]) if rows else 0


def _run(make_gateway: Callable[..., GatewayProcess], broker: Broker,
         with_fault: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    config = sensor_config(FactoryModel(sensors=PUMP))
    gateway = make_gateway(assets=config["assets"], sensors={
        sensor_id: {k: v for k, v in sensor.items() if k != "limits"}  # no datasheet help
        for sensor_id, sensor in config["sensors"].items()})
    gateway.start()
    messages, count = _messages(with_fault)
    publish_all(broker.port, messages)
    deadline = time.monotonic() + 120
    while _judged(gateway) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _judged(gateway) == count, "detection must have judged every reading"
    time.sleep(1.5)  # a scheduler tick for the task
    alerts = httpx.get(gateway.http_url + "/api/v1/alerts?limit=1000", headers=AUTH,
                       timeout=10).json()
    tasks = httpx.get(gateway.http_url + "/api/v1/tasks?limit=1000", headers=AUTH,
                      timeout=10).json()
    assert gateway.terminate() == 0
    return alerts, tasks


@pytest.mark.parametrize("with_fault", [True, False], ids=["relation_break", "normal"])
def test_a_relation_break_opens_one_asset_alert_naming_the_sensor_with_one_task(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], with_fault: bool,
) -> None:
    alerts, tasks = _run(make_gateway, broker, with_fault)
    if not with_fault:
        assert alerts == [] and tasks == [], "the normal variant opens nothing"
        return
    assert [(a["detector"], a["sensor_id"]) for a in alerts] == [("asset_model", BROKEN)]
    alert = alerts[0]
    contributors = alert["details"]["contributors"]
    assert contributors[0]["sensor_id"] == BROKEN and contributors[0]["share"] > 0.4
    assert alert["details"]["accepted_because"] in ("corroborated", "persistent")
    assert [(t["cause"], t["alert_ids"]) for t in tasks] == [("relation_break",
                                                              [alert["alert_id"]])]
