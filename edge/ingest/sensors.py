"""SensorRegistry: which sensor ids the gateway tracks, capped at `ingest.max_sensors`.

Every sensor costs memory in several places (id caches, detection state, per-sensor
metrics of agents), so a flood of distinct ids (a typo in a device template, an attack)
must not grow the daemon until systemd's MemoryMax kills it. Beyond the cap a new sensor's
readings are quarantined as `too_many_sensors` (counted, logged once per interval) while
known sensors go on; configured sensors (`sensors:`) are always accepted. A sensor idle for
`ingest.sensor_idle_release_s` is forgotten, which frees its place. At start the registry
is seeded from the buffer (`seed`), so sensors known before a restart keep their places
instead of losing them to new ids that queued at the broker meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edge.errors import PayloadError

_SWEEP_INTERVAL_US = 60_000_000


class SensorRegistry:
    def __init__(self, max_sensors: int, idle_release_s: float, configured: Iterable[str]) -> None:
        self._max = max_sensors
        self._idle_us = int(idle_release_s * 1_000_000)
        self._configured = frozenset(configured)
        self._last_seen: dict[str, int] = {}
        self._next_sweep_us = 0

    def __len__(self) -> int:
        return len(self._last_seen)

    @property
    def max_sensors(self) -> int:
        return self._max

    @property
    def idle_release_us(self) -> int:
        return self._idle_us

    def seed(self, recently_seen: Sequence[tuple[str, int]]) -> None:
        """Take the sensors the buffer saw last, most recent first, up to the cap."""
        for sensor_id, last_seen_us in recently_seen:
            if len(self._last_seen) >= self._max:
                break
            self._last_seen.setdefault(sensor_id, last_seen_us)

    def admit(self, sensor_id: str, received_us: int) -> None:
        """Note a reading of `sensor_id`; raise PayloadError when a new one exceeds the cap."""
        last_seen = self._last_seen
        if sensor_id not in last_seen and len(last_seen) >= self._max \
                and sensor_id not in self._configured:
            if received_us >= self._next_sweep_us:
                self._release_idle(received_us)
            if len(last_seen) >= self._max:
                raise PayloadError("too_many_sensors",
                                   f"{self._max} sensors are tracked (ingest.max_sensors); "
                                   f"{sensor_id[:40]!r} is not accepted")
        last_seen[sensor_id] = received_us

    def _release_idle(self, now_us: int) -> None:
        self._next_sweep_us = now_us + _SWEEP_INTERVAL_US
        cutoff = now_us - self._idle_us
        for sensor_id in [s for s, seen in self._last_seen.items() if seen < cutoff]:
            del self._last_seen[sensor_id]
