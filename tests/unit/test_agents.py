"""BaseAgent life cycle and AgentRegistry."""

from __future__ import annotations

from typing import ClassVar

import pytest

from edge.agents import AgentRegistry, BaseAgent
from edge.bus import EventBus
from edge.events import BaseEventModel
from edge.metrics import GatewayMetrics


class Counted(BaseEventModel):
    event_type: ClassVar[str] = "counted"
    count: int


class CountingAgent(BaseAgent):
    subscriptions = (Counted,)
    capabilities = ("count",)

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics,
                 fail: bool = False, attempts: int = 1) -> None:
        super().__init__(agent_id, bus, metrics)
        self.seen = 0
        self._fail = fail
        self.max_attempts = attempts

    async def process(self, event: BaseEventModel) -> None:
        assert isinstance(event, Counted)
        if self._fail:
            raise RuntimeError("cannot count")
        self.seen += event.count


async def test_agents_report_health_and_their_retry_policy_applies() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    registry = AgentRegistry()
    counter = CountingAgent("counter", bus, metrics)
    broken = CountingAgent("broken", bus, metrics, fail=True, attempts=3)
    registry.register(counter)
    registry.register(broken)
    await bus.start()
    await registry.start_all()
    assert metrics.agent_up.labels("counter")._value.get() == 1
    await bus.publish(Counted(source="test", count=5))
    await bus.publish(Counted(source="test", count=2))
    await registry.stop_all()
    await bus.stop()

    assert counter.seen == 7
    health = {h.agent_id: h for h in registry.health()}
    assert health["counter"].events_processed == 2
    assert health["counter"].capabilities == ("count",)
    assert health["counter"].state == "stopped"
    assert health["broken"].errors == 6 and "cannot count" in (health["broken"].last_error or "")
    assert metrics.agent_up.labels("counter")._value.get() == 0


def test_registry_refuses_duplicate_ids() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    registry = AgentRegistry()
    agent = CountingAgent("a", bus, metrics)
    registry.register(agent)
    assert list(registry) == [agent]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(CountingAgent("a", bus, metrics))
