"""Alert latency: from a PLC's publish to the alert on the gateway's MQTT alert topic, while a
separate process keeps a steady 10,000 QoS 1 msg/s of other traffic going.

Everything is real and separate: a bench-owned Mosquitto (config/mosquitto.conf), the daemon
as its own process (`python -m edge run`, detection, prediction, maintenance and
notification agents on), a load process feeding other sensors' readings at a paced rate to
Mosquitto's C publisher (`mosquitto_pub -l`, one per load topic), and this process as the
PLC and the subscriber. Each probe publishes one reading beyond a datasheet limit on a
sensor of its own (so each opens a fresh alert) and waits for the alert on
`edge/<gateway>/alerts/...`; the latency is the time between the publish call and the
alert's arrival, on one clock.

    .venv/bin/python bench/latency.py [--probes 300] [--load 10000]

Prints p50/p90/p99/max, the load rate actually achieved (what the publishers sent, up to
their exit once all was sent), the rate the gateway committed during the probes (the
cross-check), and the gateway's overflow count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
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
PROBE_VALUE = 150.0
LOAD_SENSORS = 1000


LOAD_LINES = 4  # load topics factory/plant1/line-<k>/load, 250 sensors each (too many for an
# asset model, as the 50 of each line were: max_sensors 32)


def load(port: int, rate: int, seconds: float, achieved: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    """Publish `rate` QoS 1 msg/s of ordinary readings, paced in 10 ms slices.

    The publishers are Mosquitto's own C client (`mosquitto_pub -l`: one message per line
    of its stdin), one per line topic, fed paced lines from here. A Python MQTT client
    cannot publish 10,000 QoS 1 msg/s on this 2-core machine (paho reached 2,000-4,400),
    and the core it burns would be taken from the gateway under test. `achieved` is what
    the publishers got off their hands: the lines written, over the time until the last
    publisher had sent everything and exited.
    """
    publishers = [subprocess.Popen(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "1000",
         "-i", f"bench-load-{line}", "-l", "-t", f"factory/plant1/line-{line}/load"],
        stdin=subprocess.PIPE) for line in range(LOAD_LINES)]
    slice_s = 0.01
    per_slice = max(1, round(rate * slice_s))
    sent = 0
    started = time.monotonic()
    while (now := time.monotonic()) - started < seconds:
        target = int((now - started) / slice_s + 1) * per_slice
        lines: list[list[bytes]] = [[] for _ in publishers]
        ts = time.time()
        while sent < target:
            k = sent % LOAD_SENSORS
            lines[k * LOAD_LINES // LOAD_SENSORS].append(orjson.dumps(
                {"sensor_id": f"load-{k:04d}", "ts": ts, "value": 20.0 + (sent % 13) * 0.1}))
            sent += 1
        for publisher, batch in zip(publishers, lines, strict=True):
            if batch:
                assert publisher.stdin is not None
                publisher.stdin.write(b"\n".join(batch) + b"\n")
                publisher.stdin.flush()
        time.sleep(max(0.0, started + (target // per_slice) * slice_s - time.monotonic()))
    for publisher in publishers:
        assert publisher.stdin is not None
        publisher.stdin.close()
    for publisher in publishers:
        publisher.wait(timeout=30)
    achieved.value = sent / (time.monotonic() - started)


class AlertWatcher:
    """Subscribes to the gateway's alert topics; records when each probe's alert arrives."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[str, float] = {}
        self.news = threading.Condition()  # notified on each arrival: no polling loop
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
                with self.news:
                    self.arrived.setdefault(alert["sensor_id"], now)
                    self.news.notify_all()

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
            payload = orjson.dumps({"sensor_id": sensor, "ts": time.time(), "value": PROBE_VALUE})
            sent = time.perf_counter()
            client.publish(f"factory/plant1/probes/p{k}", payload, qos=1)
            with watcher.news:  # waits without burning the CPU the gateway needs
                watcher.news.wait_for(lambda s=sensor: s in watcher.arrived, timeout=5.0)  # type: ignore[misc]
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
          f"{achieved.value:,.0f} QoS 1 msg/s of other traffic published (asked "
          f"{args.load:,}; {LOAD_LINES} mosquitto_pub processes), the gateway "
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
