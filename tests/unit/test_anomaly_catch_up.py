"""The anomaly agent's position in the buffer: catch-up by clock tick, across restarts, no
false silence while it is behind, and a position that never points past the last row."""

from __future__ import annotations

from pathlib import Path

from edge.agents.anomaly import AnomalyDetectionAgent
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.detection.settings import DetectionSettings, LimitSettings
from edge.events import DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, SensorSettings

T0 = 1_700_000_000.0
SENSORS = {"pump/temp": SensorSettings(limits=LimitSettings(max=90.0))}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _normal(count: int) -> list[float]:
    return [50.0 + (i % 7) * 0.1 for i in range(count)]


def _readings(values: list[float], start_s: float, every_s: float = 1.0,
              sensor: str = "pump/temp") -> tuple[Reading, ...]:
    return tuple(Reading(sensor, "pump", int((start_s + i * every_s) * 1e6), v, None, None, 0,
                         int((start_s + i * every_s) * 1e6)) for i, v in enumerate(values))


def _agent(buffer: SqliteBuffer, clock: Clock) -> AnomalyDetectionAgent:
    metrics = GatewayMetrics()
    return AnomalyDetectionAgent("anomaly-detection", EventBus(metrics), metrics, gateway_id="gw",
                                 settings=DetectionSettings(), sensors=SENSORS, alerts=buffer.alerts,
                                 readings=buffer.readings, positions=buffer.meta, clock=clock)


async def _commit_and_tell(agent: AnomalyDetectionAgent, buffer: SqliteBuffer,
                           readings: tuple[Reading, ...]) -> None:
    result = await buffer.readings.commit_batch(readings, [])
    await agent.process(DataProcessedEvent(source="t", readings=readings,
                                           first_seq=result.first_seq, last_seq=result.last_seq))


async def test_readings_committed_but_not_judged_before_a_stop_are_judged_after_the_restart(
    tmp_path: Path,
) -> None:
    clock = Clock(T0 + 200)
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock)
        await agent.start()
        await _commit_and_tell(agent, buffer, _readings(_normal(100), T0))
        # The next batch, with a fault, is committed but its event never reaches the agent.
        await buffer.readings.commit_batch(_readings(_normal(50) + [99.0] * 50, T0 + 100), [])
        await agent.stop()
        assert await buffer.alerts.latest() == []

        restarted = _agent(buffer, clock)
        await restarted.start()
        assert restarted.judged_seq == 100, "it resumes where it stopped judging"
        await restarted.tick()  # behind, but it has not moved yet: remember
        await restarted.tick()  # still behind and idle: catch up from the buffer
        assert restarted.judged_seq == 200
        alerts = await buffer.alerts.latest()
        assert ("limits", "open", 99.0) in [(a.detector, a.state, a.value) for a in alerts]
        await restarted.stop()


async def test_a_sensor_is_not_silent_because_a_lagging_agent_has_not_seen_its_readings(
    tmp_path: Path,
) -> None:
    clock = Clock(T0)
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        agent = _agent(buffer, clock)
        await agent.start()
        await _commit_and_tell(agent, buffer, _readings(_normal(20), T0, every_s=0.1))
        # Eight more seconds of readings are committed; the agent has not had their events.
        await buffer.readings.commit_batch(_readings(_normal(80), T0 + 2, every_s=0.1), [])
        clock.now = T0 + 10
        await agent.tick()
        assert await buffer.alerts.latest() == [], "no silence alert while behind"
        await agent.tick()  # caught up now: the sensor's last reading is recent
        assert agent.judged_seq == 100
        assert await buffer.alerts.latest() == []
        clock.now = T0 + 60  # and now it really went quiet
        await agent.tick()
        assert [a.detector for a in await buffer.alerts.latest()] == ["silence"]
        await agent.stop()


async def test_the_last_seq_is_a_row_even_when_the_batch_ends_with_a_duplicate(
    tmp_path: Path,
) -> None:
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw") as buffer:
        first, second = _readings([1.0, 2.0], T0)
        result = await buffer.readings.commit_batch([first, second, first], [])
        assert (result.inserted, result.duplicates) == (2, 1)
        assert result.last_seq == await buffer.readings.last_seq() == 2
