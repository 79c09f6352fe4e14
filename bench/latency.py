"""Alert latency: from a PLC's publish to the alert on the gateway's MQTT alert topic, while a
separate process keeps a steady 10,000 QoS 1 msg/s of other traffic going.

Everything is real and separate: a bench-owned Mosquitto (config/mosquitto.conf), the daemon
as its own process (`python -m edge run`, detection, prediction, maintenance and
notification agents on), a load process publishing other sensors' readings at a paced rate,
and this process as the PLC and the subscriber. Each probe publishes one reading beyond a
datasheet limit on a sensor of its own (so each opens a fresh alert) and waits for the alert
on `edge/<gateway>/alerts/...`; the latency is the time between the publish call and the
alert's arrival, on one clock.

    .venv/bin/python bench/latency.py [--probes 300] [--load 10000]

Prints p50/p90/p99/max, the load rate actually achieved (publishes the broker acknowledged:
paho's publish() only queues, so counting calls overstated it), the rate the gateway
committed during the probes, and the gateway's overflow count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.gateway import GatewayProcess, gateway_config
from tests.support.services import running_broker

GATEWAY = "gw-test"
LOAD_SENSORS = 1000


def load(port: int, rate: int, seconds: float, achieved: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    """Publish `rate` QoS 1 msg/s of ordinary readings, paced in 10 ms slices."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-load",
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    acknowledged = [0]  # PUBACKs: what reached the broker (publish() only queues in paho)

    def on_publish(*_: object) -> None:
        acknowledged[0] += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    slice_s = 0.01
    per_slice = max(1, round(rate * slice_s))
    sent = 0
    started = time.monotonic()
    while (now := time.monotonic()) - started < seconds:
        target = int((now - started) / slice_s + 1) * per_slice
        while sent < target:
            k = sent % LOAD_SENSORS
            client.publish(f"factory/plant1/line-{k // 50}/s{k}", orjson.dumps(
                {"sensor_id": f"load-{k:04d}", "ts": time.time(), "value": 20.0 + (sent % 13) * 0.1}),
                qos=1)
            sent += 1
        time.sleep(max(0.0, started + (target // per_slice) * slice_s - time.monotonic()))
    achieved.value = acknowledged[0] / (time.monotonic() - started)
    client.loop_stop()
    client.disconnect()


class AlertWatcher:
    """Subscribes to the gateway's alert topics; records when each probe's alert arrives."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[str, float] = {}
        self._ready = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watch")
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self._ready.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(f"edge/{GATEWAY}/alerts/#", qos=1)
        self._client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("no SUBACK from the broker")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if message.payload:
            alert = orjson.loads(message.payload)
            if alert.get("state") == "open":
                self.arrived.setdefault(alert["sensor_id"], now)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def probe_all(port: int, probes: int, watcher: AlertWatcher, interval_s: float) -> list[float]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plc",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    latencies: list[float] = []
    try:
        for k in range(probes):
            sensor = f"probe-{k:04d}"
            payload = orjson.dumps({"sensor_id": sensor, "ts": time.time(), "value": 150.0})
            sent = time.perf_counter()
            client.publish(f"factory/plant1/probes/p{k}", payload, qos=1)
            deadline = sent + 5.0
            while sensor not in watcher.arrived and time.perf_counter() < deadline:
                time.sleep(0.0002)
            if sensor in watcher.arrived:
                latencies.append(watcher.arrived[sensor] - sent)
            time.sleep(interval_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--load", type=int, default=10_000, help="other traffic, msg/s")
    parser.add_argument("--interval-s", type=float, default=0.1, help="between probes")
    parser.add_argument("--settle-s", type=float, default=30.0,
                        help="load before the first probe: the steady state, once the load "
                             "sensors are past their learning period (200 readings at 10 a "
                             "second each: 20 s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "broker") as broker:
        probes = {f"probe-{k:04d}": {"asset": "probes", "limits": {"max": 100.0}}
                  for k in range(args.probes)}
        config = gateway_config(broker.port, Path(tmp) / "buffer.sqlite",
                                assets={"probes": {"criticality": "high"}}, sensors=probes)
        gateway = GatewayProcess(Path(tmp) / "gw", config)
        gateway.start()
        watcher = AlertWatcher(broker.port)
        seconds = args.probes * (args.interval_s + 0.02) + args.settle_s + 3.0
        achieved = multiprocessing.Value("d", 0.0)
        loader = multiprocessing.Process(target=load, args=(broker.port, args.load, seconds,
                                                            achieved))
        loader.start()
        time.sleep(args.settle_s)
        try:
            before, started = _metric(gateway.http_url, "edge_readings_accepted_total"), \
                time.monotonic()
            latencies = probe_all(broker.port, args.probes, watcher, args.interval_s)
            ingested = (_metric(gateway.http_url, "edge_readings_accepted_total") - before
                        - len(latencies)) / (time.monotonic() - started)
            overflows = _bus_overflows(gateway.http_url)
        finally:
            loader.join()
            watcher.close()
            gateway.terminate()
    if len(latencies) < args.probes:
        print(f"{args.probes - len(latencies)} probes got no alert within 5 s")
    ms = sorted(1000 * x for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"alert latency, publish -> alert topic, {len(ms)} probes under "
          f"{achieved.value:,.0f} QoS 1 msg/s of other traffic acknowledged by the broker "
          f"(asked {args.load:,}; one Python publisher may not reach it), the gateway "
          f"committing {ingested:,.0f} of them a second during the probes:")
    print(f"  p50 {cuts[49]:.1f} ms, p90 {cuts[89]:.1f} ms, p99 {cuts[98]:.1f} ms, "
          f"max {ms[-1]:.1f} ms (target p99 <= 20 ms)")
    print(f"  events an agent's full queue did not take (caught up from the buffer): "
          f"{overflows or 'none'}")


def _metric(http_url: str, name: str) -> float:
    """One unlabelled sample from the daemon's /metrics."""
    for line in httpx.get(f"{http_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rpartition(" ")[2])
    raise KeyError(name)


def _bus_overflows(http_url: str) -> dict[str, float]:
    """edge_bus_overflow_total by subscriber, from the daemon's /metrics."""
    text = httpx.get(f"{http_url}/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("edge_bus_overflow_total{"):
            labels, _, value = line.rpartition(" ")
            if float(value):
                out[labels.split('"')[1]] = float(value)
    return out


if __name__ == "__main__":
    main()
