"""Sparkplug B topics: `spBv1.0/{group}/{type}/{node}[/{device}]` and `spBv1.0/STATE/{host}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NAMESPACE = "spBv1.0"
MessageType = Literal["NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD",
                      "STATE"]
NODE_TYPES = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    group: str
    type: MessageType
    node: str  # for STATE: the host application id
    device: str | None = None

    @property
    def node_key(self) -> tuple[str, str]:
        return self.group, self.node


def parse_topic(topic: str) -> SparkplugTopic | None:
    """The parts of a Sparkplug topic, or None if it is not one."""
    levels = topic.split("/")
    if len(levels) < 3 or levels[0] != NAMESPACE:
        return None
    if levels[1] == "STATE":
        return SparkplugTopic("", "STATE", levels[2]) if len(levels) == 3 and levels[2] else None
    if len(levels) not in (4, 5) or not all(levels):
        return None
    group, kind, node = levels[1], levels[2], levels[3]
    if len(levels) == 4 and kind in NODE_TYPES:
        return SparkplugTopic(group, kind, node)  # type: ignore[arg-type]
    if len(levels) == 5 and kind in DEVICE_TYPES:
        return SparkplugTopic(group, kind, node, levels[4])  # type: ignore[arg-type]
    return None


def command_topic(group: str, node: str) -> str:
    """Where a node's commands go (the rebirth request)."""
    return f"{NAMESPACE}/{group}/NCMD/{node}"


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"
