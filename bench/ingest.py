"""Ingest benchmark: MQTT -> validation -> durable SQLite commit -> PUBACK, at QoS 1.

Both figures come from the same run on the same broker (a bench-owned Mosquitto with
config/mosquitto.conf): N QoS 1 messages from 1,000 sensors are queued for an offline
persistent session, then drained by
  1. a bare paho-mqtt subscriber (threaded loop, empty callback; the baseline), and
  2. the gateway pipeline (gmqtt, validation, group commit with synchronous=FULL,
     acknowledgement after the commit), with the anomaly, maintenance and notification
     agents running.
The gateway figure is messages/s until every reading is committed and acknowledged AND
the anomaly agent has judged every one of them (recent readings, so the detection engine
really judges each: readings stamped more than `ingest.max_reading_age_s` ago would be
flagged clock_suspect and skipped) (commits never wait for detection, so the
run waits for it explicitly; events it could not queue are counted as overflow and caught
up from the buffer, and are printed, so overflow cannot make the figure look fast).

    .venv/bin/python bench/ingest.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.daemon import Gateway
from edge.settings import Settings
from tests.support.publish import publish_all
from tests.support.services import running_broker

TOPIC_FILTER = "bench/#"
SENSORS = 1000


def messages(count: int) -> list[tuple[str, bytes]]:
    # Recent readings: far older ones are clock_suspect and detection would skip them.
    base_ts = time.time() - count / 1000 - 60
    return [
        (f"bench/line1/asset-{i % SENSORS // 10}/s{i % SENSORS}",
         orjson.dumps({"sensor_id": f"sensor-{i % SENSORS:04d}", "ts": base_ts + i / 1000,
                       "value": round(20 + (i % 97) * 0.37, 3), "unit": "degC"}))
        for i in range(count)
    ]


def paho_drain_rate(port: int, count: int) -> float:
    """Messages/s at which a bare paho subscriber drains `count` queued QoS 1 messages."""
    def session(client_id: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False, protocol=mqtt.MQTTv311)
        client.connect("127.0.0.1", port)
        return client

    registration = session("bench-paho")
    registration.subscribe(TOPIC_FILTER, qos=1)
    registration.loop(1.0)
    registration.disconnect()
    publish_all(port, messages(count), client_id="bench-pub-paho")

    done = threading.Event()
    received = 0

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= count:
            done.set()

    client = session("bench-paho")
    client.on_message = on_message
    started = time.perf_counter()
    client.loop_start()
    if not done.wait(300):
        raise TimeoutError(f"paho drained only {received} of {count}")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def gateway_settings(port: int, buffer_path: Path) -> Settings:
    return Settings(
        gateway={"id": "bench-gw"},
        mqtt={"port": port, "client_id": "bench-gateway",
              "subscriptions": [{"topic": TOPIC_FILTER, "qos": 1,
                                 "template": "bench/{site}/{asset}/{sensor}"}]},
        buffer={"path": str(buffer_path)},
    )


@dataclass(frozen=True)
class GatewayRun:
    committed_rate: float  # msg/s until every message was committed and acknowledged
    judged_rate: float  # msg/s until detection had also judged every reading
    overflows: int  # events the anomaly agent could not queue (caught up from the buffer)


async def _gateway_run(settings: Settings, expected: int | None) -> GatewayRun:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(gateway.run(stop))
    while not gateway.mqtt.connected:
        await asyncio.sleep(0.005)
    started = time.perf_counter()
    accepted = gateway.metrics.readings_accepted
    committed_at = judged_at = started
    if expected is not None:
        while accepted._value.get() < expected:
            if runner.done():
                runner.result()
            await asyncio.sleep(0.005)
        committed_at = time.perf_counter()
        agent = next(a for a in gateway.agents if a.agent_id == "anomaly-detection")
        while agent.backlog(gateway.pipeline.last_seq):
            await asyncio.sleep(0.005)
        judged_at = time.perf_counter()
    overflows = gateway.pipeline.health(30).announce_overflows
    stop.set()
    await runner
    if not expected:
        return GatewayRun(0.0, 0.0, 0)
    return GatewayRun(expected / (committed_at - started), expected / (judged_at - started),
                      overflows)


def gateway_drain_rate(port: int, count: int, workdir: Path) -> GatewayRun:
    settings = gateway_settings(port, workdir / "buffer.sqlite")
    asyncio.run(_gateway_run(settings, None))  # registers the persistent session
    publish_all(port, messages(count), client_id="bench-pub-gw")
    return asyncio.run(_gateway_run(settings, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "broker") as broker:
        paho_rate = paho_drain_rate(broker.port, args.messages)
        run = gateway_drain_rate(broker.port, args.messages, Path(tmp))
    print(f"messages                 : {args.messages} QoS 1, {SENSORS} sensors, ~90-byte JSON")
    print(f"bare paho-mqtt subscriber: {paho_rate:10,.0f} msg/s (baseline, no work, auto-ack)")
    print(f"edge-gateway, committed  : {run.committed_rate:10,.0f} msg/s (validate + FULL commit + ack)")
    print(f"edge-gateway, judged     : {run.judged_rate:10,.0f} msg/s (... and detection has judged "
          f"every reading; {run.overflows} events overflowed and were caught up from the buffer)")
    print(f"ratio gateway / paho     : {run.judged_rate / paho_rate:10.2f}x   "
          "(judged figure; target >= 2x, >= 25,000 msg/s)")


if __name__ == "__main__":
    main()
