"""In-process publish/subscribe by event type, with bounded queues.

Each subscriber owns a bounded queue and one worker task, and chooses two things when it
subscribes:
- retries: `max_attempts` > 1 only for a handler that is idempotent under retry (the
  anomaly agent keeps unsaved alert changes until they are stored, so a retry stores and
  announces them once); a handler that is not (it publishes as it goes) gets 1, and a
  failure is counted and dead-lettered at once. After `max_attempts` the event goes to a
  bounded dead-letter list. One failing subscriber never stops the others or the publisher.
- what a full queue means: `publish` waits for room (backpressure between agents), while
  `publish_nowait` never waits (the ingest pipeline must not: commits and acks never wait on
  an agent). An event that does not fit is dropped for that subscriber, counted
  (`edge_bus_overflow_total`), and once the queue has room again the subscriber gets one
  `FeedGapEvent`, so it can catch up from the buffer, which holds every committed reading.
  A subscriber that follows readings bounds its queue by readings (`max_readings`) as well
  as by events: a live stream commits many small batches (hundreds a second), a backlog
  a few large ones, and only a bound in readings holds both the same memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge.events import BaseEventModel, FeedGapEvent
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)

Handler = Callable[[BaseEventModel], Awaitable[None]]
_RETRY_DELAY_S = 0.1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a subscriber gave up on: what it was, not the event (it may hold a batch)."""

    subscriber: str
    event_type: str
    event_id: str
    error: str


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    name: str
    queued: int
    overflowed: int


@dataclass(slots=True)
class _Subscription:
    name: str
    event_types: tuple[type[BaseEventModel], ...]
    handler: Handler
    queue: asyncio.Queue[BaseEventModel]
    max_attempts: int
    max_readings: int | None = None  # readings its queued events may hold (None: no bound)
    worker: asyncio.Task[None] | None = None
    overflowed: int = 0
    gap: int = 0  # events dropped since the last FeedGapEvent
    readings: int = 0  # readings in its queued events


def _readings(event: BaseEventModel) -> int:
    """How many readings an event carries (DataProcessedEvent's batch; others none)."""
    batch = getattr(event, "readings", None)
    return len(batch) if isinstance(batch, tuple | list) else 0


class EventBus:
    """Routes each published event to every subscriber of its type (or a base type)."""

    def __init__(self, metrics: GatewayMetrics, queue_size: int = 1000,
                 dead_letter_limit: int = 1000) -> None:
        self._metrics = metrics
        self._queue_size = queue_size
        self._subscriptions: list[_Subscription] = []
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._running = False

    def subscribe(self, name: str, event_types: tuple[type[BaseEventModel], ...],
                  handler: Handler, *, max_attempts: int = 1,
                  queue_size: int | None = None, max_readings: int | None = None) -> None:
        """Deliver `event_types` to `handler`; retry only if it is idempotent (`max_attempts`).
        `queue_size` bounds the queued events, `max_readings` the readings they hold."""
        if any(sub.name == name for sub in self._subscriptions):
            raise ValueError(f"subscriber {name!r} already exists")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        sub = _Subscription(name, event_types, handler,
                            asyncio.Queue(maxsize=queue_size or self._queue_size), max_attempts,
                            max_readings)
        self._subscriptions.append(sub)
        if self._running:
            self._start_worker(sub)

    async def publish(self, event: BaseEventModel) -> None:
        """Queue `event` for each interested subscriber; waits while a queue is full."""
        for sub in self._subscriptions:
            if isinstance(event, sub.event_types):
                await sub.queue.put(event)
                sub.readings += _readings(event)
                self._metrics.bus_queue_depth.labels(sub.name).set(sub.queue.qsize())

    def publish_nowait(self, event: BaseEventModel) -> int:
        """Queue `event` without ever waiting; returns how many subscribers had no room."""
        dropped = 0
        count = _readings(event)
        for sub in self._subscriptions:
            if not isinstance(event, sub.event_types):
                continue
            try:
                # An event is always taken into an empty queue, however many readings it holds.
                if sub.max_readings is not None and sub.readings and \
                        sub.readings + count > sub.max_readings:
                    raise asyncio.QueueFull
                sub.queue.put_nowait(event)
                sub.readings += count
            except asyncio.QueueFull:
                dropped += 1
                sub.overflowed += 1
                sub.gap += 1
                self._metrics.bus_overflow.labels(sub.name).inc()
                continue
            self._metrics.bus_queue_depth.labels(sub.name).set(sub.queue.qsize())
        return dropped

    def stats(self) -> list[SubscriberStats]:
        return [SubscriberStats(s.name, s.queue.qsize(), s.overflowed) for s in self._subscriptions]

    async def start(self) -> None:
        self._running = True
        for sub in self._subscriptions:
            self._start_worker(sub)

    async def drain(self, timeout_s: float) -> bool:
        """Wait (up to the deadline) until every queued event is handled; True if all were."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                for sub in self._subscriptions:
                    await sub.queue.join()
                return True
        return False

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Let queued events be handled within the deadline, then cancel the workers."""
        self._running = False
        await self.drain(drain_timeout_s)
        workers = [sub.worker for sub in self._subscriptions if sub.worker is not None]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for sub in self._subscriptions:
            sub.worker = None
            left = sub.queue.qsize()
            if left:
                log.warning("bus stopped with unhandled events", extra={"subscriber": sub.name,
                                                                        "events": left})

    def _start_worker(self, sub: _Subscription) -> None:
        sub.worker = asyncio.create_task(self._work(sub), name=f"bus:{sub.name}")

    async def _work(self, sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            sub.readings -= _readings(event)
            try:
                await self._deliver(sub, event)
                if sub.gap and sub.queue.empty():
                    gap, sub.gap = sub.gap, 0
                    await self._deliver(sub, FeedGapEvent(source="bus", dropped=gap))
            finally:
                sub.queue.task_done()
                self._metrics.bus_queue_depth.labels(sub.name).set(sub.queue.qsize())

    async def _deliver(self, sub: _Subscription, event: BaseEventModel) -> None:
        last_error = ""
        for attempt in range(1, sub.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(_RETRY_DELAY_S * 2 ** (attempt - 2))  # a full disk needs a moment
            try:
                await sub.handler(event)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._metrics.bus_handler_errors.labels(sub.name).inc()
                log.warning(
                    "bus handler failed",
                    exc_info=attempt == 1,
                    extra={"subscriber": sub.name, "event_type": event.event_type,
                           "attempt": attempt, "of": sub.max_attempts, "error": repr(exc)},
                )
                last_error = repr(exc)
        self.dead_letters.append(DeadLetter(sub.name, event.event_type, event.event_id, last_error))
        self._metrics.bus_dead_letters.labels(sub.name).inc()
        log.error("event dead-lettered", extra={"subscriber": sub.name,
                                                 "event_type": event.event_type})
