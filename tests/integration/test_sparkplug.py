"""Sparkplug B end to end, against an independent implementation: Eclipse Tahu's JavaScript
edge node publishes through a real Mosquitto to the real daemon, which syncs to a real
PostgreSQL. Every metric value and timestamp is reconciled in the buffer and centrally.

Births, data by alias, a seq gap (the node skips numbers) answered with a rebirth request,
the rebirth, a death (one node_offline alert) and a second birth (the alert resolves); and a
gateway restart between a DBIRTH and its DDATA, after which the DDATA still decode.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.gateway import TEST_TOKEN, GatewayProcess
from tests.support.services import Broker, free_port
from tests.support.tahu import TahuNode

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}
GROUP, NODE, DEVICE = "Plant1", "Edge A", "Pump 3"
PREFIX = "Plant1/Edge_A/Pump_3"


@pytest.fixture
def central() -> Iterator[str]:
    with fresh_database() as database:
        yield database


@pytest.fixture
def tahu() -> Iterator[Callable[[], TahuNode]]:
    made: list[TahuNode] = []

    def make() -> TahuNode:
        made.append(TahuNode())
        return made[-1]

    yield make
    for node in made:
        node.close()


def _gateway(make_gateway: Callable[..., GatewayProcess], broker: Broker,
             **overrides: Any) -> GatewayProcess:
    config: dict[str, Any] = {
        "mqtt": {"port": broker.port, "client_id": "gw-spb",
                 "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
                 "subscriptions": [{"topic": f"spBv1.0/{GROUP}/#", "qos": 0,
                                    "codec": "sparkplug_b"}]},
        "sparkplug": {"request_rebirth": True, "rebirth_min_interval_s": 1},
        "http": {"port": free_port(), "token": TEST_TOKEN}}
    return make_gateway(**{**config, **overrides})


def _rows(gateway: GatewayProcess, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(gateway.buffer_path) as conn:
        return conn.execute(sql).fetchall()


def _wait(probe: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = probe()
        except sqlite3.OperationalError:  # the buffer is not created yet
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _connect(node: TahuNode, broker: Broker, client_id: str) -> None:
    node.call("connect", url=f"mqtt://127.0.0.1:{broker.port}", group=GROUP, node=NODE,
              clientId=client_id)


def _births(node: TahuNode, t_ms: int) -> None:
    node.call("nbirth", timestamp=t_ms, metrics=[
        {"name": "Uptime", "alias": 1, "type": "UInt32", "value": 5, "timestamp": t_ms}])
    node.call("dbirth", device=DEVICE, timestamp=t_ms, metrics=[
        {"name": "Motor Temp", "alias": 10, "type": "Float", "value": 41.5, "timestamp": t_ms,
         "properties": {"engUnit": {"type": "String", "value": "degC"}}},
        {"name": "Running", "alias": 11, "type": "Boolean", "value": True, "timestamp": t_ms},
        {"name": "Speed Offset", "alias": 12, "type": "Int32", "value": -5, "timestamp": t_ms}])


def _data(node: TahuNode, t_ms: int, temp: float, running: bool, offset: int) -> None:
    node.call("ddata", device=DEVICE, timestamp=t_ms, metrics=[
        {"alias": 10, "type": "Float", "value": temp, "timestamp": t_ms},
        {"alias": 11, "type": "Boolean", "value": running, "timestamp": t_ms},
        {"alias": 12, "type": "Int32", "value": offset, "timestamp": t_ms}])


def _expected(t_ms: int, steps: list[tuple[int, float, bool, int]]) -> tuple[set[Any], set[Any]]:
    numbers = {(f"{PREFIX}/Motor_Temp", (t_ms + dt) * 1000, temp) for dt, temp, _, _ in steps}
    numbers |= {(f"{PREFIX}/Speed_Offset", (t_ms + dt) * 1000, float(off))
                for dt, _, _, off in steps}
    states = {(f"{PREFIX}/Running", (t_ms + dt) * 1000, "true" if run else "false")
              for dt, _, run, _ in steps}
    return numbers, states


def test_birth_alias_data_seq_gap_rebirth_death_rebirth_reconciled_in_buffer_and_central(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], central: str,
    tahu: Callable[[], TahuNode],
) -> None:
    gateway = _gateway(make_gateway, broker,
                       central={"dsn": dsn_for(central), "sslmode": "disable",
                                "idle_interval_s": 0.1})
    gateway.start()
    t0 = int(time.time() * 1000) - 60_000
    node = tahu()
    _connect(node, broker, "tahu-1")
    _births(node, t0)
    _data(node, t0 + 1000, 42.25, False, -7)
    node.call("skip_seq", n=3)  # three messages "lost": the next arrives with a seq gap
    _data(node, t0 + 2000, 43.0, True, -8)
    node.call("wait_rebirth", timeout_ms=15_000)  # the gateway asked for a rebirth (NCMD)
    _births(node, t0 + 3000)
    _data(node, t0 + 4000, 44.5, True, 2_000_000_000)
    steps = [(0, 41.5, True, -5), (1000, 42.25, False, -7), (2000, 43.0, True, -8),
             (3000, 41.5, True, -5), (4000, 44.5, True, 2_000_000_000)]
    numbers, states = _expected(t0, steps)
    uptime = {("Plant1/Edge_A/Uptime", (t0 + dt) * 1000, 5.0) for dt in (0, 3000)}
    _wait(lambda: len(_rows(gateway, "SELECT 1 FROM readings")) == len(numbers | uptime),
          "every reading")
    assert set(_rows(gateway, "SELECT sensor_id, ts_us, value FROM readings")) == numbers | uptime
    assert set(_rows(gateway, "SELECT sensor_id, ts_us, state FROM states")) == states
    running = httpx.get(f"{gateway.http_url}/api/v1/sensors/{PREFIX}/Running/states",
                        headers=AUTH, timeout=10).json()  # states are visible over HTTP too
    assert [(round(datetime.fromisoformat(p["ts"]).timestamp() * 1e6), p["state"])
            for p in running] == sorted((ts, state) for sensor, ts, state in states
                                        if sensor == f"{PREFIX}/Running")
    assert _rows(gateway, "SELECT reason FROM quarantine") == []
    units = dict(_rows(gateway, "SELECT sensor_id, unit FROM readings"))
    assert units[f"{PREFIX}/Motor_Temp"] == "degC"

    node.call("stop")  # NDEATH with the birth's bdSeq
    alert = _wait(lambda: [a for a in httpx.get(gateway.http_url + "/api/v1/alerts?state=open",
                                                headers=AUTH, timeout=10).json()
                           if a["detector"] == "node_offline"], "the node_offline alert")[0]
    assert alert["sensor_id"] == "Plant1/Edge_A"
    back = tahu()
    _connect(back, broker, "tahu-2")
    _births(back, t0 + 5000)
    _wait(lambda: httpx.get(f"{gateway.http_url}/api/v1/alerts/{alert['alert_id']}", headers=AUTH,
                            timeout=10).json()["alert"]["state"] == "resolved",
          "the node_offline alert to resolve at the rebirth")

    numbers |= _expected(t0, [(5000, 41.5, True, -5)])[0]
    states |= _expected(t0, [(5000, 41.5, True, -5)])[1]
    uptime.add(("Plant1/Edge_A/Uptime", (t0 + 5000) * 1000, 5.0))
    rows = asyncio.run
    _wait(lambda: len(rows(central_rows(central, "SELECT 1 FROM sensor_readings")))
          == len(numbers | uptime), "every reading centrally")
    _wait(lambda: len(rows(central_rows(central, "SELECT 1 FROM sensor_states"))) == len(states),
          "every state centrally")
    central_numbers = {(r["sensor_id"], round(r["time"].timestamp() * 1_000_000), r["value"])
                       for r in rows(central_rows(central, "SELECT * FROM sensor_readings"))}
    central_states = {(r["sensor_id"], round(r["time"].timestamp() * 1_000_000), r["state"])
                      for r in rows(central_rows(central, "SELECT * FROM sensor_states"))}
    assert central_numbers == numbers | uptime and central_states == states
    names = {r["sensor_id"]: r["name"]
             for r in rows(central_rows(central, "SELECT * FROM sensor_catalog"))}
    assert names[f"{PREFIX}/Motor_Temp"] == "Motor Temp"
    assert gateway.terminate() == 0


def test_a_gateway_restart_between_a_dbirth_and_its_ddata_still_decodes_the_ddata(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], tahu: Callable[[], TahuNode],
) -> None:
    gateway = _gateway(make_gateway, broker, sparkplug={"request_rebirth": False})
    gateway.start()
    t0 = int(time.time() * 1000) - 30_000
    node = tahu()
    _connect(node, broker, "tahu-restart")
    _births(node, t0)
    _wait(lambda: len(_rows(gateway, "SELECT 1 FROM sparkplug_births")) == 2, "the births kept")
    gateway.kill()  # SIGKILL: nothing is saved on the way out
    gateway.start()
    _data(node, t0 + 1000, 42.25, False, -7)
    _wait(lambda: _rows(gateway, f"SELECT value FROM readings WHERE ts_us = {(t0 + 1000) * 1000} "
                                 f"AND sensor_id = '{PREFIX}/Motor_Temp'"), "the DDATA decoded")
    assert _rows(gateway, "SELECT reason FROM quarantine") == [], "no unknown_alias"
    assert gateway.terminate() == 0
