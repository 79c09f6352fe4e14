"""HttpSource: the HTTP ingestion transport (`POST /api/v1/ingestion/sensor-reading/`).

A request's body goes through the same pipeline as an MQTT message (validation, quarantine,
group commit); the request waits on its own ack token and is answered only after the
commit (guarantee 1), or with `committed: false` when the commit takes longer than
`http.commit_timeout_s`.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field

from edge.errors import PayloadError
from edge.ingest.acks import AwaitedAcks
from edge.ingest.codecs import decode_payload
from edge.ingest.ports import HTTP_SOURCE, MessageSink
from edge.ingest.topics import TopicContext
from edge.ingest.validation import ReadingValidator
from edge.settings import IngestLimits

_HTTP_CONTEXT = TopicContext(HTTP_SOURCE, None, None)


class Rejection(BaseModel):
    index: int | None = Field(description="Position in a JSON array; null: the whole body.")
    reason: str
    detail: str


class IngestOutcome(BaseModel):
    """The answer to one ingestion request."""

    committed: bool = Field(description="The readings and quarantine rows are durable.")
    accepted: int = 0
    rejected: list[Rejection] = Field(default_factory=list)


class HttpSource:
    """Submits request bodies to the pipeline and answers after their commit."""

    def __init__(self, sink: MessageSink, validator: ReadingValidator, limits: IngestLimits,
                 commit_timeout_s: float) -> None:
        self._sink = sink
        self._validator = validator
        self._limits = limits
        self._commit_timeout_s = commit_timeout_s
        self._acks = AwaitedAcks()

    async def ingest(self, body: bytes) -> IngestOutcome:
        """Same path as MQTT (validation, quarantine, durable commit); answers after the commit."""
        outcome = self._preview(body)
        token, committed = self._acks.register()
        self._sink.submit(HTTP_SOURCE, body, self._acks, token)
        try:
            await asyncio.wait_for(asyncio.shield(committed), self._commit_timeout_s)
        except TimeoutError:
            self._acks.forget(token)
            outcome.committed = False
        return outcome

    def _preview(self, body: bytes) -> IngestOutcome:
        # The pipeline validates again and quarantines; this only tells the client.
        now_us = time.time_ns() // 1000
        outcome = IngestOutcome(committed=True)
        try:
            items = decode_payload(body, self._limits.max_payload_bytes,
                                   self._limits.max_readings_per_message)
        except PayloadError as exc:
            outcome.rejected.append(Rejection(index=None, reason=exc.reason, detail=exc.detail))
            return outcome
        for index, item in enumerate(items):
            try:
                self._validator.validate(item, _HTTP_CONTEXT, now_us)
                outcome.accepted += 1
            except PayloadError as exc:
                outcome.rejected.append(Rejection(index=index, reason=exc.reason, detail=exc.detail))
        return outcome
