"""The maintenance loop end to end: a fault, then decisions by HTTP, MQTT and the central
database, with a real broker, a real PostgreSQL and the real daemon."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.support.central import PG_PORT, central_rows, dsn_for, fresh_database
from tests.support.gateway import TEST_TOKEN, GatewayProcess
from tests.support.publish import publish_all
from tests.support.services import Broker
from tests.support.tcp_proxy import tcp_proxy

OPERATOR_TOKEN = "operator-token-0123456789"
INGEST = {"authorization": f"Bearer {TEST_TOKEN}"}
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
SENSOR = "pump-1/temp"


def _config(dsn: str) -> dict[str, Any]:
    return {"central": {"dsn": dsn, "sslmode": "disable", "idle_interval_s": 0.1,
                        "decision_poll_s": 0.2, "connect_timeout_s": 2,
                        "reconnect": {"initial_delay_s": 0.2, "max_delay_s": 1}},
            "sensors": {SENSOR: {"asset": "pump-1", "limits": {"max": 90.0}}},
            "assets": {"pump-1": {"criticality": "high"}}}


def _open_task(gateway: GatewayProcess, broker: Broker) -> dict[str, Any]:
    now = time.time()
    publish_all(broker.port, [("factory/s1/pump-1/temp", json.dumps(
        {"ts": now - 10 + k, "value": 50.0 + k % 3 if k < 5 else 99.0}).encode()) for k in range(8)])
    return _wait(lambda: next(iter(_get(gateway, "/api/v1/tasks?state=open")), None))


def _get(gateway: GatewayProcess, path: str) -> Any:
    return httpx.get(gateway.http_url + path, headers=OPERATOR, timeout=10).json()


def _wait(probe: Callable[[], Any], timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _decide(gateway: GatewayProcess, kind: str, target: str, body: dict[str, Any],
            headers: dict[str, str] = OPERATOR) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/api/v1/{kind}s/{target}/decisions", headers=headers,
                      json=body, timeout=10)


class Responses:
    """A paho subscriber on the gateway's response topics."""

    def __init__(self, port: int) -> None:
        self.got: dict[str, dict[str, Any]] = {}
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hmi-{uuid.uuid4().hex[:6]}")
        self.client.on_message = lambda c, u, m: self.got.__setitem__(
            m.topic.rsplit("/", 1)[1], json.loads(m.payload))
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("edge/gw-test/responses/#", qos=1)
        self.client.loop_start()
        assert self.ready.wait(5)

    def command(self, body: dict[str, Any]) -> dict[str, Any]:
        self.client.publish("edge/gw-test/commands/decisions", json.dumps(body), qos=1).wait_for_publish(5)
        return _wait(lambda: self.got.get(body["request_id"]))  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def central() -> Iterator[str]:
    with fresh_database() as database:
        yield database


