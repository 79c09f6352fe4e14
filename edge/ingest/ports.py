"""The ingest pipeline's ports: what transports hand it, and what it hands on.

Transports (MQTT, HTTP) call a `MessageSink` with raw messages and implement `AckSink`,
which the pipeline calls once the messages' rows are committed. The pipeline commits
through a `ReadingsWriter` (the SQLite buffer). A QoS >= 1 message is identified by an
`AckToken`, one int whose bit layout lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, NewType, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from edge.records import (
    NO_EXTRAS,
    BatchExtras,
    CommitResult,
    QuarantineRecord,
    Reading,
    RetainedTaken,
    SparkplugBirth,
)

# Names one message for its transport's acknowledgement; opaque to the pipeline. For MQTT it
# packs the connection generation, QoS and packet id (pack_ack_token below).
AckToken = NewType("AckToken", int)


# The source name of messages from HTTP ingestion (quarantine rows, metric labels). It is
# told apart from an MQTT topic of the same name by the message's transport.
HTTP_SOURCE = "http"
IngestTransport = Literal["mqtt", "http"]


class AckSink(Protocol):
    """Who gets told, after the commit, that messages are durable."""

    def acknowledge(self, tokens: list[AckToken]) -> None: ...


class Rejected(NamedTuple):
    """One refused part of a message: its `position` in a JSON array (None: the whole message)."""

    position: int | None
    reason: str
    detail: str


@dataclass(slots=True)
class MessageReceipt:
    """What the commit did with one message's readings."""

    accepted: int = 0  # stored, or an exact repeat of a stored reading (durable either way)
    rejected: list[Rejected] = field(default_factory=list)  # quarantined, with the reason


@runtime_checkable
class ReceiptSink(AckSink, Protocol):
    """An AckSink that answers a client (HTTP): it gets, after the commit, a receipt per
    message built from the commit's result, instead of `acknowledge`."""

    def settle(self, receipts: dict[AckToken, MessageReceipt]) -> None: ...


class MessageSink(Protocol):
    """Where transports put received messages (the ingest pipeline)."""

    def submit(self, source: str, payload: bytes, ack_sink: AckSink | None,
               ack_token: AckToken, *, retained: bool = False,
               transport: IngestTransport = "mqtt", replayed: bool = False) -> None:
        """Take one message (an MQTT topic's, unless `transport` says otherwise); it arrives
        now. `replayed`: a quarantine row sent again, not a delivery from the broker."""


class ReadingsWriter(Protocol):
    """The port through which readings become durable (the SQLite buffer)."""

    async def commit_batch(self, readings: Sequence[Reading],
                           quarantine: Sequence[QuarantineRecord],
                           retained: Sequence[RetainedTaken] = (),
                           extras: BatchExtras = NO_EXTRAS) -> CommitResult: ...

    async def sparkplug_births(self) -> list[SparkplugBirth]:
        """The last birth of every Sparkplug node and device."""

    async def retained_taken(self, since_us: int, limit: int) -> dict[str, RetainedTaken]:
        """topic -> what was last taken from it (survives restarts), for topics seen since
        `since_us`, at most `limit`; the rest is forgotten."""

    async def recent_sensors(self, since_received_us: int, limit: int) -> list[tuple[str, int]]:
        """(sensor_id, last received_us) seen since then, most recent first (seeds the cap)."""


class PipelineHealth(BaseModel):
    """How the ingest pipeline is doing (`/api/v1/pipeline`): the busiest part, and whether it moves."""

    state: Literal["running", "stalled", "stopped"] = Field(
        description="stalled: a commit has not returned within systemd.watchdog_stall_s.")
    messages: int
    batches: int
    readings: int = Field(description="Readings committed (duplicates not counted).")
    quarantined: int
    duplicates: int
    commit_errors: int
    pending: int = Field(description="Messages waiting for their batch's commit.")
    last_commit_age_s: float | None
    announce_overflows: int = Field(
        description="Batch events an agent had no room for (it catches up from the buffer).")
    last_seq: int = Field(description="Buffer sequence number of the newest committed reading.")


class PendingMessage(NamedTuple):
    """One message waiting for its batch's commit (no ack before it: guarantee 1)."""

    received_us: int
    source: str  # the MQTT topic, or "http"
    payload: bytes
    ack_sink: AckSink | None  # None: QoS 0, nothing to acknowledge
    ack_token: AckToken
    retained: bool  # the broker sent it from its retained store (on subscribe)
    transport: IngestTransport
    replayed: bool  # a quarantine row sent again after a config fix


# AckToken layout: | generation (rest) | qos (2 bits) | packet id (16 bits) |
_MID_BITS = 16
_QOS_BITS = 2
_MID_MASK = (1 << _MID_BITS) - 1
_QOS_MASK = (1 << _QOS_BITS) - 1
_GENERATION_SHIFT = _MID_BITS + _QOS_BITS


def pack_ack_token(generation: int, qos: int, mid: int) -> AckToken:
    """One int naming an MQTT message: its connection generation, QoS and packet id."""
    return AckToken((generation << _GENERATION_SHIFT) | (qos << _MID_BITS) | mid)


def unpack_ack_token(token: AckToken) -> tuple[int, int, int]:
    """(generation, qos, packet id) of a token made by `pack_ack_token`."""
    return token >> _GENERATION_SHIFT, (token >> _MID_BITS) & _QOS_MASK, token & _MID_MASK


def acks_for_generation(tokens: list[AckToken], generation: int) -> list[tuple[int, int]]:
    """(packet id, qos) of the tokens from connection `generation` (one loop: hot path)."""
    return [(token & _MID_MASK, (token >> _MID_BITS) & _QOS_MASK) for token in tokens
            if token >> _GENERATION_SHIFT == generation]
