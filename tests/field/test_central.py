"""Field trial: what the gateway says about the central database, and how it behaves."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson

from tests.field.test_http import metric
from tests.support.central import PG_PORT, dsn_for, fresh_database
from tests.support.gateway import GatewayProcess, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker
from tests.support.tcp_proxy import tcp_proxy

LAG = "edge_sync_lag_seconds"


def test_sync_lag_keeps_growing_while_central_is_down_and_ignores_old_timestamps(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 4: edge_sync_lag_seconds froze during an outage (it was set only after a sync)."""
    with fresh_database() as database, tcp_proxy(PG_PORT) as proxy:
        gateway = make_gateway(central={
            "dsn": dsn_for(database, proxy.port), "sslmode": "disable", "idle_interval_s": 0.1,
            "connect_timeout_s": 1, "reconnect": {"initial_delay_s": 0.2, "max_delay_s": 1}})
        gateway.start()
        gateway.wait_for_log("central database online")
        # A backfill of readings stamped two hours ago is not lag: they arrived just now.
        old = time.time() - 7200
        publish_all(broker.port, [("factory/s/a/t", orjson.dumps({"ts": old + k, "value": k}))
                                  for k in range(100)])
        assert wait_for_rows(gateway.buffer_path, "readings", 100) == 100
        time.sleep(2)
        assert metric(gateway, LAG) < 5
        proxy.cut()
        time.sleep(1)
        publish_all(broker.port, [("factory/s/a/t", b"1.0")])
        time.sleep(6)
        during = metric(gateway, LAG)
        assert during >= 4, f"lag {during} s while central is down: it must keep growing"
        time.sleep(2)
        assert metric(gateway, LAG) >= during + 1.5
        status = httpx.get(gateway.http_url + "/api/v1/status", timeout=10,
                           headers={"authorization": "Bearer test-token-0123456789abcdef"}).json()
        assert status["sync_lag_s"] >= during
        proxy.restore()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and metric(gateway, LAG) > 2:
            time.sleep(0.5)
        assert metric(gateway, LAG) <= 2
        assert gateway.terminate() == 0


def test_a_missing_central_schema_is_one_line_with_the_fix_visible_and_backed_off(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 6: central reachable, `db upgrade` never run: 52 ERROR lines in 40 s before."""
    from tests.field.support import run_cli

    with fresh_database(migrated=False) as database:
        gateway = make_gateway(central={
            "dsn": dsn_for(database), "sslmode": "disable", "idle_interval_s": 0.1,
            "reconnect": {"initial_delay_s": 0.2, "max_delay_s": 5}})
        gateway.start()
        publish_all(broker.port, [("factory/s/a/t", b"1.0")])
        time.sleep(8)
        central_lines = [r for r in gateway.log_records()
                         if r.get("logger") == "cloud_sync.syncer" and r.get("level") in ("ERROR", "WARNING")]
        assert len(central_lines) == 1, [r.get("message") for r in central_lines]
        assert "edge-gateway db upgrade" in central_lines[0]["message"]
        auth = {"authorization": "Bearer test-token-0123456789abcdef"}
        status = httpx.get(gateway.http_url + "/api/v1/status", headers=auth, timeout=10).json()
        assert status["central"] == "schema_missing"
        assert httpx.get(gateway.http_url + "/readyz", timeout=10).json()["central"] == "schema_missing"
        assert metric(gateway, 'edge_central_state{state="schema_missing"}') == 1
        # 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s (each x0.5-1 jitter): at most 8 tries in 8 s.
        assert 3 <= metric(gateway, "edge_sync_errors_total") <= 8, "exponential backoff"
        upgraded = run_cli("db", "upgrade", "--dsn", dsn_for(database))
        assert upgraded.returncode == 0, upgraded.stderr
        gateway.wait_for_log("central database online", timeout_s=20)
        status = httpx.get(gateway.http_url + "/api/v1/status", headers=auth, timeout=10).json()
        assert status["central"] == "up"
        assert metric(gateway, 'edge_central_state{state="up"}') == 1
        assert metric(gateway, 'edge_central_state{state="schema_missing"}') == 0
        assert gateway.terminate() == 0
