"""A synthetic factory: realistic sensor signals with labelled, injected faults. Pure code.

Assets (pumps, a hydraulic press, motors) carry vibration, temperature, pressure and
current sensors. Each asset has a load that follows a daily cycle plus a slow random
wander; its sensors follow the load (so they are correlated), with their own noise and
resolution. Faults of seven kinds are injected on a seeded schedule and returned as labels;
`relation_break` is the asset model's: one sensor departs from what its asset's load implies
(a pump drawing more current for the same flow and pressure) by a few noise sigmas, ramping in,
well inside the range its daily cycle covers, so that sensor alone still looks normal.
The same stream feeds `edge-gateway simulate` (over MQTT) and `bench/detection.py`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from edge.detection.settings import LimitSettings

FaultKind = Literal["spike", "drift", "stuck", "dropout", "out_of_range", "noise_burst",
                    "relation_break"]
FAULT_KINDS: tuple[FaultKind, ...] = ("spike", "drift", "stuck", "dropout", "out_of_range",
                                      "noise_burst", "relation_break")
DAY_S = 86_400.0

# Fault duration in readings (so a fast live demo and a slow scorecard scale alike).
_DURATION_READINGS: dict[FaultKind, tuple[int, int]] = {
    "spike": (1, 2), "drift": (200, 600), "stuck": (100, 300), "dropout": (60, 180),
    "out_of_range": (30, 120), "noise_burst": (30, 120), "relation_break": (200, 600),
}


@dataclass(frozen=True, slots=True)
class SensorSpec:
    sensor_id: str
    asset_id: str
    kind: str
    unit: str
    base: float
    load_gain: float  # change of the mean between no load and full load
    noise: float  # sigma of the measurement noise
    resolution: float

    @property
    def limits(self) -> LimitSettings:
        """Datasheet limits: well clear of normal operation (top of the load cycle + 8 sigma)."""
        top = self.base + self.load_gain
        return LimitSettings(max=round(top + 10 * self.noise, 3),
                             warn_max=round(top + 8 * self.noise, 3),
                             hysteresis=round(self.noise, 3))


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    sensor_id: str
    asset_id: str
    start: float
    end: float
    magnitude: float  # noise sigmas (spike, drift, out_of_range, relation_break) or a noise factor

    def label(self) -> dict[str, object]:
        return {"kind": self.kind, "sensor_id": self.sensor_id, "asset_id": self.asset_id,
                "start": self.start, "end": self.end, "magnitude": round(self.magnitude, 3)}


def _sensors(asset: str, kinds: tuple[tuple[str, str, float, float, float, float], ...]) -> list[SensorSpec]:
    return [SensorSpec(f"{asset}/{kind}", asset, kind, unit, base, gain, noise, resolution)
            for kind, unit, base, gain, noise, resolution in kinds]


# (kind, unit, base, load_gain, noise sigma, resolution): the load swings each mean by
# about ten noise sigmas between night and day, as on a machine with steady duty.
_PUMP = (("vibration", "mm/s", 2.0, 0.8, 0.08, 0.001), ("temperature", "degC", 45.0, 2.5, 0.25, 0.01),
         ("pressure", "bar", 4.0, 0.5, 0.05, 0.001), ("current", "A", 12.0, 2.0, 0.2, 0.01))
_PRESS = (("vibration", "mm/s", 3.5, 1.2, 0.12, 0.001), ("temperature", "degC", 50.0, 3.0, 0.3, 0.01),
          ("pressure", "bar", 150.0, 15.0, 1.5, 0.01), ("current", "A", 30.0, 4.0, 0.4, 0.01))
_MOTOR = (("vibration", "mm/s", 1.5, 0.6, 0.06, 0.001), ("temperature", "degC", 40.0, 2.0, 0.2, 0.01),
          ("current", "A", 15.0, 2.5, 0.25, 0.01))

DEFAULT_SENSORS: tuple[SensorSpec, ...] = tuple(
    _sensors("pump-1", _PUMP) + _sensors("pump-2", _PUMP) + _sensors("press-1", _PRESS)
    + _sensors("motor-1", _MOTOR) + _sensors("motor-2", _MOTOR))


class _AssetLoad:
    """Daily cycle (busy by day, quiet at night) plus a slow random wander, in [0, 1]."""

    def __init__(self, rng: random.Random, period_s: float) -> None:
        self._phase = rng.uniform(-0.3, 0.3)
        self._wander = 0.0
        self._keep = math.exp(-period_s / 3600.0)  # wander correlation time: one hour
        self._step = 0.03 * math.sqrt(1 - self._keep ** 2)
        self._rng = rng

    def at(self, ts: float) -> float:
        self._wander = self._keep * self._wander + self._rng.gauss(0.0, self._step)
        daily = 0.5 + 0.3 * math.sin(2 * math.pi * (ts / DAY_S - 0.25) + self._phase)
        return min(1.0, max(0.0, daily + self._wander))


class FactoryModel:
    """Generates readings for every sensor every `period_s`, with faults applied."""

    def __init__(self, seed: int = 42, period_s: float = 10.0,
                 sensors: tuple[SensorSpec, ...] = DEFAULT_SENSORS) -> None:
        self.seed = seed
        self.period_s = period_s
        self.sensors = sensors

    def schedule_faults(self, start: float, duration_s: float, per_sensor_day: float = 2.0,
                        warmup_s: float = 6 * 3600.0, gap_s: float = 4 * 3600.0) -> list[Fault]:
        """Non-overlapping faults per sensor, kinds in rotation, after a fault-free warm-up."""
        rng = random.Random(self.seed * 7919 + 1)
        faults: list[Fault] = []
        kind_index = 0
        mean_gap_s = DAY_S / per_sensor_day
        for spec in self.sensors:
            t = start + warmup_s + rng.uniform(0, mean_gap_s)
            while True:
                kind = FAULT_KINDS[kind_index % len(FAULT_KINDS)]
                low, high = _DURATION_READINGS[kind]
                length_s = rng.randint(low, high) * self.period_s
                if t + length_s + gap_s / 2 > start + duration_s:
                    break
                kind_index += 1
                faults.append(Fault(kind, spec.sensor_id, spec.asset_id, t, t + length_s,
                                    _magnitude(kind, rng)))
                t += length_s + gap_s + rng.expovariate(1 / mean_gap_s)
        return sorted(faults, key=lambda f: f.start)

    def live_faults(self, start: float, duration_s: float, every_s: float) -> list[Fault]:
        """One fault every `every_s`, kinds in rotation, on a seeded random sensor (demos)."""
        rng = random.Random(self.seed * 31 + 7)
        faults: list[Fault] = []
        t = start + every_s
        busy_until: dict[str, float] = {}
        index = 0
        while t < start + duration_s:
            kind = FAULT_KINDS[index % len(FAULT_KINDS)]
            spec = rng.choice(self.sensors)
            low, high = _DURATION_READINGS[kind]
            length_s = rng.randint(low, min(high, max(low, int(every_s / self.period_s)))) * self.period_s
            if busy_until.get(spec.sensor_id, 0.0) <= t:
                faults.append(Fault(kind, spec.sensor_id, spec.asset_id, t, t + length_s,
                                    _magnitude(kind, rng)))
                busy_until[spec.sensor_id] = t + length_s + every_s
                index += 1
            t += every_s
        return faults

    def stream(self, start: float, duration_s: float,
               faults: Sequence[Fault] = ()) -> Iterator[tuple[float, SensorSpec, float]]:
        """(ts, sensor, value) in time order; a sensor in a dropout yields nothing."""
        rng = random.Random(self.seed)
        loads = {asset: _AssetLoad(rng, self.period_s)
                 for asset in dict.fromkeys(s.asset_id for s in self.sensors)}
        by_sensor: dict[str, list[Fault]] = {}
        for fault in faults:
            by_sensor.setdefault(fault.sensor_id, []).append(fault)
        last_value: dict[str, float] = {}
        steps = int(duration_s / self.period_s)
        for step in range(steps):
            ts = start + step * self.period_s
            asset_load = {asset: load.at(ts) for asset, load in loads.items()}
            for spec in self.sensors:
                clean = spec.base + spec.load_gain * asset_load[spec.asset_id]
                noise = rng.gauss(0.0, spec.noise)
                active = _active(by_sensor.get(spec.sensor_id), ts)
                if active is None:
                    value = clean + noise
                elif active.kind == "dropout":
                    continue
                else:
                    value = _apply(active, spec, ts, clean=clean, noise=noise,
                                   last=last_value.get(spec.sensor_id, clean))
                value = round(value / spec.resolution) * spec.resolution
                last_value[spec.sensor_id] = value
                yield ts, spec, value


def _magnitude(kind: FaultKind, rng: random.Random) -> float:
    if kind == "noise_burst":
        return rng.uniform(6.0, 10.0)  # noise factor
    if kind == "out_of_range":
        return rng.uniform(1.0, 5.0)  # sigmas beyond the critical limit
    if kind == "spike":
        return rng.choice((-1, 1)) * rng.uniform(12.0, 30.0)
    if kind == "drift":
        return rng.choice((-1, 1)) * rng.uniform(10.0, 16.0)
    if kind == "relation_break":
        return rng.choice((-1, 1)) * rng.uniform(4.0, 6.0)
    return 0.0


def _active(faults: list[Fault] | None, ts: float) -> Fault | None:
    if faults:
        for fault in faults:
            if fault.start <= ts < fault.end:
                return fault
    return None


def _apply(fault: Fault, spec: SensorSpec, ts: float, *, clean: float, noise: float,
           last: float) -> float:
    sigma = spec.noise
    if fault.kind == "spike":
        return clean + noise + fault.magnitude * sigma
    if fault.kind == "drift":
        progress = min(1.0, (ts - fault.start) / max(fault.end - fault.start, 1e-9))
        return clean + noise + fault.magnitude * sigma * progress
    if fault.kind == "relation_break":  # ramps in over the first fifth, then holds
        progress = min(1.0, 5.0 * (ts - fault.start) / max(fault.end - fault.start, 1e-9))
        return clean + noise + fault.magnitude * sigma * progress
    if fault.kind == "stuck":
        return last
    if fault.kind == "out_of_range":
        limit = spec.limits.max
        assert limit is not None
        return limit + fault.magnitude * sigma + abs(noise)
    return clean + noise * fault.magnitude  # noise_burst
