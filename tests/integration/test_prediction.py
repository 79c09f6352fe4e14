"""Forecasts end to end: the real daemon, a real broker, a sensor trending towards its max.

A forecast alert opens with the time to the limit and its interval, its task is due before
the earliest predicted crossing, it survives a SIGKILL (one alert, restored, not a second),
an operator's acknowledgement reaches the prediction agent, and it is withdrawn when the
trend reverses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import orjson

from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows
from tests.support.publish import publish_all
from tests.support.services import Broker, free_port

OPERATOR_TOKEN = "operator-token-0123456789"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
SENSOR = "pump-1/temp"
TOPIC = "factory/plant1/pump-1/temp"
# Minutes become seconds: one-second buckets, a minute fitted, ten minutes ahead.
FAST = {"bucket_s": 1, "window_s": 60, "min_span_s": 20, "horizon_s": 600,
        "seasonal_period_s": None, "check_interval_s": 0.2, "withdraw_after": 2,
        "update_interval_s": 5}


def _publish(broker: Broker, readings: list[tuple[float, float]]) -> None:
    publish_all(broker.port, [(TOPIC, orjson.dumps({"sensor_id": SENSOR, "ts": ts, "value": v}))
                              for ts, v in readings])


def _forecasts(gateway: GatewayProcess) -> list[tuple[str, str, str]]:
    return [(r[0], r[1], r[2]) for r in buffer_rows(
        gateway.buffer_path, "SELECT alert_id, state, json_extract(body, '$.reason') FROM alerts "
        "WHERE json_extract(body, '$.detector') = 'forecast' ORDER BY seq")]


def _wait(probe: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_forecast_opens_with_a_task_due_before_the_crossing_survives_sigkill_and_withdraws(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = make_gateway(prediction=FAST, assets={"pump-1": {"criticality": "high"}},
                           sensors={SENSOR: {"asset": "pump-1", "limits": {"max": 100.0}}},
                           http={"port": free_port(), "token": TEST_TOKEN,
                                 "operator_token": OPERATOR_TOKEN})
    gateway.start()
    now = time.time()
    # 0.5 degC a second from 50: at 90 degC the max of 100 is 20 s away.
    _publish(broker, [(now - 120 + k, 50.0 + 0.5 * k + (0.2 if k % 2 else -0.2))
                      for k in range(81)])
    opened = _wait(lambda: [f for f in _forecasts(gateway) if f[1] == "open"], "a forecast")
    alert_id, _, reason = opened[0]
    assert reason.startswith("predicted to reach max 100 in ~"), reason
    alert = httpx.get(f"{gateway.http_url}/api/v1/alerts/{alert_id}", headers=OPERATOR,
                      timeout=10).json()["alert"]
    low, high = alert["details"]["interval_s"]
    assert 5 <= low <= alert["details"]["eta_s"] <= (high or 1e9)
    assert alert["details"]["eta_s"] < 60, "the true crossing is 20 s ahead of the last reading"
    task = _wait(lambda: next(iter(httpx.get(f"{gateway.http_url}/api/v1/tasks",
                                             headers=OPERATOR, timeout=10).json()), None), "a task")
    assert task["cause"] == "out_of_range" and task["alert_ids"] == [alert_id]
    due = datetime.fromisoformat(task["due_at"]).timestamp()
    created = datetime.fromisoformat(task["created_at"]).timestamp()
    assert due <= created + low + 1, "due before the earliest predicted crossing"

    gateway.kill()
    gateway.start()
    decided = httpx.post(f"{gateway.http_url}/api/v1/alerts/{alert_id}/decisions",
                         headers=OPERATOR, timeout=10,
                         json={"action": "acknowledge", "actor": "jane", "note": "seen"})
    assert decided.status_code == 200 and decided.json()["status"] == "applied", decided.text
    assert decided.json()["decision"]["outcome_detail"].startswith("forecast "), \
        "decided by the prediction agent, which owns the forecast"
    # The trend reverses (someone opened the cooling valve), in a few deliveries.
    for chunk in range(4):
        _publish(broker, [(now - 39 + 10 * chunk + k, 90.0 - 0.8 * (10 * chunk + k))
                          for k in range(10)])
        time.sleep(0.6)
    _wait(lambda: any(f[1] == "resolved" for f in _forecasts(gateway)), "the withdrawal")
    versions = _forecasts(gateway)
    assert {f[0] for f in versions} == {alert_id}, "restored after SIGKILL, not opened twice"
    assert versions[-1][1] == "resolved" and versions[-1][2].startswith("withdrawn")
    assert gateway.terminate() == 0
