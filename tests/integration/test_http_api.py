"""The HTTP API of a running daemon: real HTTP calls, real broker, real buffer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows, wait_for_rows
from tests.support.services import REPO_ROOT, Broker, env_without_edge_vars

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}


@pytest.fixture
def gateway(make_gateway: Callable[..., GatewayProcess]) -> Iterator[GatewayProcess]:
    # A datasheet limit alerts from the first reading (learned detectors learn first).
    started = make_gateway(sensors={"motor-1/temp": {"limits": {"max": 100.0}}})
    started.start()
    yield started
    if started.alive():
        assert started.terminate() == 0


def _get(gateway: GatewayProcess, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(gateway.http_url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def _wait_status(gateway: GatewayProcess, path: str, status: int, timeout_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = _get(gateway, path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_health_and_readiness_follow_the_broker(gateway: GatewayProcess, broker: Broker) -> None:
    assert _get(gateway, "/healthz").json() == {"status": "ok"}
    assert _wait_status(gateway, "/readyz", 200).json() == {"ready": True, "reasons": [], "central": None}
    broker.stop()
    response = _wait_status(gateway, "/readyz", 503)
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("mqtt: not connected")
    assert _get(gateway, "/healthz").status_code == 200
    broker.start()
    assert _wait_status(gateway, "/readyz", 200).status_code == 200


def test_everything_but_health_metrics_and_docs_needs_the_token(gateway: GatewayProcess) -> None:
    for path in ("/api/v1/alerts", "/api/v1/tasks", "/api/v1/agents", "/api/v1/status",
                 "/api/v1/pipeline"):
        missing = _get(gateway, path)
        wrong = _get(gateway, path, headers={"authorization": "Bearer " + "x" * len(TEST_TOKEN)})
        assert missing.status_code == wrong.status_code == 401, path
        assert missing.json() == wrong.json() == {"detail": "unauthorized"}
        assert missing.headers["www-authenticate"] == "Bearer"
    # The API's description holds no data; a browser must load the docs without a token.
    assert _get(gateway, "/openapi.json").json()["info"]["title"] == "edge-gateway"
    for path in ("/healthz", "/readyz", "/metrics", "/docs"):
        assert _get(gateway, path).status_code in (200, 503), path


def test_ingestion_answers_after_the_commit_and_quarantines_what_it_rejects(
    gateway: GatewayProcess
) -> None:
    url = gateway.http_url + "/api/v1/ingestion/sensor-reading/"
    one = httpx.post(url, headers=AUTH, timeout=10,
                     content=orjson.dumps({"sensor_id": "press-1/oil", "ts": 1_700_000_000, "value": 3.5}))
    assert one.status_code == 200 and one.json() == {"committed": True, "accepted": 1, "rejected": []}
    # answered after the commit: the row is already in the buffer
    assert buffer_rows(gateway.buffer_path, "SELECT value FROM readings "
                       "WHERE sensor_id = 'press-1/oil'") == [(3.5,)]
    mixed = httpx.post(url, headers=AUTH, timeout=10, content=orjson.dumps([
        {"sensor_id": "press-1/oil", "ts": 1_700_000_001, "value": 3.6},
        {"sensor_id": "press-1/oil", "ts": 1_700_000_002, "value": "high"}]))
    assert mixed.status_code == 200
    assert mixed.json()["accepted"] == 1 and mixed.json()["rejected"][0]["reason"] == "invalid_value"
    bad = httpx.post(url, headers=AUTH, timeout=10, content=b"{not json")
    assert bad.status_code == 422 and bad.json()["rejected"][0]["reason"] == "invalid_json"
    assert wait_for_rows(gateway.buffer_path, "quarantine", 2) == 2
    reasons = {r for (r,) in buffer_rows(gateway.buffer_path,
                                         "SELECT source || ':' || reason FROM quarantine")}
    assert reasons == {"http:invalid_value", "http:invalid_json"}


def test_an_oversized_body_gets_413(gateway: GatewayProcess) -> None:
    url = gateway.http_url + "/api/v1/ingestion/sensor-reading/"
    response = httpx.post(url, headers=AUTH, timeout=10, content=b"[" + b"1," * 700_000 + b"1]")
    assert response.status_code == 413


def test_alerts_tasks_agents_and_status_endpoints(gateway: GatewayProcess, broker: Broker) -> None:
    url = gateway.http_url + "/api/v1/ingestion/sensor-reading/"
    start = int(time.time()) - 100  # recent: readings stamped long ago are not judged
    readings = [{"sensor_id": "motor-1/temp", "ts": start + k, "value": 40.0 + (k % 3) * 0.1}
                for k in range(40)] + [{"sensor_id": "motor-1/temp", "ts": start + 40, "value": 400.0}]
    assert httpx.post(url, headers=AUTH, content=orjson.dumps(readings), timeout=10).status_code == 200
    deadline = time.monotonic() + 20
    alerts: list[dict[str, object]] = []
    while time.monotonic() < deadline and not alerts:
        alerts = _get(gateway, "/api/v1/alerts?state=open", headers=AUTH).json()
        time.sleep(0.1)
    assert alerts and alerts[0]["sensor_id"] == "motor-1/temp" and alerts[0]["detector"] == "limits"
    assert _get(gateway, "/api/v1/alerts?state=resolved", headers=AUTH).json() == []
    assert _get(gateway, "/api/v1/alerts?state=bogus", headers=AUTH).status_code == 422
    tasks = _get(gateway, "/api/v1/tasks", headers=AUTH).json()
    assert tasks and tasks[0]["cause"] == "out_of_range"
    agents = {a["agent_id"]: a for a in _get(gateway, "/api/v1/agents", headers=AUTH).json()}
    assert set(agents) == {"anomaly-detection", "prediction", "maintenance-scheduler",
                           "notification"}
    assert all(a["state"] == "running" for a in agents.values())
    assert agents["anomaly-detection"]["events_processed"] >= 1
    pipeline = _get(gateway, "/api/v1/pipeline", headers=AUTH).json()
    assert pipeline["state"] == "running" and pipeline["readings"] == 41
    assert pipeline["messages"] == 1 and pipeline["batches"] >= 1
    status = _get(gateway, "/api/v1/status", headers=AUTH).json()
    assert status["buffer"]["readings"]["rows"] == 41 and status["open_alerts"] == 1


def test_metrics_cover_the_pipeline_and_pass_promtool(gateway: GatewayProcess, broker: Broker) -> None:
    from tests.support.publish import publish_all

    publish_all(broker.port, [("factory/s/a/t", b"1.5"), ("factory/s/a/t", b"oops")])
    wait_for_rows(gateway.buffer_path, "quarantine", 1)
    time.sleep(0.3)
    text = _get(gateway, "/metrics").text
    for name in ("edge_mqtt_connected 1.0",
                 "edge_messages_received_total{subscription=\"factory/#\"} 2.0",
                 "edge_readings_accepted_total 1.0",
                 "edge_readings_rejected_total{reason=\"invalid_json\"} 1.0",
                 "edge_ingest_latency_seconds_bucket", "edge_buffer_rows{kind=\"readings\"}",
                 "edge_buffer_bytes", "edge_alerts_open", "edge_tasks_open",
                 "edge_bus_queue_depth", "edge_agent_up{agent=\"anomaly-detection\"} 1.0",
                 "edge_build_info{version=", "process_resident_memory_bytes", "python_info"):
        assert name in text, name
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is installed by .ci/run (Debian package prometheus)"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_status_command_asks_the_daemon_then_reads_the_buffer_when_it_is_down(
    gateway: GatewayProcess
) -> None:
    def status() -> dict[str, object]:
        result = subprocess.run([sys.executable, "-m", "edge", "status", "--json", "--config",
                                 str(gateway.config_path)], capture_output=True, text=True,
                                timeout=30, cwd=REPO_ROOT, env=env_without_edge_vars(), check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    running = status()
    assert running["source"] == "daemon" and running["mqtt_connected"] is True
    assert gateway.terminate() == 0
    stopped = status()
    assert stopped["source"].startswith("buffer")
    assert set(stopped["buffer"]) == {"readings", "states", "alerts", "tasks", "decisions",  # type: ignore[arg-type]
                                      "labels", "catalog", "quarantine"}
