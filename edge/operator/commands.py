"""MQTT commands: operators (an HMI, a SCADA script) decide over MQTT.

Topic: `{notifications.topic_prefix}/commands/decisions` (default `edge/<gateway>/commands/
decisions`), QoS 1, a JSON object:

    {"request_id": "r-42", "target_kind": "task", "target_id": "<task id>",
     "action": "complete", "actor": "jane", "note": "bearing replaced",
     "decision_id": "optional idempotency key (default: mqtt-<request_id>)",
     "params": {"fault_found": true}}

The answer goes to `{prefix}/responses/{request_id}` (QoS 1, not retained):

    {"request_id": "r-42", "status": "applied" | "duplicate" | "conflict" | "rejected" |
     "unknown_target" | "invalid" | "retained", "detail": "...", "allowed_actions": [...],
     "decision": {...}}

Who may command is the broker's business (ACLs on the command topic, README). The message
is acknowledged once its decision is stored (or refused). A command published retained is
never applied, live or resent by the broker at a (re)subscribe (it would be applied again on
every reconnect and restart): it is answered `retained` when it carries a usable request_id,
counted as `retained_ignored` and logged; the sender should clear it (an empty retained
message, which is ignored quietly). Live retained publishes are recognised under MQTT 5
(the command subscription keeps the retain flag as published); under 3.1.1 a broker clears
the flag on live delivery, so only the resent copies are recognised there. Malformed
commands are answered `invalid` when they carry a usable request_id, counted in
`edge_commands_total{outcome}`, and logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from edge.errors import TemporarilyUnavailable
from edge.logs import RateLimitedLog
from edge.maintenance.decisions import DecisionRequest, DecisionResult, first_error
from edge.metrics import GatewayMetrics

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_QUEUE = 1000


_Command = tuple[str, bytes, "Acks | None", Any, bool]  # topic, payload, acks, token, retained


class Acks(Protocol):
    def acknowledge(self, tokens: list[Any]) -> None: ...


class DecisionPort(Protocol):
    async def submit(self, request: DecisionRequest) -> DecisionResult: ...


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...


class CommandHandler:
    """Takes command messages from the MQTT source, decides, answers, acknowledges."""

    def __init__(self, decisions: DecisionPort, publisher: Publisher, prefix: str,
                 metrics: GatewayMetrics) -> None:
        self._decisions = decisions
        self._publisher = publisher
        self._responses = prefix.rstrip("/") + "/responses/"
        self._metrics = metrics
        self._queue: asyncio.Queue[_Command] = asyncio.Queue(maxsize=_QUEUE)
        self._log = RateLimitedLog(log)

    def submit(self, source: str, payload: bytes, ack_sink: Any, ack_token: Any, *,
               retained: bool = False, transport: str = "mqtt", replayed: bool = False) -> None:
        """Queue one command (the MQTT source's callback: never blocks)."""
        try:
            self._queue.put_nowait((source, payload, ack_sink, ack_token, retained))
        except asyncio.QueueFull:  # not acknowledged: the broker redelivers it
            self._count("overloaded")

    async def run(self) -> None:
        """Handle commands one at a time, in arrival order, until cancelled."""
        while True:
            topic, payload, acks, token, retained = await self._queue.get()
            try:
                await self._handle(topic, payload, retained)
            except Exception:  # one bad command stops nothing; it is acknowledged below
                log.exception("command failed", extra={"topic": topic})
                self._count("error")
            if acks is not None:
                acks.acknowledge([token])

    async def _handle(self, topic: str, payload: bytes, retained: bool) -> None:
        if not payload:  # clears a retained command (or carries nothing): nothing to do
            self._count("empty")
            return
        try:
            body = orjson.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("a command is a JSON object")
        except ValueError as exc:
            if retained:
                self._refuse_retained(None, topic)
            else:
                self._invalid(None, f"not JSON: {exc}"[:200], topic)
            return
        request_id = body.pop("request_id", None)
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            request_id = None
        if retained:
            self._refuse_retained(request_id, topic)
            return
        if request_id is None:
            self._invalid(None, "request_id: 1-64 of A-Z a-z 0-9 _ . : -", topic)
            return
        if "origin" in body:
            self._invalid(request_id, "origin: set by the gateway (mqtt), not by a command", topic)
            return
        # Without a decision_id the request_id is the idempotency key: a copy the broker
        # redelivers (QoS 1) is then a duplicate, not a second decision.
        body.setdefault("decision_id", f"mqtt-{request_id}")
        try:
            request = DecisionRequest(**body, origin="mqtt")
        except (ValidationError, TypeError) as exc:
            self._invalid(request_id, first_error(exc), topic)
            return
        try:
            result = await self._decisions.submit(request)
        except TemporarilyUnavailable as exc:  # the sender may send it again, same request_id
            self._count("unavailable")
            self._answer(request_id, {"status": "unavailable", "allowed_actions": [],
                                      "detail": f"not applied, try again: {exc}"})
            return
        self._count(result.status)
        self._answer(request_id, {"status": result.status, "detail": result.record.outcome_detail,
                                  "allowed_actions": result.record.allowed_actions,
                                  "decision": result.record.model_dump(mode="json")})

    def _refuse_retained(self, request_id: str | None, topic: str) -> None:
        self._count("retained_ignored")
        self._log.warning("retained", "retained command ignored", topic=topic,
                          request_id=request_id)
        if request_id is not None:
            self._answer(request_id, {"status": "retained", "allowed_actions": [], "detail": (
                "not applied: commands must be published with retain=false (a retained one "
                "would be applied again at every reconnect); clear it with an empty retained "
                f"message on {topic}")})

    def _invalid(self, request_id: str | None, detail: str, topic: str) -> None:
        self._count("invalid")
        self._log.warning("invalid", "command refused", topic=topic, detail=detail,
                          request_id=request_id)
        if request_id is not None:
            self._answer(request_id, {"status": "invalid", "detail": detail, "allowed_actions": []})

    def _answer(self, request_id: str, body: dict[str, Any]) -> None:
        self._publisher.publish(self._responses + request_id,
                                orjson.dumps({"request_id": request_id, **body}), 1, False)

    def _count(self, outcome: str) -> None:
        self._metrics.commands.labels(outcome).inc()

