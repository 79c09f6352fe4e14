"""Agents: units of work that meet only on the event bus and through the ports given them."""

from edge.agents.base import AgentHealth, AgentRegistry, BaseAgent

__all__ = ["AgentHealth", "AgentRegistry", "BaseAgent"]
