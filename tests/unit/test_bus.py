"""EventBus: routing by type, bounded queues, failure isolation, dead letters, clean stop."""

from __future__ import annotations

import asyncio

import pytest

from edge.bus import EventBus
from edge.events import AgentStatusUpdateEvent, BaseEventModel, SensorDataReceivedEvent
from edge.metrics import GatewayMetrics


def _status(n: int = 0) -> AgentStatusUpdateEvent:
    return AgentStatusUpdateEvent(source="t", agent_id=f"a{n}", status="running")


def _received() -> SensorDataReceivedEvent:
    from datetime import UTC, datetime
    return SensorDataReceivedEvent(source="t", message_count=1, first_received_at=datetime.now(UTC))


async def test_events_reach_subscribers_of_their_type_or_a_base_type() -> None:
    bus = EventBus(GatewayMetrics())
    got: dict[str, list[str]] = {"status": [], "all": []}

    async def on_status(event: BaseEventModel) -> None:
        got["status"].append(event.event_type)

    async def on_all(event: BaseEventModel) -> None:
        got["all"].append(event.event_type)

    bus.subscribe("status", (AgentStatusUpdateEvent,), on_status)
    bus.subscribe("all", (BaseEventModel,), on_all)
    await bus.start()
    await bus.publish(_status())
    await bus.publish(_received())
    await bus.stop()
    assert got == {"status": ["agent_status_update"],
                   "all": ["agent_status_update", "sensor_data_received"]}


async def test_a_full_queue_makes_the_publisher_wait() -> None:
    bus = EventBus(GatewayMetrics(), queue_size=2)
    release = asyncio.Event()

    async def slow(event: BaseEventModel) -> None:
        await release.wait()

    bus.subscribe("slow", (BaseEventModel,), slow)
    await bus.start()
    for n in range(3):  # one in the handler, two queued
        await bus.publish(_status(n))
    blocked = asyncio.create_task(bus.publish(_status(9)))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "publish must wait while the queue is full"
    assert bus.queue_depths() == {"slow": 2}
    release.set()
    await asyncio.wait_for(blocked, 1)
    await bus.stop()


async def test_a_failing_handler_is_isolated_counted_and_dead_lettered() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics, max_attempts=3)
    healthy: list[str] = []
    attempts = 0

    async def broken(event: BaseEventModel) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("boom")

    async def fine(event: BaseEventModel) -> None:
        healthy.append(event.event_id)

    bus.subscribe("broken", (BaseEventModel,), broken)
    bus.subscribe("fine", (BaseEventModel,), fine)
    await bus.start()
    events = [_status(n) for n in range(2)]
    for event in events:
        await bus.publish(event)
    await bus.stop()
    assert healthy == [e.event_id for e in events]
    assert attempts == 6
    assert [d.event.event_id for d in bus.dead_letters] == [e.event_id for e in events]
    assert "boom" in bus.dead_letters[0].error
    assert metrics.bus_handler_errors.labels("broken")._value.get() == 6
    assert metrics.bus_dead_letters.labels("broken")._value.get() == 2


async def test_a_handler_that_recovers_on_retry_is_not_dead_lettered() -> None:
    bus = EventBus(GatewayMetrics(), max_attempts=3)
    calls = 0

    async def flaky(event: BaseEventModel) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("transient")

    bus.subscribe("flaky", (BaseEventModel,), flaky)
    await bus.start()
    await bus.publish(_status())
    await bus.stop()
    assert calls == 2 and not bus.dead_letters


async def test_stop_leaves_no_task_behind_even_with_a_stuck_handler() -> None:
    bus = EventBus(GatewayMetrics())

    async def stuck(event: BaseEventModel) -> None:
        await asyncio.sleep(3600)

    bus.subscribe("stuck", (BaseEventModel,), stuck)
    await bus.start()
    await bus.publish(_status())
    before = {t for t in asyncio.all_tasks() if t.get_name().startswith("bus:")}
    assert before
    await bus.stop(drain_timeout_s=0.1)
    assert all(t.done() for t in before)


def test_duplicate_subscriber_names_are_refused() -> None:
    bus = EventBus(GatewayMetrics())

    async def handler(event: BaseEventModel) -> None:
        return None

    bus.subscribe("x", (BaseEventModel,), handler)
    with pytest.raises(ValueError, match="already exists"):
        bus.subscribe("x", (BaseEventModel,), handler)
