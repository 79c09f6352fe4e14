"""BaseAgent and AgentRegistry: the common life cycle of every bus-driven agent.

An agent consumes events from the bus (`subscriptions`), does its work in `process`, and
publishes through `_publish`; it touches nothing else but the ports given to it.
`max_attempts` is its retry policy on the bus: more than 1 only when `process` is
idempotent under retry (each agent's docstring says which it is and why).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from edge.bus import EventBus
from edge.events import BaseEventModel
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)

AgentState = Literal["created", "running", "stopped"]


@dataclass(frozen=True, slots=True)
class AgentHealth:
    agent_id: str
    state: AgentState
    capabilities: tuple[str, ...]
    events_processed: int
    errors: int
    last_error: str | None
    uptime_s: float


class BaseAgent(abc.ABC):
    """Life cycle, bus wiring and health bookkeeping shared by all agents."""

    subscriptions: tuple[type[BaseEventModel], ...] = ()
    max_attempts: int = 1
    queue_size: int | None = None  # events its bus queue holds (None: the bus default)
    queue_readings: int | None = None  # readings its queued events may hold (None: no bound)
    capabilities: tuple[str, ...] = ()

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics) -> None:
        self.agent_id = agent_id
        self._bus = bus
        self._metrics = metrics
        self._state: AgentState = "created"
        self._processed = 0
        self._errors = 0
        self._last_error: str | None = None
        self._started_monotonic: float | None = None
        self._ticker: asyncio.Task[None] | None = None

    def _tick_every(self, interval_s: float, work: Callable[[], Awaitable[None] | None]) -> None:
        """Run `work` every `interval_s` seconds until `_stop_ticking` (clock-driven duties:
        silence, escalations, snoozes ending); a failing tick is logged, the next one runs."""
        async def tick_forever() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    done = work()
                    if inspect.isawaitable(done):
                        await done
                except Exception:
                    log.exception("tick failed", extra={"agent": self.agent_id})

        self._ticker = asyncio.create_task(tick_forever(), name=f"{self.agent_id}-tick")

    async def _stop_ticking(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def start(self) -> None:
        if self.subscriptions:
            self._bus.subscribe(self.agent_id, self.subscriptions, self.handle_event,
                                max_attempts=self.max_attempts, queue_size=self.queue_size,
                                max_readings=self.queue_readings)
        self._state = "running"
        self._started_monotonic = time.monotonic()
        self._metrics.agent_up.labels(self.agent_id).set(1)

    async def stop(self) -> None:
        if self._state == "running":
            self._state = "stopped"
        self._metrics.agent_up.labels(self.agent_id).set(0)

    async def handle_event(self, event: BaseEventModel) -> None:
        """Bus entry point: run `process`, keep score, and re-raise so the bus can retry."""
        try:
            await self.process(event)
        except Exception as exc:
            self._errors += 1
            self._last_error = repr(exc)
            raise
        self._processed += 1

    @abc.abstractmethod
    async def process(self, event: BaseEventModel) -> None:
        """Do this agent's work for one event."""

    def backlog(self, last_committed_seq: int) -> int | None:
        """Committed readings this agent has yet to see (None: it does not follow readings)."""
        return None

    def get_health(self) -> AgentHealth:
        uptime = 0.0
        if self._started_monotonic is not None and self._state == "running":
            uptime = time.monotonic() - self._started_monotonic
        return AgentHealth(
            agent_id=self.agent_id,
            state=self._state,
            capabilities=self.capabilities,
            events_processed=self._processed,
            errors=self._errors,
            last_error=self._last_error,
            uptime_s=round(uptime, 3),
        )

    async def _publish(self, event: BaseEventModel) -> None:
        await self._bus.publish(event)


class AgentRegistry:
    """Agents by id, started in registration order and stopped in reverse."""

    def __init__(self) -> None:
        self._agents: dict[str, BaseAgent] = {}

    def register(self, agent: BaseAgent) -> None:
        if agent.agent_id in self._agents:
            raise ValueError(f"agent {agent.agent_id!r} is already registered")
        self._agents[agent.agent_id] = agent

    def __iter__(self) -> Iterator[BaseAgent]:
        return iter(self._agents.values())

    def health(self) -> list[AgentHealth]:
        return [agent.get_health() for agent in self._agents.values()]

    async def start_all(self) -> None:
        for agent in self._agents.values():
            await agent.start()

    async def stop_all(self) -> None:
        for agent in reversed(list(self._agents.values())):
            await agent.stop()
