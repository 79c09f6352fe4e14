"""Ingest benchmark: MQTT -> validation -> durable SQLite commit -> PUBACK, at QoS 1.

Both figures come from the same run on the same broker (a bench-owned Mosquitto with
config/mosquitto.conf): N QoS 1 messages from 1,000 sensors are queued for an offline
persistent session, then drained by
  1. a bare paho-mqtt subscriber (threaded loop, empty callback; the baseline), and
  2. the gateway pipeline (gmqtt, validation, group commit with synchronous=FULL,
     acknowledgement after the commit), with the anomaly (its detection engine in its worker
     processes, the default), prediction, maintenance and notification agents running.
The same run then drains 400,000 readings as Sparkplug B DDATA of 50 metrics by alias (20
devices, births first) and as mapped multi-value JSON (20 values a message), in readings/s.
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
from edge.detection.native import build
from edge.ingest.sparkplug.schema import DataType, Payload
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


JSON_SUBSCRIPTION = {"topic": TOPIC_FILTER, "qos": 1, "template": "bench/{site}/{asset}/{sensor}"}
# 20 devices of 50 metrics: 1,000 sensors, as in the JSON run.
SPB_GROUP, SPB_DEVICES, SPB_METRICS = "Bench", 20, 50
SPB_SUBSCRIPTION = {"topic": f"spBv1.0/{SPB_GROUP}/#", "qos": 1, "codec": "sparkplug_b"}
MAPPED_VALUES = 20
MAPPING_SUBSCRIPTION = {
    "topic": "mapped/+/+", "qos": 1, "template": "mapped/{site}/{asset}", "codec": "mapping",
    "mapping": {"ts": {"path": "ts", "format": "epoch_ms"},
                "values": [{"path": "values.*", "sensor": "{asset}/{key}", "unit": "degC"}]}}


def gateway_settings(port: int, buffer_path: Path,
                     subscription: dict[str, object] | None = None) -> Settings:
    return Settings(
        gateway={"id": "bench-gw"},
        mqtt={"port": port, "client_id": f"bench-gateway-{buffer_path.parent.name}",
              "subscriptions": [subscription or JSON_SUBSCRIPTION]},
        buffer={"path": str(buffer_path)},
    )


def sparkplug_messages(readings: int) -> list[tuple[str, bytes]]:
    """NBIRTH, a DBIRTH per device, then DDATA of 50 metrics by alias (seq in order)."""
    start_ms = int(time.time() * 1000) - readings // SPB_METRICS * 10 - 60_000
    seq = 0

    def payload(metrics: list[dict[str, object]], ts_ms: int) -> bytes:
        nonlocal seq
        message = Payload(timestamp=ts_ms, seq=seq % 256)
        seq += 1
        for metric in metrics:
            message.metrics.add(**metric)
        return bytes(message.SerializeToString())

    out = [(f"spBv1.0/{SPB_GROUP}/NBIRTH/edge-1", payload([
        {"name": "bdSeq", "datatype": DataType.INT64, "long_value": 0}], start_ms))]
    for device in range(SPB_DEVICES):
        out.append((f"spBv1.0/{SPB_GROUP}/DBIRTH/edge-1/dev-{device}", payload([
            {"name": f"metric {m}", "alias": m, "datatype": DataType.DOUBLE,
             "double_value": 20.0, "timestamp": start_ms} for m in range(SPB_METRICS)],
            start_ms)))
    for k in range(readings // SPB_METRICS):
        ts_ms = start_ms + 10 * (k // SPB_DEVICES + 1)
        out.append((f"spBv1.0/{SPB_GROUP}/DDATA/edge-1/dev-{k % SPB_DEVICES}", payload([
            {"alias": m, "double_value": 20 + ((k + m) % 97) * 0.37, "timestamp": ts_ms}
            for m in range(SPB_METRICS)], ts_ms)))
    return out


def mapped_messages(readings: int) -> list[tuple[str, bytes]]:
    start_ms = int(time.time() * 1000) - readings // MAPPED_VALUES - 60_000
    return [(f"mapped/line1/asset-{k % 50}", orjson.dumps(
        {"ts": start_ms + k, "values": {f"t{v}": round(20 + ((k + v) % 97) * 0.37, 3)
                                        for v in range(MAPPED_VALUES)}}))
            for k in range(readings // MAPPED_VALUES)]


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
        agent = next((a for a in gateway.agents if a.agent_id == "anomaly-detection"), None)
        while agent is not None and agent.backlog(gateway.pipeline.last_seq):
            await asyncio.sleep(0.005)
        judged_at = time.perf_counter()
    overflows = gateway.pipeline.health(30).announce_overflows
    stop.set()
    await runner
    if not expected:
        return GatewayRun(0.0, 0.0, 0)
    return GatewayRun(expected / (committed_at - started), expected / (judged_at - started),
                      overflows)


def gateway_drain_rate(port: int, count: int, workdir: Path,
                       subscription: dict[str, object] | None = None,
                       queued: list[tuple[str, bytes]] | None = None) -> GatewayRun:
    """Rates in readings/s: `queued` (default: `count` single-reading JSON messages) wait
    for the gateway's offline session, then it drains them."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = gateway_settings(port, workdir / "buffer.sqlite", subscription)
    asyncio.run(_gateway_run(settings, None))  # registers the persistent session
    publish_all(port, queued if queued is not None else messages(count),
                client_id=f"bench-pub-{workdir.name}")
    return asyncio.run(_gateway_run(settings, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--payload-readings", type=int, default=400_000,
                        help="readings in the Sparkplug and mapping runs")
    parser.add_argument("--only-json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp) / "broker") as broker:
        paho_rate = paho_drain_rate(broker.port, args.messages)
        run = gateway_drain_rate(broker.port, args.messages, Path(tmp) / "json")
        if not args.only_json:
            n = args.payload_readings
            spb = gateway_drain_rate(broker.port, n, Path(tmp) / "spb", SPB_SUBSCRIPTION,
                                     sparkplug_messages(n))
            mapped = gateway_drain_rate(broker.port, n, Path(tmp) / "mapped",
                                        MAPPING_SUBSCRIPTION, mapped_messages(n))
    print(f"detection models         : {build()}")
    print(f"messages                 : {args.messages} QoS 1, {SENSORS} sensors, ~90-byte JSON")
    print(f"bare paho-mqtt subscriber: {paho_rate:10,.0f} msg/s (baseline, no work, auto-ack)")
    print(f"edge-gateway, committed  : {run.committed_rate:10,.0f} msg/s (validate + FULL commit + ack)")
    print(f"edge-gateway, judged     : {run.judged_rate:10,.0f} msg/s (... and detection has judged "
          f"every reading; {run.overflows} events overflowed and were caught up from the buffer)")
    print(f"ratio gateway / paho     : {run.judged_rate / paho_rate:10.2f}x   "
          "(judged figure; target >= 2x, >= 25,000 msg/s)")
    if args.only_json:
        return
    print(f"\nreadings/s through the full durable path (QoS 1 queued, {n:,} readings each):")
    print(f"JSON, one reading a msg  : {run.committed_rate:10,.0f} committed, "
          f"{run.judged_rate:10,.0f} judged")
    print(f"Sparkplug B DDATA, {SPB_METRICS} metrics by alias: {spb.committed_rate:10,.0f} committed, "
          f"{spb.judged_rate:10,.0f} judged ({spb.committed_rate / run.committed_rate:.1f}x JSON; "
          f"target >= 150,000 committed; {spb.overflows} events overflowed)")
    print(f"mapped JSON, {MAPPED_VALUES} values a msg : {mapped.committed_rate:10,.0f} committed, "
          f"{mapped.judged_rate:10,.0f} judged ({mapped.committed_rate / run.committed_rate:.1f}x "
          f"JSON; {mapped.overflows} events overflowed)")


if __name__ == "__main__":
    main()
