"""`edge-gateway simulate`: publish the synthetic factory to an MQTT broker in real time.

Readings are JSON objects `{"sensor_id", "ts", "value", "unit"}` on
`{topic_prefix}/{asset}/{sensor kind}`, QoS 1 by default. Each injected fault is written,
when it starts, as one JSON line to the labels file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
from gmqtt import Client

from edge.settings import MqttSettings
from edge.simulator.factory import FactoryModel, Fault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationOptions:
    rate_per_s: float = 20.0
    duration_s: float = 3600.0
    seed: int = 42
    faults: bool = True
    fault_every_s: float = 60.0
    topic_prefix: str = "factory/plant1"
    qos: int = 1
    labels_path: Path | None = None


def sensor_config(model: FactoryModel) -> dict[str, object]:
    """The `assets:`/`sensors:` config for the simulated factory (units, limits)."""
    assets = {s.asset_id: {"type": s.asset_id.split("-")[0],
                           "criticality": "high" if s.asset_id.startswith("press") else "medium"}
              for s in model.sensors}
    sensors = {s.sensor_id: {"asset": s.asset_id, "unit": s.unit, "kind": s.kind,
                             "limits": s.limits.model_dump(exclude_none=True)}
               for s in model.sensors}
    return {"assets": assets, "sensors": sensors}


async def simulate(mqtt: MqttSettings, options: SimulationOptions, stop: asyncio.Event) -> int:
    """Publish until the duration ends or `stop` is set; returns messages published."""
    period_s = len(FactoryModel().sensors) / options.rate_per_s
    model = FactoryModel(seed=options.seed, period_s=period_s)
    start = time.time()
    faults = model.live_faults(start, options.duration_s, options.fault_every_s) \
        if options.faults else []
    client = Client(f"edge-simulator-{options.seed}")
    if mqtt.username is not None:
        client.set_auth_credentials(mqtt.username,
                                    mqtt.password.get_secret_value() if mqtt.password else None)
    await client.connect(mqtt.host, mqtt.port, keepalive=30)
    published = 0
    labels = options.labels_path.open("a", encoding="utf-8") if options.labels_path else None
    pending = sorted(faults, key=lambda f: f.start)
    try:
        for ts, spec, value in model.stream(start, options.duration_s, faults):
            if stop.is_set():
                break
            delay = ts - time.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
            pending = _label_started(pending, ts, labels)
            payload = orjson.dumps({"sensor_id": spec.sensor_id, "ts": round(ts, 3),
                                    "value": value, "unit": spec.unit})
            client.publish(f"{options.topic_prefix}/{spec.asset_id}/{spec.kind}", payload,
                           qos=options.qos)
            published += 1
    finally:
        if labels is not None:
            labels.close()
        await client.disconnect()
    return published


def _label_started(pending: list[Fault], now: float, labels: IO[str] | None) -> list[Fault]:
    while pending and pending[0].start <= now:
        fault = pending.pop(0)
        log.info("fault injected", extra=fault.label())
        if labels is not None:
            labels.write(json.dumps(fault.label()) + "\n")
            labels.flush()
    return pending
