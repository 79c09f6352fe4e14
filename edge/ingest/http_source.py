"""HttpSource: the HTTP ingestion transport (`POST /api/v1/ingestion/sensor-reading/`).

A request's body goes through the same pipeline as an MQTT message (validation, quarantine,
group commit); the request waits on its own ack token and is answered only after the
commit (guarantee 1), or with `committed: false` when the commit takes longer than
`http.commit_timeout_s`.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from edge.ingest.acks import AwaitedAcks
from edge.ingest.ports import HTTP_SOURCE, MessageReceipt, MessageSink


class Rejection(BaseModel):
    index: int | None = Field(description="Position in a JSON array; null: the whole body.")
    reason: str
    detail: str


class IngestOutcome(BaseModel):
    """The answer to one ingestion request."""

    committed: bool = Field(description="The readings and quarantine rows are durable.")
    accepted: int = Field(default=0, description="Readings stored (or exact repeats of stored "
                                                 "ones): what the commit did, not a preview.")
    rejected: list[Rejection] = Field(default_factory=list)

    @classmethod
    def from_receipt(cls, receipt: MessageReceipt) -> IngestOutcome:
        return cls(committed=True, accepted=receipt.accepted,
                   rejected=[Rejection(index=r.position, reason=r.reason, detail=r.detail)
                             for r in receipt.rejected])


class HttpSource:
    """Submits request bodies to the pipeline and answers from their commit's receipt."""

    def __init__(self, sink: MessageSink, commit_timeout_s: float) -> None:
        self._sink = sink
        self._commit_timeout_s = commit_timeout_s
        self._acks = AwaitedAcks()

    async def ingest(self, body: bytes) -> IngestOutcome:
        """Same path as MQTT (validation, quarantine, durable commit); answers after the commit
        with what the commit did (a conflicting duplicate is rejected, not accepted)."""
        token, committed = self._acks.register()
        self._sink.submit(HTTP_SOURCE, body, self._acks, token, transport="http")
        try:
            receipt = await asyncio.wait_for(asyncio.shield(committed), self._commit_timeout_s)
        except TimeoutError:
            self._acks.forget(token)
            return IngestOutcome(committed=False)
        return IngestOutcome.from_receipt(receipt)
