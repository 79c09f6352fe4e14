"""Run modes: with central.dsn the daemon syncs what it buffers; without, it says so once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.gateway import GatewayProcess
from tests.support.publish import publish_all
from tests.support.services import Broker


def test_daemon_with_central_dsn_delivers_mqtt_readings_to_postgresql(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    with fresh_database() as database:
        gateway = make_gateway(central={"dsn": dsn_for(database), "sslmode": "disable",
                                        "idle_interval_s": 0.1})
        gateway.start()
        gateway.wait_for_log("central database online")
        publish_all(broker.port, ((f"factory/s1/pump-{k % 5}/temp", str(k).encode())
                                  for k in range(2_000)))
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and count < 2_000:
            count = asyncio.run(central_rows(database, "SELECT count(*) FROM sensor_readings"))[0][0]
            time.sleep(0.2)
        assert gateway.terminate() == 0
        assert count == 2_000
        rows = asyncio.run(central_rows(database, "SELECT DISTINCT gateway_id, asset_id "
                                        "FROM sensor_readings ORDER BY asset_id"))
        assert [(r[0], r[1]) for r in rows] == [("gw-test", f"pump-{n}") for n in range(5)]
        messages = [r.get("message") for r in gateway.log_records()]
        assert "central sync enabled" in messages


def test_daemon_without_central_dsn_runs_buffer_only_and_says_so_once(
    make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    assert gateway.terminate() == 0
    messages = [r.get("message") for r in gateway.log_records()]
    assert messages.count("central sync not configured (central.dsn): running buffer-only") == 1


def test_sigterm_makes_a_last_sync_before_exiting(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    from tests.support.gateway import wait_for_rows

    with fresh_database() as database:
        gateway = make_gateway(central={"dsn": dsn_for(database), "sslmode": "disable",
                                        "idle_interval_s": 60})  # idle: only the last sync moves rows
        gateway.start()
        gateway.wait_for_log("central database online")
        time.sleep(0.5)  # the syncer is now idle for a minute
        publish_all(broker.port, (("factory/s1/pump-1/temp", str(k).encode()) for k in range(500)))
        assert wait_for_rows(gateway.buffer_path, "readings", 500) == 500
        assert gateway.terminate() == 0
        count = asyncio.run(central_rows(database, "SELECT count(*) FROM sensor_readings"))[0][0]
    assert count == 500