def test_http_mqtt_and_central_decisions_move_one_task_through_its_life_cycle(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], central: str,
) -> None:
    gateway = make_gateway(**_config(dsn_for(central)),
                           http={**_http(make_gateway), "operator_token": OPERATOR_TOKEN})
    gateway.start()
    task = _open_task(gateway, broker)
    task_id = task["task_id"]

    # A leaked sensor (ingest) token cannot decide.
    assert _decide(gateway, "task", task_id, {"action": "cancel", "actor": "x"}, INGEST).status_code == 403
    # HTTP: acknowledge, twice with one decision id: the second changes nothing.
    ack = {"decision_id": "d-http-1", "action": "acknowledge", "actor": "jane", "note": "on it"}
    first, again = _decide(gateway, "task", task_id, ack), _decide(gateway, "task", task_id, ack)
    assert first.status_code == 200 and first.json()["status"] == "applied"
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # The same id for another decision: a conflict, refused, nothing applied.
    reused = _decide(gateway, "task", task_id, {**ack, "action": "cancel"})
    assert reused.status_code == 409 and reused.json()["status"] == "conflict", reused.text
    assert "already used for acknowledge" in reused.json()["detail"]
    assert _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "acknowledged"
    # MQTT: start, answered on the response topic.
    responses = Responses(broker.port)
    try:
        answer = responses.command({"request_id": "r-1", "decision_id": "d-mqtt-1",
                                    "target_kind": "task", "target_id": task_id,
                                    "action": "start", "actor": "hmi-3"})
        assert answer["status"] == "applied", answer
        bad = responses.command({"request_id": "r-2", "target_kind": "task",
                                 "target_id": task_id, "action": "explode", "actor": "x"})
        assert bad["status"] == "invalid" and "action" in bad["detail"]
    finally:
        responses.close()
    assert _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "in_progress"
    # An illegal transition: 409 with what the state allows.
    illegal = _decide(gateway, "task", task_id, {"action": "acknowledge", "actor": "jane"})
    assert illegal.status_code == 409
    assert illegal.json()["allowed_actions"] == ["assign", "complete", "cancel"]
    # Central: an engineer completes it in the database; the gateway pulls and applies it.
    asyncio.run(_insert_central(central, "d-central-1", task_id, "complete",
                                {"fault_found": True}))
    _wait(lambda: _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "done")
    rows = _wait(lambda: asyncio.run(central_rows(
        central, "SELECT decision_id, origin, outcome FROM maintenance_decisions ORDER BY decision_id"))
        if len(asyncio.run(central_rows(central, "SELECT 1 FROM maintenance_decisions"))) >= 4 else None)
    outcomes = {r[0]: (r[1], r[2]) for r in rows}
    assert outcomes["d-http-1"] == ("http", "applied")
    assert outcomes["d-mqtt-1"] == ("mqtt", "applied")
    assert outcomes["d-central-1"] == ("central", "applied")
    assert sorted(o for _, o in outcomes.values()).count("rejected") == 1  # the 409 one
    assert len(rows) == 4, "each decision once, the duplicate not again"
    labels = _wait(lambda: asyncio.run(central_rows(central, "SELECT task_id, cause FROM fault_labels")))
    assert [tuple(r) for r in labels] == [(task_id, "out_of_range")]
    assert gateway.terminate() == 0


def _settled(database: str, count: int) -> list[Any] | None:
    """The central decisions, once there are `count` of them and all have an outcome."""
    rows = asyncio.run(central_rows(database, "SELECT decision_id, outcome FROM "
                                              "maintenance_decisions ORDER BY decision_id"))
    return rows if len(rows) == count and all(row[1] for row in rows) else None


def _http(make_gateway: Callable[..., GatewayProcess]) -> dict[str, Any]:
    from tests.support.services import free_port

    return {"port": free_port(), "token": TEST_TOKEN}


async def _insert_central(database: str, decision_id: str, target_id: str, action: str,
                          params: dict[str, Any], kind: str = "task") -> None:
    conn = await asyncpg.connect(dsn_for(database))
    try:
        await conn.execute(
            "INSERT INTO maintenance_decisions (decision_id, gateway_id, target_kind, target_id, "
            "action, actor, note, params, decided_at) VALUES ($1, 'gw-test', $2, $3, $4, "
            "'engineer', 'from the office', $5::jsonb, now())",
            decision_id, kind, target_id, action, json.dumps(params))
    finally:
        await conn.close()


def test_a_central_decision_that_commits_late_is_not_skipped(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], central: str,
) -> None:
    """Two central writers: the one that began first commits last; both are applied."""
    gateway = make_gateway(**_config(dsn_for(central)),
                           http={**_http(make_gateway), "operator_token": OPERATOR_TOKEN})
    gateway.start()
    _open_task(gateway, broker)
    alert_id = _wait(lambda: next(iter(_get(gateway, "/api/v1/alerts?state=open")), None))["alert_id"]
    asyncio.run(_two_writers(central, alert_id))
    outcomes = _wait(lambda: _settled(central, 2))
    assert [tuple(r) for r in outcomes] == [("d-early", "applied"), ("d-late", "applied")]
    detail = _get(gateway, f"/api/v1/alerts/{alert_id}")
    assert detail["alert"]["details"]["acknowledged"]["decision_id"] == "d-early"
    assert "snoozed_until" in detail["alert"]["details"]
    metrics = httpx.get(gateway.http_url + "/metrics", timeout=10).text
    assert 'edge_decisions_total{origin="central",outcome="applied"} 2.0' in metrics, \
        "each central decision counted once (it was counted twice: review F8)"
    assert gateway.terminate() == 0


