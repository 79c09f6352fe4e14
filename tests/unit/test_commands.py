"""MQTT commands: a retained command is never applied (live or resent at a subscribe), it is
answered `retained` and counted; an empty message (clearing one) is ignored quietly."""

from __future__ import annotations

import asyncio
import json

from edge.maintenance.decisions import DecisionRequest, DecisionResult
from edge.metrics import GatewayMetrics
from edge.operator.commands import CommandHandler


class Decisions:
    def __init__(self) -> None:
        self.submitted: list[DecisionRequest] = []

    async def submit(self, request: DecisionRequest) -> DecisionResult:
        self.submitted.append(request)
        raise AssertionError("a retained command must not be applied")


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, json.loads(payload)))


class Acks:
    def __init__(self) -> None:
        self.tokens: list[object] = []

    def acknowledge(self, tokens: list[object]) -> None:
        self.tokens += tokens


async def _handle(*messages: tuple[bytes, bool]) -> tuple[Decisions, Publisher, Acks, GatewayMetrics]:
    decisions, publisher, acks, metrics = Decisions(), Publisher(), Acks(), GatewayMetrics()
    handler = CommandHandler(decisions, publisher, "edge/gw", metrics)
    runner = asyncio.create_task(handler.run())
    for k, (payload, retained) in enumerate(messages):
        handler.submit("edge/gw/commands/decisions", payload, acks, k, retained=retained)
    while len(acks.tokens) < len(messages):
        await asyncio.sleep(0.01)
    runner.cancel()
    return decisions, publisher, acks, metrics


async def test_a_retained_command_is_answered_counted_acknowledged_and_never_applied() -> None:
    command = json.dumps({"request_id": "r-1", "target_kind": "task", "target_id": "t1",
                          "action": "cancel", "actor": "hmi"}).encode()
    decisions, publisher, acks, metrics = await _handle((command, True), (b"{not json", True))
    assert decisions.submitted == []
    [(topic, answer)] = publisher.sent  # the unreadable one has no request id to answer
    assert topic == "edge/gw/responses/r-1" and answer["status"] == "retained"
    assert metrics.commands.labels("retained_ignored")._value.get() == 2
    assert acks.tokens == [0, 1], "acknowledged: the broker must not redeliver it"


async def test_an_empty_message_clearing_a_retained_command_is_ignored_quietly() -> None:
    decisions, publisher, _, metrics = await _handle((b"", True), (b"", False))
    assert decisions.submitted == [] and publisher.sent == []
    assert metrics.commands.labels("empty")._value.get() == 2
    assert metrics.commands.labels("invalid")._value.get() == 0


class Recording:
    """Submitted decisions, answered applied (the first time an id is seen) or duplicate."""

    def __init__(self) -> None:
        self.submitted: list[DecisionRequest] = []

    async def submit(self, request: DecisionRequest) -> DecisionResult:
        from datetime import UTC, datetime

        from edge.maintenance.decisions import decision_record

        seen = any(r.decision_id == request.decision_id for r in self.submitted)
        self.submitted.append(request)
        record = decision_record(request, datetime.now(UTC), "applied", "done")
        return DecisionResult("duplicate" if seen else "applied", record)


async def test_a_redelivered_command_without_decision_id_is_a_duplicate_and_origin_is_refused() -> None:
    """Without a decision_id a redelivered copy was applied again; `origin` in a command gave a
    Python-internals error (issue 12 review F14, M-list)."""
    decisions, publisher, acks = Recording(), Publisher(), Acks()
    handler = CommandHandler(decisions, publisher, "edge/gw", GatewayMetrics())
    runner = asyncio.create_task(handler.run())
    command = {"request_id": "r-7", "target_kind": "task", "target_id": "t1",
               "action": "start", "actor": "hmi"}
    for k, body in enumerate((command, command, {**command, "request_id": "r-8",
                                                  "origin": "central"})):
        handler.submit("edge/gw/commands/decisions", json.dumps(body).encode(), acks, k)
    while len(acks.tokens) < 3:
        await asyncio.sleep(0.01)
    runner.cancel()
    assert [r.decision_id for r in decisions.submitted] == ["mqtt-r-7", "mqtt-r-7"]
    assert [answer["status"] for _, answer in publisher.sent] == ["applied", "duplicate", "invalid"]
    assert "origin" in str(publisher.sent[2][1]["detail"])


async def test_a_command_meeting_a_part_being_brought_back_is_answered_unavailable() -> None:
    from edge.errors import TemporarilyUnavailable

    class Unavailable(Decisions):
        async def submit(self, request: DecisionRequest) -> DecisionResult:
            raise TemporarilyUnavailable("the detection worker is not running")

    publisher, acks, metrics = Publisher(), Acks(), GatewayMetrics()
    handler = CommandHandler(Unavailable(), publisher, "edge/gw", metrics)
    runner = asyncio.create_task(handler.run())
    command = json.dumps({"request_id": "r-9", "target_kind": "alert", "target_id": "a1",
                          "action": "acknowledge", "actor": "hmi"}).encode()
    handler.submit("edge/gw/commands/decisions", command, acks, 0)
    while not acks.tokens:
        await asyncio.sleep(0.01)
    runner.cancel()
    [(topic, answer)] = publisher.sent
    assert topic == "edge/gw/responses/r-9" and answer["status"] == "unavailable"
    assert "try again" in str(answer["detail"])
    assert metrics.commands.labels("unavailable")._value.get() == 1
    assert metrics.commands.labels("error")._value.get() == 0
