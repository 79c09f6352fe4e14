"""`edge-gateway demo`: everything in one process, on a machine with no broker and no database.

An embedded MQTT broker (amqtt, the `demo` extra), the simulated factory with faults, the
daemon with a local SQLite buffer (and central sync with `--central-dsn`), and a live view
of readings per second, open alerts and tasks. Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.daemon import Gateway
from edge.settings import Settings
from edge.simulator.factory import FactoryModel
from edge.simulator.publisher import SimulationOptions, sensor_config, simulate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    rate_per_s: float = 50.0
    fault_every_s: float = 10.0
    duration_s: float = 24 * 3600.0
    central_dsn: str | None = None
    refresh_s: float = 2.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_settings(broker_port: int, workdir: Path, central_dsn: str | None) -> Settings:
    factory = sensor_config(FactoryModel())
    config: dict[str, Any] = {
        "gateway": {"id": "demo", "site": "demo-plant"},
        "mqtt": {"port": broker_port, "protocol": "3.1.1", "client_id": "edge-demo",
                 "reconnect": {"initial_delay_s": 0.2, "max_delay_s": 2.0},
                 "subscriptions": [{"topic": "factory/#", "qos": 1,
                                    "template": "factory/{site}/{asset}/{sensor}"}]},
        "buffer": {"path": str(workdir / "buffer.sqlite")},
        "detection": {"resolve_after_s": 30, "resolve_after_readings": 5,
                      "update_interval_s": 10},
        "maintenance": {"escalate_after_s": 120, "check_interval_s": 5},
        "http": {"port": _free_port(), "token": secrets.token_urlsafe(24),
                 "operator_token": secrets.token_urlsafe(24)},
        "logging": {"format": "text", "level": "WARNING"},
        **factory,
    }
    if central_dsn:
        config["central"] = {"dsn": central_dsn, "idle_interval_s": 0.5}
    return Settings(**config)


async def _start_broker(port: int) -> Any:
    from amqtt.broker import Broker

    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    return broker


async def run_demo(options: DemoOptions) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="edge-demo-"))
    broker_port = _free_port()
    settings = demo_settings(broker_port, workdir, options.central_dsn)
    if options.central_dsn:
        from cloud_sync import migrate

        await asyncio.to_thread(migrate.upgrade, settings.central)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = await _start_broker(broker_port)
    gateway = Gateway(settings)
    _print_intro(settings, broker_port, workdir)
    try:
        async with asyncio.TaskGroup() as tasks:
            daemon = tasks.create_task(gateway.run(stop), name="gateway")
            simulation = SimulationOptions(rate_per_s=options.rate_per_s,
                                           duration_s=options.duration_s,
                                           fault_every_s=options.fault_every_s,
                                           labels_path=workdir / "labels.jsonl")
            tasks.create_task(_simulate_when_connected(gateway, settings, simulation, stop),
                              name="simulator")
            view = tasks.create_task(_live_view(gateway, options.refresh_s, stop), name="view")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.duration_s):
                    await stop.wait()
            stop.set()
            await daemon
            view.cancel()
    finally:
        await broker.shutdown()
    print(f"\ndemo stopped; buffer kept in {workdir}", flush=True)


async def _simulate_when_connected(gateway: Gateway, settings: Settings,
                                   simulation: SimulationOptions, stop: asyncio.Event) -> None:
    await gateway.mqtt.connected_event.wait()  # the session (and its queue) exists first
    await simulate(settings.mqtt, simulation, stop)


def _print_intro(settings: Settings, broker_port: int, workdir: Path) -> None:
    http = settings.http
    token = http.token.get_secret_value() if http.token else ""
    operator = http.operator_token.get_secret_value() if http.operator_token else ""
    url = f"http://127.0.0.1:{http.port}"
    print(f"edge-gateway demo: embedded MQTT broker on 127.0.0.1:{broker_port}, "
          f"buffer in {workdir}\n"
          f"Operator page: {url}/  (sign in with the operator token {operator})\n"
          f"HTTP API on {url} (sensors' ingest token {token})\n"
          f"  curl -H 'Authorization: Bearer {token}' {url}/api/v1/alerts?state=open\n"
          f"  curl -X POST -H 'Authorization: Bearer {operator}' -H 'content-type: "
          f"application/json' -d '{{\"action\": \"acknowledge\", \"actor\": \"me\"}}' "
          f"{url}/api/v1/alerts/<alert id>/decisions\n"
          "The CLI, from another terminal in this folder:\n"
          f"  export EDGE_GATEWAY__ID={settings.gateway.id} EDGE_HTTP__PORT={http.port} "
          f"EDGE_HTTP__OPERATOR_TOKEN={operator} EDGE_BUFFER__PATH={settings.buffer.path}\n"
          "  .venv/bin/edge-gateway status --config config/edge.yaml   "
          "(and: alerts list, tasks list, alerts decide <id> acknowledge)\n"
          "Ctrl-C stops the demo.\n", flush=True)


async def _live_view(gateway: Gateway, refresh_s: float, stop: asyncio.Event) -> None:
    accepted = gateway.metrics.readings_accepted
    last_count, last_time = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(refresh_s)
        count, now = accepted._value.get(), time.monotonic()
        rate = (count - last_count) / (now - last_time)
        last_count, last_time = count, now
        alerts = await gateway.buffer.alerts.latest("open", limit=5)
        open_tasks = await gateway.buffer.tasks.count_open()
        lines = [f"{time.strftime('%H:%M:%S')}  readings/s {rate:6.1f}  total {int(count):7d}  "
                 f"open alerts {int(gateway.metrics.alerts_open._value.get()):3d}  "
                 f"open tasks {open_tasks:3d}"]
        lines += [f"    ALERT {a.severity:<8} {a.sensor_id:<22} {a.detector:<9} {a.reason}"
                  for a in alerts]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