async def _two_writers(database: str, alert_id: str) -> None:
    slow = await asyncpg.connect(dsn_for(database))
    try:
        transaction = slow.transaction()
        await transaction.start()
        # Begun first, decided first, committed last: a sequence cursor would skip it.
        await slow.execute(
            "INSERT INTO maintenance_decisions (decision_id, gateway_id, target_kind, target_id, "
            "action, actor, decided_at) VALUES ('d-early', 'gw-test', 'alert', $1, 'acknowledge', "
            "'day shift', now() - interval '1 minute')", alert_id)
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        await _insert_central(database, "d-late", alert_id, "snooze", {"until": until}, kind="alert")
        deadline = time.monotonic() + 20
        while not (await central_rows(database, "SELECT outcome FROM maintenance_decisions "
                                                "WHERE decision_id = 'd-late'"))[0][0]:
            assert time.monotonic() < deadline, "the committed decision was not applied"
            await asyncio.sleep(0.1)
        await transaction.commit()
    finally:
        await slow.close()


def test_decisions_survive_sigkill_and_a_central_outage_and_arrive_once(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], central: str,
) -> None:
    with tcp_proxy(PG_PORT) as proxy:
        gateway = make_gateway(**_config(dsn_for(central, proxy.port)),
                               http={**_http(make_gateway), "operator_token": OPERATOR_TOKEN})
        gateway.start()
        task_id = _open_task(gateway, broker)["task_id"]
        proxy.cut()
        for decision_id, action in (("k-1", "acknowledge"), ("k-2", "start")):
            response = _decide(gateway, "task", task_id, {"decision_id": decision_id,
                                                          "action": action, "actor": "night"})
            assert response.status_code == 200, response.text
        gateway.kill()  # SIGKILL: the decisions are in the buffer, not yet central
        asyncio.run(_insert_central(central, "k-central", task_id, "assign",
                                    {"assignee": "maintenance team B"}))  # made during the outage
        gateway.start()
        assert _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "in_progress"
        assert _decide(gateway, "task", task_id, {"decision_id": "k-2", "action": "start",
                                                  "actor": "night"}).json()["status"] == "duplicate"
        response = _decide(gateway, "task", task_id, {"decision_id": "k-3", "action": "complete",
                                                      "actor": "night", "note": "bearing replaced"})
        assert response.status_code == 200
        proxy.restore()
        rows = _wait(lambda: _settled(central, 4), timeout_s=40)
        # The central assign came after 'complete' was applied locally: the state machine
        # decides, and the rejection is visible centrally.
        assert [tuple(r) for r in rows] == [("k-1", "applied"), ("k-2", "applied"),
                                            ("k-3", "applied"), ("k-central", "rejected")]
        assert _wait(lambda: tuple(asyncio.run(central_rows(
            central, "SELECT state, resolution FROM maintenance_tasks WHERE task_id = $1",
            task_id))[0]) == ("done", "completed"))
        assert gateway.terminate() == 0


