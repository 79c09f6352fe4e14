"""EventBus: routing by type, bounded queues, failure isolation, dead letters, clean stop."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from edge.bus import EventBus
from edge.events import BaseEventModel, FeedGapEvent
from edge.metrics import GatewayMetrics


class Status(BaseEventModel):
    event_type: ClassVar[str] = "status"
    n: int


class Received(BaseEventModel):
    event_type: ClassVar[str] = "received"


def _status(n: int = 0) -> Status:
    return Status(source="t", n=n)


def _received() -> Received:
    return Received(source="t")


async def test_events_reach_subscribers_of_their_type_or_a_base_type() -> None:
    bus = EventBus(GatewayMetrics())
    got: dict[str, list[str]] = {"status": [], "all": []}

    async def on_status(event: BaseEventModel) -> None:
        got["status"].append(event.event_type)

    async def on_all(event: BaseEventModel) -> None:
        got["all"].append(event.event_type)

    bus.subscribe("status", (Status,), on_status)
    bus.subscribe("all", (BaseEventModel,), on_all)
    await bus.start()
    await bus.publish(_status())
    await bus.publish(_received())
    await bus.stop()
    assert got == {"status": ["status"], "all": ["status", "received"]}


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
    assert [(s.name, s.queued) for s in bus.stats()] == [("slow", 2)]
    release.set()
    await asyncio.wait_for(blocked, 1)
    await bus.stop()


async def test_a_failing_handler_is_isolated_counted_and_dead_lettered() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    healthy: list[str] = []
    attempts = 0

    async def broken(event: BaseEventModel) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("boom")

    async def fine(event: BaseEventModel) -> None:
        healthy.append(event.event_id)

    bus.subscribe("broken", (BaseEventModel,), broken, max_attempts=3)
    bus.subscribe("fine", (BaseEventModel,), fine)
    await bus.start()
    events = [_status(n) for n in range(2)]
    for event in events:
        await bus.publish(event)
    await bus.stop()
    assert healthy == [e.event_id for e in events]
    assert attempts == 6
    assert [d.event_id for d in bus.dead_letters] == [e.event_id for e in events]
    assert "boom" in bus.dead_letters[0].error
    assert metrics.bus_handler_errors.labels("broken")._value.get() == 6
    assert metrics.bus_dead_letters.labels("broken")._value.get() == 2


async def test_a_handler_that_recovers_on_retry_is_not_dead_lettered() -> None:
    bus = EventBus(GatewayMetrics())
    calls = 0

    async def flaky(event: BaseEventModel) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("transient")

    bus.subscribe("flaky", (BaseEventModel,), flaky, max_attempts=3)
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


async def test_a_handler_that_is_not_idempotent_is_tried_once() -> None:
    bus = EventBus(GatewayMetrics())
    calls = 0

    async def publishes_as_it_goes(event: BaseEventModel) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("half done")

    bus.subscribe("notifier", (BaseEventModel,), publishes_as_it_goes)  # max_attempts=1
    await bus.start()
    await bus.publish(_status())
    await bus.stop()
    assert calls == 1 and len(bus.dead_letters) == 1


async def test_publish_nowait_never_waits_counts_overflow_and_then_signals_a_gap() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics, queue_size=2)
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(event: BaseEventModel) -> None:
        await release.wait()
        seen.append(event.event_type if not isinstance(event, FeedGapEvent)
                    else f"gap:{event.dropped}")

    bus.subscribe("slow", (Status,), slow)
    await bus.start()
    await bus.publish(_status(0))
    await asyncio.sleep(0.01)  # the worker holds event 0
    dropped = [bus.publish_nowait(_status(n)) for n in range(1, 6)]
    assert dropped == [0, 0, 1, 1, 1], "two fit in the queue, the rest overflow without waiting"
    assert metrics.bus_overflow.labels("slow")._value.get() == 3
    release.set()
    await bus.stop()
    assert seen == ["status", "status", "status", "gap:3"]
    assert bus.stats()[0].overflowed == 3


class Batch(BaseEventModel):
    event_type: ClassVar[str] = "batch"
    readings: tuple[int, ...]


async def test_a_queue_bounded_by_readings_takes_many_small_batches_and_few_large_ones() -> None:
    """Hundreds of small live batches fit where a few large ones fill the bound; a batch
    larger than the bound still goes into an empty queue."""
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(event: BaseEventModel) -> None:
        await release.wait()
        seen.append(len(event.readings) if isinstance(event, Batch) else -1)

    bus.subscribe("follower", (Batch,), slow, queue_size=10_000, max_readings=1000)
    await bus.start()
    await bus.publish(Batch(source="t", readings=(0,)))
    await asyncio.sleep(0.01)  # the worker holds it
    small = [bus.publish_nowait(Batch(source="t", readings=(1, 2))) for _ in range(500)]
    assert sum(small) == 0, "500 batches of 2 readings fit a bound of 1,000 readings"
    assert bus.publish_nowait(Batch(source="t", readings=(3,))) == 1, "the 1,001st reading"
    release.set()
    await asyncio.sleep(0.05)
    assert bus.publish_nowait(Batch(source="t", readings=tuple(range(5000)))) == 0, \
        "an empty queue takes a batch larger than the bound"
    await asyncio.sleep(0.05)
    await bus.stop()
    assert seen.count(2) == 500 and -1 in seen and seen[-1] == 5000
