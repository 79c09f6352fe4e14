"""The ingest pipeline's ports: what transports hand it, and what it hands on.

Transports (MQTT, HTTP) call a `MessageSink` with raw messages and implement `AckSink`,
which the pipeline calls once the messages' rows are committed. The pipeline commits
through a `ReadingsWriter` (the SQLite buffer). A QoS >= 1 message is identified by an
`AckToken`, one int whose bit layout lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from edge.records import CommitResult, QuarantineRecord, Reading


class AckSink(Protocol):
    """Who gets told, after the commit, that messages are durable."""

    def acknowledge(self, tokens: list[int]) -> None: ...


class MessageSink(Protocol):
    """Where transports put received messages (the ingest pipeline)."""

    def submit(self, source: str, payload: bytes, ack_sink: AckSink | None,
               ack_token: int) -> None: ...


class ReadingsWriter(Protocol):
    """The port through which readings become durable (the SQLite buffer)."""

    async def commit_batch(self, readings: Sequence[Reading],
                           quarantine: Sequence[QuarantineRecord]) -> CommitResult: ...


class PendingMessage(NamedTuple):
    """One message waiting for its batch's commit (no ack before it: guarantee 1)."""

    received_us: int
    source: str  # the MQTT topic, or "http"
    payload: bytes
    ack_sink: AckSink | None  # None: QoS 0, nothing to acknowledge
    ack_token: int


# AckToken layout: | generation (rest) | qos (2 bits) | packet id (16 bits) |
_MID_BITS = 16
_QOS_BITS = 2
_MID_MASK = (1 << _MID_BITS) - 1
_QOS_MASK = (1 << _QOS_BITS) - 1
_GENERATION_SHIFT = _MID_BITS + _QOS_BITS


def pack_ack_token(generation: int, qos: int, mid: int) -> int:
    """One int naming an MQTT message: its connection generation, QoS and packet id."""
    return (generation << _GENERATION_SHIFT) | (qos << _MID_BITS) | mid


def unpack_ack_token(token: int) -> tuple[int, int, int]:
    """(generation, qos, packet id) of a token made by `pack_ack_token`."""
    return token >> _GENERATION_SHIFT, (token >> _MID_BITS) & _QOS_MASK, token & _MID_MASK
