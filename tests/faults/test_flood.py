"""A flood of 100,000 malformed messages: good traffic beside it is at most 2x slower, memory
stays bounded, and the log stays readable (rejections are rate-limited, not one line each)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson

from tests.support.gateway import GatewayProcess, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

GOOD = 5_000
FLOOD = 100_000


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - one short read
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _good_traffic(port: int, first: int, client_id: str) -> None:
    """GOOD readings at a steady 2,500 per second, as a line of PLCs would send them."""
    for start in range(first, first + GOOD, 500):
        began = time.monotonic()
        publish_all(port, ((f"factory/s/press-{k % 10}/p", orjson.dumps(
            {"ts": 1_700_000_000 + k / 1000, "value": k})) for k in range(start, start + 500)),
            client_id=client_id)
        time.sleep(max(0.0, 0.2 - (time.monotonic() - began)))


def _time_good(gateway: GatewayProcess, port: int, first: int, expected_rows: int,
               flood: bool) -> float:
    flooder = threading.Thread(target=publish_all, kwargs={
        "port": port, "client_id": "flooder",
        "messages": ((f"factory/s/junk-{k % 100}/x", b"\xff not a reading %d" % k) for k in range(FLOOD))})
    started = time.monotonic()
    if flood:
        flooder.start()
    _good_traffic(port, first, f"good-{first}")
    assert wait_for_rows(gateway.buffer_path, "readings", expected_rows, timeout_s=120) == expected_rows
    elapsed = time.monotonic() - started
    if flood:
        flooder.join(120)
    return elapsed


def test_a_flood_of_malformed_messages_neither_slows_good_traffic_2x_nor_grows_memory(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    assert gateway.process is not None
    pid = gateway.process.pid
    baseline_s = _time_good(gateway, broker.port, 0, GOOD, flood=False)
    rss_before = _rss_kib(pid)
    flooded_s = _time_good(gateway, broker.port, GOOD, 2 * GOOD, flood=True)
    assert wait_for_rows(gateway.buffer_path, "quarantine", FLOOD, timeout_s=120) == FLOOD
    rss_after = _rss_kib(pid)
    assert gateway.terminate() == 0
    quarantine_logs = sum(1 for r in gateway.log_records() if r.get("message") == "message quarantined")
    print(f"\nflood: good traffic {baseline_s:.2f} s alone, {flooded_s:.2f} s beside {FLOOD} "
          f"malformed ({flooded_s / baseline_s:.2f}x); RSS {rss_before // 1024} -> "
          f"{rss_after // 1024} MiB; {quarantine_logs} quarantine log lines")
    assert flooded_s <= 2 * baseline_s
    assert rss_after - rss_before < 64 * 1024, "memory stays bounded"
    assert quarantine_logs < 50, "rejections are logged rate-limited"
