"""Topic templates: map MQTT topic levels to site, asset and sensor ids.

`factory/{site}/{asset}/{sensor}` applied to `factory/p1/pump-3/vibration` gives
site=p1, asset=pump-3, sensor=vibration; the sensor id is then built by the
subscription's `sensor_id` format (default `{asset}/{sensor}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from edge.ingest.mapping import FieldMapping
from edge.ingest.ports import HTTP_SOURCE
from edge.settings import GATEWAY_TOPICS, SubscriptionSettings

_CACHE_LIMIT = 100_000


Codec = Literal["auto", "mapping", "sparkplug_b"]
_NO_FIELDS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TopicContext:
    """What a topic says about the readings in its messages, and how to read them."""

    subscription: str  # the topic filter that matched, a metric label
    asset_id: str | None
    sensor_id: str | None
    skip: str | None = None  # why messages on this topic are not data (acked, counted)
    codec: Codec = "auto"
    fields: Mapping[str, str] = field(default_factory=lambda: _NO_FIELDS)  # template fields
    mapping: FieldMapping | None = None


# HTTP ingestion: no topic, ids from the payload, counted as subscription="http".
HTTP_CONTEXT = TopicContext(HTTP_SOURCE, None, None)


def filter_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard matching (+ one level, # the rest); $-topics need an explicit filter."""
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


class _Template:
    def __init__(self, template: str, sensor_id_format: str | None) -> None:
        self._levels = [
            (level[1:-1], True) if level.startswith("{") and level.endswith("}") else (level, False)
            for level in template.split("/")
        ]
        self._sensor_id_format = sensor_id_format

    def apply(self, topic_levels: list[str]) -> tuple[dict[str, str], str | None] | None:
        """(the template's fields, the sensor id they make), or None if it does not fit."""
        if len(topic_levels) != len(self._levels):
            return None
        fields: dict[str, str] = {}
        for (name, is_field), value in zip(self._levels, topic_levels, strict=True):
            if is_field:
                if not value:
                    return None
                fields[name] = value
            elif name != value:
                return None
        sensor_id = self._sensor_id_format.format(**fields) if self._sensor_id_format else None
        return fields, sensor_id


class NotificationTopics:
    """Recognises gateway notification topics: `{prefix}/alerts/...` and the other
    GATEWAY_TOPICS, of this gateway and, when the prefix names `{gateway_id}`, of any other
    gateway on a shared broker. Nothing else under the prefix: a sensor topic that happens
    to live there stays data (review of item 9).
    """

    def __init__(self, prefix_template: str, gateway_id: str) -> None:
        kinds = "|".join(GATEWAY_TOPICS)
        own = re.escape(prefix_template.replace("{gateway_id}", gateway_id))
        self._own = re.compile(f"{own}/(?:{kinds})/.+")
        other = re.escape(prefix_template).replace(re.escape("{gateway_id}"), "[^/]+")
        self._any = re.compile(f"{other}/(?:{kinds})/.+") if "{gateway_id}" in prefix_template \
            else None

    def skip_reason(self, topic: str) -> str | None:
        """own_notification, gateway_notification (another gateway's), or None (data)."""
        if self._own.fullmatch(topic):
            return "own_notification"
        if self._any is not None and self._any.fullmatch(topic):
            return "gateway_notification"
        return None


class TopicMapper:
    """Finds the subscription a topic belongs to and what its template extracts (cached)."""

    def __init__(self, subscriptions: list[SubscriptionSettings],
                 notifications: NotificationTopics | None = None) -> None:
        # Gateway notification topics are never data, even when a subscription such as `#`
        # matches them (field trial item 9).
        self._notifications = notifications
        self._subscriptions = [
            (sub, _Template(sub.template, sub.sensor_id_format) if sub.template else None,
             FieldMapping(sub.mapping) if sub.mapping is not None else None)
            for sub in subscriptions
        ]
        self._cache: dict[str, TopicContext] = {}

    def context(self, topic: str) -> TopicContext:
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        context = self._resolve(topic)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # a topic flood must not grow memory without bound
        self._cache[topic] = context
        return context

    def _resolve(self, topic: str) -> TopicContext:
        skip = self._notifications.skip_reason(topic) if self._notifications else None
        if skip is not None:
            return TopicContext("own" if skip == "own_notification" else "other_gateway",
                                None, None, skip=skip)
        levels = topic.split("/")
        first_match: TopicContext | None = None
        for sub, template, mapping in self._subscriptions:
            if not filter_matches(sub.topic, topic):
                continue
            if first_match is None:
                first_match = TopicContext(sub.topic, None, None, codec=sub.codec,
                                           mapping=mapping)
            if template is not None:
                extracted = template.apply(levels)
                if extracted is not None:
                    fields, sensor_id = extracted
                    return TopicContext(sub.topic, fields.get("asset"), sensor_id,
                                        codec=sub.codec, fields=MappingProxyType(fields),
                                        mapping=mapping)
        return first_match or TopicContext("unmatched", None, None)
