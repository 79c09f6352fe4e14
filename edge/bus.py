"""In-process publish/subscribe by event type, with bounded queues.

Each subscriber owns a bounded queue and one worker task: a slow subscriber makes
`publish` wait (backpressure) instead of growing memory. A handler that raises is
logged, counted and retried; after `max_attempts` the event goes to a bounded
dead-letter list. One failing subscriber never stops the others or the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge.events import BaseEventModel
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)

Handler = Callable[[BaseEventModel], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    subscriber: str
    event: BaseEventModel
    error: str


@dataclass(slots=True)
class _Subscription:
    name: str
    event_types: tuple[type[BaseEventModel], ...]
    handler: Handler
    queue: asyncio.Queue[BaseEventModel]
    worker: asyncio.Task[None] | None = None
    handled: int = 0
    failures: int = 0


class EventBus:
    """Routes each published event to every subscriber of its type (or a base type)."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        queue_size: int = 1000,
        max_attempts: int = 3,
        dead_letter_limit: int = 1000,
    ) -> None:
        self._metrics = metrics
        self._queue_size = queue_size
        self._max_attempts = max_attempts
        self._subscriptions: list[_Subscription] = []
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._running = False

    def subscribe(
        self,
        name: str,
        event_types: tuple[type[BaseEventModel], ...],
        handler: Handler,
        queue_size: int | None = None,
    ) -> None:
        if any(sub.name == name for sub in self._subscriptions):
            raise ValueError(f"subscriber {name!r} already exists")
        sub = _Subscription(
            name, event_types, handler, asyncio.Queue(maxsize=queue_size or self._queue_size)
        )
        self._subscriptions.append(sub)
        if self._running:
            self._start_worker(sub)

    async def publish(self, event: BaseEventModel) -> None:
        """Queue `event` for each interested subscriber; waits while a queue is full."""
        for sub in self._subscriptions:
            if isinstance(event, sub.event_types):
                await sub.queue.put(event)
                self._metrics.bus_queue_depth.labels(sub.name).set(sub.queue.qsize())

    def queue_depths(self) -> dict[str, int]:
        return {sub.name: sub.queue.qsize() for sub in self._subscriptions}

    async def start(self) -> None:
        self._running = True
        for sub in self._subscriptions:
            self._start_worker(sub)

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Let queued events be handled within the deadline, then cancel the workers."""
        self._running = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout_s):
                for sub in self._subscriptions:
                    await sub.queue.join()
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
            try:
                await self._deliver(sub, event)
            finally:
                sub.queue.task_done()
                self._metrics.bus_queue_depth.labels(sub.name).set(sub.queue.qsize())

    async def _deliver(self, sub: _Subscription, event: BaseEventModel) -> None:
        last_error = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                await sub.handler(event)
                sub.handled += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                sub.failures += 1
                self._metrics.bus_handler_errors.labels(sub.name).inc()
                log.warning(
                    "bus handler failed",
                    exc_info=attempt == 1,
                    extra={"subscriber": sub.name, "event_type": event.event_type,
                           "attempt": attempt, "error": repr(exc)},
                )
                last_error = repr(exc)
        self.dead_letters.append(DeadLetter(sub.name, event, last_error))
        self._metrics.bus_dead_letters.labels(sub.name).inc()
        log.error("event dead-lettered", extra={"subscriber": sub.name,
                                                 "event_type": event.event_type})
