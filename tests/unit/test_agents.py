"""BaseAgent life cycle and AgentRegistry."""

from __future__ import annotations

import pytest

from edge.agents import AgentRegistry, BaseAgent
from edge.bus import EventBus
from edge.events import AgentStatusUpdateEvent, BaseEventModel, SensorDataReceivedEvent
from edge.metrics import GatewayMetrics


class CountingAgent(BaseAgent[SensorDataReceivedEvent]):
    subscriptions = (SensorDataReceivedEvent,)

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics,
                 fail: bool = False) -> None:
        super().__init__(agent_id, bus, metrics)
        self.seen = 0
        self._fail = fail

    def register_capabilities(self) -> tuple[str, ...]:
        return ("count",)

    async def process(self, item: SensorDataReceivedEvent) -> None:
        if self._fail:
            raise RuntimeError("cannot count")
        self.seen += item.message_count


def _received(count: int) -> SensorDataReceivedEvent:
    from datetime import UTC, datetime
    return SensorDataReceivedEvent(source="test", message_count=count,
                                   first_received_at=datetime.now(UTC))


async def test_agents_announce_start_and_stop_and_report_health() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    statuses: list[tuple[str, str]] = []

    async def watch(event: BaseEventModel) -> None:
        assert isinstance(event, AgentStatusUpdateEvent)
        statuses.append((event.agent_id, event.status))

    bus.subscribe("watcher", (AgentStatusUpdateEvent,), watch)
    registry = AgentRegistry()
    counter = CountingAgent("counter", bus, metrics)
    broken = CountingAgent("broken", bus, metrics, fail=True)
    registry.register(counter)
    registry.register(broken)
    await bus.start()
    await registry.start_all()
    await bus.publish(_received(5))
    await bus.publish(_received(2))
    await registry.stop_all()
    await bus.stop()

    assert counter.seen == 7
    health = {h.agent_id: h for h in registry.health()}
    assert health["counter"].events_processed == 2
    assert health["counter"].capabilities == ("count",)
    assert health["counter"].state == "stopped"
    assert health["broken"].errors == 6 and "cannot count" in (health["broken"].last_error or "")
    assert statuses == [("counter", "running"), ("broken", "running"),
                        ("broken", "stopped"), ("counter", "stopped")]
    assert metrics.agent_up.labels("counter")._value.get() == 0


async def test_failed_agent_says_so() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    seen: list[str] = []

    async def watch(event: BaseEventModel) -> None:
        assert isinstance(event, AgentStatusUpdateEvent)
        seen.append(event.status)

    bus.subscribe("watcher", (AgentStatusUpdateEvent,), watch)
    await bus.start()
    agent = CountingAgent("a", bus, metrics)
    await agent.start()
    await agent.fail("sensor map missing")
    await bus.stop()
    assert seen == ["running", "failed"]
    assert agent.get_health().state == "failed"


def test_registry_refuses_duplicate_ids_and_looks_up_by_id() -> None:
    metrics = GatewayMetrics()
    bus = EventBus(metrics)
    registry = AgentRegistry()
    agent = CountingAgent("a", bus, metrics)
    registry.register(agent)
    assert registry.get("a") is agent
    with pytest.raises(ValueError, match="already registered"):
        registry.register(CountingAgent("a", bus, metrics))
