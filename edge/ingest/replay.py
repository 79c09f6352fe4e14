"""QuarantineReplay: after a config fix, send the quarantined messages that now pass again.

A message quarantined as `unknown_sensor` or `unit_mismatch` becomes good data once the
sensor or the unit is configured. Replay re-validates each row with today's settings, by
the codec of its subscription (`auto`, or `mapping`: read through today's mapping, so a
fixed mapping replays and the reasons are the mapping's), and resubmits those that pass
through the pipeline (same path, same durability). Rows of `sparkplug_b` subscriptions are
never replayed: a Sparkplug message means something only in its session (aliases from the
birth of that time, seq order; an old DBIRTH replayed would replace the current one), so
they are counted as `not_replayable: sparkplug` and left as they are. A row is
marked replayed only after its commit, so a replay that dies half way loses nothing, and a
second replay skips what the first did (idempotent). A replayed reading arrives now: its
received_us is the replay's time (the quarantine row keeps the original), so replaying
old rows is not shown as sync lag, which is measured by arrival.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, Field

from edge.errors import PayloadError
from edge.ingest.acks import AwaitedAcks
from edge.ingest.codec_reader import CodecReader
from edge.ingest.codecs import decode_payload
from edge.ingest.ports import MessageSink
from edge.ingest.topics import HTTP_CONTEXT, TopicContext, TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.records import QuarantineEntry
from edge.settings import IngestLimits


class QuarantineSource(Protocol):
    async def unreplayed(self, reason: str | None, limit: int,
                         after_seq: int = 0) -> list[QuarantineEntry]: ...

    async def mark_replayed(self, seqs: Sequence[int], at_us: int) -> None: ...


class ReplayOutcome(BaseModel):
    examined: int = Field(description="Quarantine rows looked at (not yet replayed).")
    replayed: int = Field(description="Rows that pass now: committed again and marked replayed.")
    still_rejected: dict[str, int] = Field(
        default_factory=dict, description="Rows that still fail, by today's reason.")
    not_replayable: dict[str, int] = Field(
        default_factory=dict, description="Rows no replay applies, by why: sparkplug (a "
                                          "Sparkplug message depends on its session).")
    committed: bool = Field(default=True, description="Every replayed row was committed.")
    next_after_seq: int | None = Field(
        default=None, description="Give it as after_seq to go on with the next rows; null: "
                                  "the walk reached the end of the quarantine.")


class QuarantineReplay:
    def __init__(self, sink: MessageSink, quarantine: QuarantineSource, *, mapper: TopicMapper,
                 validator: ReadingValidator, limits: IngestLimits,
                 commit_timeout_s: float) -> None:
        self._sink = sink
        self._quarantine = quarantine
        self._mapper = mapper
        self._validator = validator
        self._limits = limits
        self._codecs = CodecReader(validator, limits, sparkplug=None)
        self._commit_timeout_s = commit_timeout_s
        self._acks = AwaitedAcks()
        self._lock = asyncio.Lock()  # one replay at a time: no row is resubmitted twice

    async def replay(self, reason: str | None, limit: int, after_seq: int = 0) -> ReplayOutcome:
        """Replay up to `limit` rows after `after_seq`; rows that still fail stay for later."""
        async with self._lock:
            rows = await self._quarantine.unreplayed(reason, limit, after_seq)
            passing, still, not_replayable = [], Counter[str](), Counter[str]()
            for row in rows:
                context = self._mapper.context(row.source) if row.transport == "mqtt" \
                    else HTTP_CONTEXT
                if context.codec == "sparkplug_b":
                    not_replayable["sparkplug"] += 1
                    continue
                problem = self._problem(row, context)
                if problem is None:
                    passing.append(row)
                else:
                    still[problem] += 1
            committed = await self._resubmit(passing)
            done = [row.seq for row, ok in zip(passing, committed, strict=True) if ok]
            await self._quarantine.mark_replayed(done, time.time_ns() // 1000)
            return ReplayOutcome(examined=len(rows), replayed=len(done),
                                 still_rejected=dict(still),
                                 not_replayable=dict(not_replayable), committed=all(committed),
                                 next_after_seq=rows[-1].seq if len(rows) == limit else None)

    def _problem(self, row: QuarantineEntry, context: TopicContext) -> str | None:
        """Why the row would be rejected today (arriving now), or None if it passes."""
        now_us = time.time_ns() // 1000
        if context.skip is None and context.codec == "mapping":
            problem = self._codecs.mapping_problem(context, row.payload, now_us)
            return None if problem is None else problem.reason
        try:
            items = decode_payload(row.payload, self._limits.max_payload_bytes,
                                   self._limits.max_readings_per_message)
            for item in items:
                self._validator.validate(item, context, now_us)
        except PayloadError as exc:
            return exc.reason
        return None if context.skip is None else context.skip

    async def _resubmit(self, rows: list[QuarantineEntry]) -> list[bool]:
        waits = []
        for row in rows:
            token, committed = self._acks.register()
            self._sink.submit(row.source, row.payload, self._acks, token, replayed=True,
                              transport="http" if row.transport == "http" else "mqtt")
            waits.append((token, committed))
        results = []
        for token, committed in waits:
            try:
                await asyncio.wait_for(asyncio.shield(committed), self._commit_timeout_s)
                results.append(True)
            except TimeoutError:
                self._acks.forget(token)
                results.append(False)
        return results