def test_the_cli_lists_shows_and_decides_through_the_running_daemon(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    from tests.field.support import run_cli

    gateway = make_gateway(sensors={SENSOR: {"asset": "pump-1", "limits": {"max": 90.0}}},
                           assets={"pump-1": {"criticality": "high"}},
                           http={**_http(make_gateway), "operator_token": OPERATOR_TOKEN})
    gateway.start()
    task_id = _open_task(gateway, broker)["task_id"]
    config = str(gateway.config_path)
    listed = run_cli("tasks", "list", "--state", "open", "--config", config)
    assert listed.returncode == 0 and task_id in listed.stdout, listed.stderr
    decided = run_cli("tasks", "decide", task_id, "start", "--actor", "ssh-user",
                      "--note", "on site", "--config", config)
    assert decided.returncode == 0 and decided.stdout.startswith("applied"), decided.stderr
    # A refused decision retried with its id answers as the first time (409), never as a
    # success a client retrying after a timeout would take for applied.
    for _ in range(2):
        refused = run_cli("tasks", "decide", task_id, "acknowledge", "--decision-id", "c-1",
                          "--config", config)
        assert refused.returncode == 1 and "refused (409)" in refused.stderr
        assert "allowed now: assign, complete, cancel" in refused.stderr
    retried = httpx.post(gateway.http_url + f"/api/v1/tasks/{task_id}/decisions", timeout=10,
                         headers={"authorization": f"Bearer {OPERATOR_TOKEN}"},
                         json={"decision_id": "c-1", "action": "acknowledge", "actor": "x"})
    assert retried.status_code == 409 and retried.json()["status"] == "duplicate"
    shown = run_cli("tasks", "show", task_id, "--config", config)
    assert "in_progress" in shown.stdout and "ssh-user" in shown.stdout
    decisions = _get(gateway, f"/api/v1/tasks/{task_id}")["decisions"]
    assert {d["origin"] for d in decisions if d["actor"] == "ssh-user"} == {"cli"}, \
        "recorded as the CLI's, not as any HTTP client's"
    # A config without the daemon's tokens: refused, and said so (not "not reachable").
    tokenless = gateway.config_path.with_name("tokenless.yaml")
    tokenless.write_text(yaml.safe_dump({**gateway.config, "http": {
        k: v for k, v in gateway.config["http"].items() if "token" not in k}}))
    refused_list = run_cli("tasks", "list", "--config", str(tokenless))
    assert refused_list.returncode == 1 and "refused the request (401)" in refused_list.stderr \
        and "no token" in refused_list.stderr, refused_list.stderr
    status = run_cli("status", "--config", str(tokenless))
    assert status.returncode == 0 and "the daemon refused the request: 401" in status.stdout, \
        status.stdout + status.stderr
    assert gateway.terminate() == 0
    stopped = run_cli("tasks", "decide", task_id, "complete", "--config", config)
    assert stopped.returncode == 1 and "not reachable" in stopped.stderr


def test_a_retained_command_is_never_applied_but_answered_and_counted(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """A command published with retain=true, live or as the broker's retained message at a
    (re)subscribe, is not applied: answered `retained`, counted, on every delivery."""
    gateway = make_gateway(sensors={SENSOR: {"asset": "pump-1", "limits": {"max": 90.0}}},
                           assets={"pump-1": {"criticality": "high"}},
                           http={**_http(make_gateway), "operator_token": OPERATOR_TOKEN})
    gateway.start()
    task_id = _open_task(gateway, broker)["task_id"]
    responses = Responses(broker.port)
    command = {"request_id": "r-retained", "target_kind": "task", "target_id": task_id,
               "action": "acknowledge", "actor": "hmi-3"}
    try:
        responses.client.publish("edge/gw-test/commands/decisions", json.dumps(command), qos=1,
                                 retain=True).wait_for_publish(5)
        answer = _wait(lambda: responses.got.get("r-retained"))
        assert answer["status"] == "retained" and "retain" in answer["detail"], answer
        assert _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "open"
        metrics = httpx.get(gateway.http_url + "/metrics", timeout=10).text
        assert 'edge_commands_total{outcome="retained_ignored"} 1.0' in metrics
        responses.got.clear()
        assert gateway.terminate() == 0
        gateway.start()  # the broker still holds it: a restart must not apply it either
        time.sleep(2)
        assert _get(gateway, f"/api/v1/tasks/{task_id}")["task"]["state"] == "open"
        assert _get(gateway, f"/api/v1/tasks/{task_id}")["decisions"] == []
    finally:
        responses.client.publish("edge/gw-test/commands/decisions", b"", qos=1,
                                 retain=True).wait_for_publish(5)  # clear it
        responses.close()
    assert gateway.terminate() == 0
