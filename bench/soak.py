"""Soak: the daemon at a steady QoS 1 load for a long time, with the central database flapping.

Starts a bench-owned Mosquitto (recommended config), a fresh central database reached
through a fault-injecting TCP proxy that cuts the link for `--down-s` every `--flap-every-s`,
and the real daemon as a child process. Publishes `--rate` messages per second for
`--duration-s`, samples the daemon's RSS, then waits for the central side to catch up and
reconciles. Fails (exit 1) if RSS grows by 10 % or more after warm-up, or if anything is
missing or duplicated.

    .venv/bin/python bench/soak.py [--duration-s 600] [--rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.central import PG_PORT, central_rows, dsn_for, fresh_database
from tests.support.gateway import GatewayProcess, gateway_config
from tests.support.load import reading_message
from tests.support.publish import publish_all
from tests.support.services import running_broker
from tests.support.tcp_proxy import tcp_proxy


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(gateway.http_url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


class SteadyLoad(threading.Thread):
    def __init__(self, port: int, rate: float, duration_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.rate, self.duration_s = port, rate, duration_s
        self.published = 0

    def run(self) -> None:
        chunk = max(1, int(self.rate / 5))
        started = time.monotonic()
        while time.monotonic() - started < self.duration_s:
            began = time.monotonic()
            first = self.published
            self.published += publish_all(
                self.port, (reading_message(k, sensors=500) for k in range(first, first + chunk)),
                client_id="soak-load")
            time.sleep(max(0.0, 0.2 - (time.monotonic() - began)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=600)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--warmup-s", type=float, default=60)
    parser.add_argument("--flap-every-s", type=float, default=30)
    parser.add_argument("--down-s", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "broker") as broker, \
            fresh_database() as database, tcp_proxy(PG_PORT) as proxy:
        config = gateway_config(broker.port, Path(tmp) / "buffer.sqlite",
                                central={"dsn": dsn_for(database, proxy.port), "sslmode": "disable",
                                         "reconnect": {"initial_delay_s": 0.5, "max_delay_s": 5}})
        gateway = GatewayProcess(Path(tmp) / "gw", config)
        gateway.start()
        assert gateway.process is not None
        pid = gateway.process.pid
        load = SteadyLoad(broker.port, args.rate, args.duration_s)
        load.start()
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        max_lag = 0.0
        next_flap = args.flap_every_s
        while load.is_alive():
            elapsed = time.monotonic() - started
            if elapsed >= next_flap:
                proxy.cut()
                time.sleep(args.down_s)
                proxy.restore()
                next_flap += args.flap_every_s
            samples.append((elapsed, _rss_mib(pid)))
            max_lag = max(max_lag, _metric(gateway, "edge_sync_lag_seconds"))
            time.sleep(2)
        load.join()
        deadline = time.monotonic() + 300
        central = 0
        while time.monotonic() < deadline:
            central = asyncio.run(central_rows(database, "SELECT count(*) FROM sensor_readings"))[0][0]
            if central >= load.published:
                break
            time.sleep(1)
        distinct = asyncio.run(central_rows(
            database, "SELECT count(DISTINCT (sensor_id, time)) FROM sensor_readings"))[0][0]
        buffer_rows = _metric(gateway, 'edge_buffer_rows{kind="readings"}')
        buffer_bytes = _metric(gateway, "edge_buffer_bytes")
        final_lag = _metric(gateway, "edge_sync_lag_seconds")
        assert gateway.terminate() == 0
    warm = [rss for t, rss in samples if t >= args.warmup_s]
    rss_start, rss_end = (warm[0], warm[-1]) if warm else (samples[0][1], samples[-1][1])
    growth = (rss_end - rss_start) / rss_start * 100
    print(f"soak: {args.duration_s:.0f} s at {args.rate:.0f} msg/s, central link cut for "
          f"{args.down_s:.0f} s every {args.flap_every_s:.0f} s")
    print(f"RSS after warm-up {rss_start:.1f} MiB, at the end {rss_end:.1f} MiB, growth {growth:+.1f} %"
          f"  (target < 10 %)")
    print(f"buffer: {buffer_rows:.0f} reading rows, {buffer_bytes / 1e6:.1f} MB; sync lag max "
          f"{max_lag:.1f} s, at the end {final_lag:.1f} s")
    print(f"reconciliation: published {load.published} / central {central} / duplicates "
          f"{central - distinct}")
    ok = growth < 10 and central == distinct == load.published
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
