"""SIGKILL at five seeded random moments under a 50,000-message QoS 1 load, with central sync.

Ends with an exact reconciliation against the central database: every published reading
exactly once, none missing, none twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.gateway import GatewayProcess, wait_for_rows
from tests.support.load import BackgroundPublisher, reconcile
from tests.support.services import Broker

MESSAGES = 50_000
KILLS = 5


def _central_count(database: str) -> int:
    return int(asyncio.run(central_rows(database, "SELECT count(*) FROM sensor_readings"))[0][0])


def test_five_random_sigkills_under_load_lose_and_duplicate_nothing(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    rng = random.Random(20261124)
    with fresh_database() as database:
        gateway = make_gateway(central={"dsn": dsn_for(database), "sslmode": "disable",
                                        "idle_interval_s": 0.1, "batch_rows": 5000})
        gateway.start()
        publisher = BackgroundPublisher(broker.port, MESSAGES).start()
        kill_points = sorted(rng.sample(range(2_000, MESSAGES - 2_000), KILLS))
        for point in kill_points:
            wait_for_rows(gateway.buffer_path, "readings", point, timeout_s=120)
            time.sleep(rng.uniform(0, 0.3))  # somewhere inside a batch or a sync
            gateway.kill()
            time.sleep(rng.uniform(0.1, 1.0))
            gateway.start()
        publisher.join()
        assert wait_for_rows(gateway.buffer_path, "readings", MESSAGES, timeout_s=120) == MESSAGES
        deadline = time.monotonic() + 120
        while _central_count(database) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.5)
        assert gateway.terminate() == 0
        values = [r[0] for r in asyncio.run(central_rows(database, "SELECT value FROM sensor_readings"))]
    print(f"killed at (rows in buffer): {kill_points}")
    reconcile(MESSAGES, values, "central")
