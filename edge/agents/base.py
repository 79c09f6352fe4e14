"""BaseAgent and AgentRegistry: the common life cycle of every agent.

An agent consumes events from the bus (`subscriptions`), does its work in `process`, and
publishes through `_publish`; it touches nothing else but the ports given to it.
It announces itself with `AgentStatusUpdateEvent` on start, stop and failure.
"""

from __future__ import annotations

import abc
import logging
import time
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from edge.bus import EventBus
from edge.events import AgentStatusUpdateEvent, BaseEventModel
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)

AgentState = Literal["created", "running", "stopped", "failed"]
InputT = TypeVar("InputT")


@dataclass(frozen=True, slots=True)
class AgentHealth:
    agent_id: str
    state: AgentState
    capabilities: tuple[str, ...]
    events_processed: int
    errors: int
    last_error: str | None
    uptime_s: float


class BaseAgent(abc.ABC, Generic[InputT]):
    """Life cycle, bus wiring and health bookkeeping shared by all agents.

    `InputT` is what `process` consumes: an event type for bus-driven agents, a batch of
    raw messages for the DataAcquisitionAgent (fed by the transports).
    """

    subscriptions: tuple[type[BaseEventModel], ...] = ()

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics) -> None:
        self.agent_id = agent_id
        self._bus = bus
        self._metrics = metrics
        self._state: AgentState = "created"
        self._capabilities: tuple[str, ...] = ()
        self._processed = 0
        self._errors = 0
        self._last_error: str | None = None
        self._started_monotonic: float | None = None

    def register_capabilities(self) -> tuple[str, ...]:
        """What this agent can do, for `/api/v1/agents`; override to list them."""
        return ()

    async def start(self) -> None:
        self._capabilities = self.register_capabilities()
        if self.subscriptions:
            self._bus.subscribe(self.agent_id, self.subscriptions, self.handle_event)
        self._state = "running"
        self._started_monotonic = time.monotonic()
        self._metrics.agent_up.labels(self.agent_id).set(1)
        await self._announce("running")

    async def stop(self) -> None:
        if self._state == "running":
            self._state = "stopped"
        self._metrics.agent_up.labels(self.agent_id).set(0)
        await self._announce("stopped")

    async def handle_event(self, event: BaseEventModel) -> None:
        """Bus entry point: run `process`, keep score, and re-raise so the bus retries."""
        try:
            await self.process(event)  # type: ignore[arg-type]  # subscriptions match InputT
        except Exception as exc:
            self._errors += 1
            self._last_error = repr(exc)
            raise
        self._processed += 1

    @abc.abstractmethod
    async def process(self, item: InputT) -> None:
        """Do this agent's work for one input."""

    async def fail(self, detail: str) -> None:
        """Mark the agent failed (it stops doing work) and say so on the bus."""
        self._state = "failed"
        self._last_error = detail
        self._metrics.agent_up.labels(self.agent_id).set(0)
        log.error("agent failed", extra={"agent": self.agent_id, "detail": detail})
        await self._announce("failed", detail)

    def get_health(self) -> AgentHealth:
        uptime = 0.0
        if self._started_monotonic is not None and self._state == "running":
            uptime = time.monotonic() - self._started_monotonic
        return AgentHealth(
            agent_id=self.agent_id,
            state=self._state,
            capabilities=self._capabilities,
            events_processed=self._processed,
            errors=self._errors,
            last_error=self._last_error,
            uptime_s=round(uptime, 3),
        )

    async def _publish(self, event: BaseEventModel) -> None:
        await self._bus.publish(event)

    async def _announce(self, status: Literal["running", "stopped", "failed"],
                        detail: str = "") -> None:
        await self._publish(
            AgentStatusUpdateEvent(source=self.agent_id, agent_id=self.agent_id,
                                   status=status, detail=detail)
        )


class AgentRegistry:
    """Agents by id, started in registration order and stopped in reverse."""

    def __init__(self) -> None:
        self._agents: dict[str, BaseAgent[Any]] = {}

    def register(self, agent: BaseAgent[Any]) -> None:
        if agent.agent_id in self._agents:
            raise ValueError(f"agent {agent.agent_id!r} is already registered")
        self._agents[agent.agent_id] = agent

    def get(self, agent_id: str) -> BaseAgent[Any]:
        return self._agents[agent_id]

    def __iter__(self) -> Any:
        return iter(self._agents.values())

    def health(self) -> list[AgentHealth]:
        return [agent.get_health() for agent in self._agents.values()]

    async def start_all(self) -> None:
        for agent in self._agents.values():
            await agent.start()

    async def stop_all(self) -> None:
        for agent in reversed(list(self._agents.values())):
            await agent.stop()
