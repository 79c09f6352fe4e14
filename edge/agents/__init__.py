"""Agents: units of work that live on the event bus and touch only the ports given them.

`anomaly` (detection), `maintenance` (tasks from alerts), `notification` (MQTT/webhook).
"""

from edge.agents.base import AgentHealth, AgentRegistry, BaseAgent

__all__ = ["AgentHealth", "AgentRegistry", "BaseAgent"]
