"""IngestPipeline: raw messages in, committed and acknowledged readings out.

submit -> validate -> commit -> acknowledge -> announce.

Consumes: raw messages from the transports via `submit` (MQTT, HTTP), batched.
Announces: one `DataProcessedEvent` per committed batch, with `publish_nowait`: commits and
acks never wait on an agent (a full agent queue drops the event for that agent, counted,
and the agent catches up from the buffer; tests/unit/test_slow_agent.py).
Config: `ingest.*` (limits), `sensors` (known sensors, units, assets), `buffer.max_batch_rows`,
`buffer.max_batch_delay_ms`, `buffer.max_pending_messages`.

The hot path makes no task, future or pydantic model per message: `submit` appends a
`PendingMessage`, and one loop commits the whole batch before acknowledging it (group
commit). Rejected messages become quarantine rows in the same transaction, so they are
acknowledged too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from typing import TypeVar

import orjson

from edge.backoff import Backoff
from edge.bus import EventBus
from edge.errors import BufferWriteError, PayloadError
from edge.events import DataProcessedEvent, NodeStateEvent
from edge.ingest.codec_reader import CodecReader
from edge.ingest.codecs import decode_payload
from edge.ingest.ports import (
    AckSink,
    AckToken,
    IngestTransport,
    PendingMessage,
    PipelineHealth,
    ReadingsWriter,
    ReceiptSink,
)
from edge.ingest.receipts import MessageTrace, settle
from edge.ingest.retained import RetainedMemory
from edge.ingest.sparkplug.codec import SparkplugCodec
from edge.ingest.sparkplug.session import NodeEvent
from edge.ingest.topics import HTTP_CONTEXT, TopicContext, TopicMapper
from edge.ingest.validation import ReadingValidator
from edge.logs import RateLimitedLog
from edge.metrics import GatewayMetrics
from edge.records import (
    FLAG_CLOCK_SUSPECT,
    FLAG_RETAINED,
    NO_EXTRAS,
    BatchExtras,
    CatalogRecord,
    CommitResult,
    QuarantineRecord,
    Reading,
    RetainedTaken,
    SparkplugBirth,
    StateReading,
)
from edge.settings import BufferSettings, IngestLimits

log = logging.getLogger(__name__)

SOURCE_NAME = "ingest-pipeline"
_NO_ROW_LIMIT = 1 << 62
_Origin = tuple[int, str, IngestTransport]  # a message's arrival, source name and transport
# Why messages are acknowledged without storing anything (edge_messages_skipped_total).
_SKIPPED = {
    "retained_seen": "messages skipped: a retained copy already taken",
    "own_notification": "messages skipped: the gateway's own notification topics, not data",
    "gateway_notification": "messages skipped: another gateway's notification topics, not data",
    "sparkplug_command": "messages skipped: Sparkplug NCMD/DCMD (commands to nodes), not data",
    "sparkplug_state": "messages skipped: Sparkplug STATE of host applications, not data",
    "sparkplug_stale_death": "messages skipped: a Sparkplug death of an earlier session",
    "sparkplug_birth_copy": "messages skipped: a copy of the last Sparkplug birth (retained "
                            "or redelivered), not a new session",
}
_SPARKPLUG_EVENTS = {
    "seq_gap": "sparkplug seq gap (messages lost or out of order): rebirth asked if enabled",
    "transient_skipped": "sparkplug is_transient metrics not stored",
}


_Row = TypeVar("_Row", Reading, StateReading)


def _flag(rows: list[_Row], first: int, flag: int) -> None:
    """Set `flag` on rows[first:] (rare paths only: it rebuilds the tuples)."""
    for index in range(first, len(rows)):
        rows[index] = rows[index]._replace(flags=rows[index].flags | flag)


class _ValidatedBatch:
    __slots__ = ("acks", "births", "catalog", "events", "first_received_us", "quarantine",
                 "readings", "rebirths", "rejected", "retained", "size", "skipped",
                 "skipped_topics", "states", "traces")

    def __init__(self, size: int, first_received_us: int) -> None:
        self.size = size
        self.first_received_us = first_received_us
        self.readings: list[Reading] = []
        self.quarantine: list[QuarantineRecord] = []
        self.acks: dict[AckSink, list[AckToken]] = {}
        self.rejected: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.retained: list[RetainedTaken] = []
        self.skipped_topics: dict[str, str] = {}  # reason -> one topic, for the log line
        self.traces: dict[AckSink, list[MessageTrace]] = {}  # sinks that want receipts
        # What the mapping and Sparkplug B codecs add (committed in the same transaction).
        self.states: list[StateReading] = []
        self.catalog: list[CatalogRecord] = []
        self.births: list[SparkplugBirth] = []
        self.events: list[NodeEvent] = []
        self.rebirths: set[tuple[str, str]] = set()

    @property
    def extras(self) -> BatchExtras:
        return BatchExtras(self.states, self.catalog, self.births) \
            if self.states or self.catalog or self.births else NO_EXTRAS

    def skip(self, reason: str, topic: str) -> None:
        """A message that is not data: acknowledged, counted and logged, never stored."""
        self.skipped[reason] += 1
        self.skipped_topics.setdefault(reason, topic)


class IngestPipeline:
    """Turns transport messages into committed readings and quarantine rows."""

    def __init__(self, bus: EventBus, metrics: GatewayMetrics, *, writer: ReadingsWriter,
                 mapper: TopicMapper, validator: ReadingValidator, limits: IngestLimits,
                 batching: BufferSettings, sparkplug: SparkplugCodec | None = None) -> None:
        self._codecs = CodecReader(validator, limits, sparkplug)
        self._bus = bus
        self._metrics = metrics
        self._writer = writer
        self._mapper = mapper
        self._validator = validator
        self._limits = limits
        self._max_batch_rows = batching.max_batch_rows
        self._max_batch_delay_s = batching.max_batch_delay_ms / 1000
        self._max_pending = batching.max_pending_messages
        self._pending: list[PendingMessage] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._running = False
        self._rejections = RateLimitedLog(log)
        self._counts: Counter[str] = Counter()
        self._last_commit_monotonic: float | None = None
        self._last_attempt_monotonic = time.monotonic()
        self._commit_started: float | None = None
        self._retained = RetainedMemory(limits.max_sensors, limits.sensor_idle_release_s)
        self.last_seq = 0

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def progressing(self, stall_s: float) -> bool:
        """False when a commit has not returned for `stall_s`, or messages wait that long."""
        now = time.monotonic()
        if self._commit_started is not None:
            return now - self._commit_started < stall_s
        return not self._pending or now - self._last_attempt_monotonic < stall_s

    def health(self, stall_s: float) -> PipelineHealth:
        counts = self._counts
        last = self._last_commit_monotonic
        state = "stopped" if not self._running else (
            "running" if self.progressing(stall_s) else "stalled")
        return PipelineHealth(
            state=state, messages=counts["messages"], batches=counts["batches"],
            readings=counts["readings"], quarantined=counts["quarantined"],
            duplicates=counts["duplicates"], commit_errors=counts["commit_errors"],
            pending=len(self._pending),
            last_commit_age_s=None if last is None else round(time.monotonic() - last, 3),
            announce_overflows=counts["announce_overflows"], last_seq=self.last_seq)

    def submit(self, source: str, payload: bytes, ack_sink: AckSink | None,
               ack_token: AckToken, *, retained: bool = False,
               transport: IngestTransport = "mqtt", replayed: bool = False) -> None:
        """Take one message from a transport; never blocks, never raises."""
        pending = self._pending
        if ack_sink is None and len(pending) >= self._max_pending:
            # Only QoS 0 can be refused here: QoS>=1 is bounded by the broker's in-flight window.
            self._metrics.messages_dropped.labels("backpressure").inc()
            self._rejections.warning("backpressure", "dropping QoS 0 messages: pipeline full")
            return
        if not pending:
            self._wakeup.set()
        # tuple.__new__ builds the NamedTuple without a Python-level call (measured: the
        # generated __new__ cost ~0.2 us a message).
        pending.append(tuple.__new__(PendingMessage, (time.time_ns() // 1000, source, payload,
                                                      ack_sink, ack_token, retained, transport,
                                                      replayed)))

    async def run(self) -> None:
        """Commit batches as messages arrive, until `drain` is called and nothing is left.

        Two batches overlap: while one commits on the writer thread, the next is validated
        here. Only one batch is ever committing, so acknowledgements follow arrival order.
        """
        previous: asyncio.Task[None] | None = None
        await self._retained.load(self._writer, time.time_ns() // 1000)
        await self._seed_sensor_registry()
        await self._restore_births()
        self._running = True
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._max_batch_delay_s and len(self._pending) < self._max_batch_rows \
                        and not self._closing:
                    await asyncio.sleep(self._max_batch_delay_s)
                while self._pending:
                    # max_batch_rows counts rows (a Sparkplug or mapped message holds many):
                    # validation stops at the message that reaches it. Small transactions
                    # keep the two batches overlapping (one validated while the other
                    # commits); one huge one would leave this loop idle while it commits.
                    validated = self._validate(self._pending, self._max_batch_rows)
                    batch = self._pending[:validated.size]
                    del self._pending[:validated.size]
                    if previous is not None and not previous.done():
                        await asyncio.wait({previous})  # one commit at a time keeps ack order
                    previous = asyncio.ensure_future(self._finish(validated, batch))
                if self._closing:
                    if previous is not None:
                        await previous
                    await self._write_retained_memory()
                    return
        finally:
            self._running = False
            if previous is not None and not previous.done():
                previous.cancel()
            self._rejections.flush()

    async def _write_retained_memory(self) -> None:
        """At the end: the live updates of the retained memory not yet written (best effort)."""
        rest = self._retained.due(time.time_ns() // 1000, final=True)
        if rest:
            try:
                await self._writer.commit_batch([], [], rest)
            except BufferWriteError as exc:  # a retained copy may be taken once more: flagged
                log.warning("retained memory not saved", extra={"error": str(exc)})

    async def _seed_sensor_registry(self) -> None:
        """Known sensors keep their ingest.max_sensors places across a restart."""
        registry = self._validator.registry
        if registry is not None:
            since_us = time.time_ns() // 1000 - registry.idle_release_us
            registry.seed(await self._writer.recent_sensors(since_us, registry.max_sensors))
            self._metrics.sensors_tracked.set(len(registry))

    async def _restore_births(self) -> None:
        """Sparkplug aliases decode after a restart: the last births are in the buffer."""
        codec = self._codecs.sparkplug
        if codec is not None:
            births = await self._writer.sparkplug_births()
            restored = codec.restore(births)
            if births:
                log.info("sparkplug births restored", extra={"births": len(births),
                                                             "usable": restored})

    async def drain(self) -> None:
        """Stop waiting for more: commit and acknowledge what is pending, then end `run`."""
        self._closing = True
        self._wakeup.set()

    async def _finish(self, batch: _ValidatedBatch, messages: list[PendingMessage]) -> None:
        try:
            result = await self._commit(batch)
        except Exception as exc:  # not a buffer fault (those retry in _commit): unstorable
            await self._finish_one_by_one(messages, exc)
            return
        self._after_commit(batch, result)

    async def _finish_one_by_one(self, messages: list[PendingMessage], exc: Exception) -> None:
        """A batch the buffer would not take for a reason retrying cannot fix (a value it
        cannot encode): commit its messages one at a time, and quarantine (`unstorable`) the
        one that fails, so one message costs itself and never its neighbours."""
        self._counts["commit_errors"] += 1
        self._metrics.buffer_commit_errors.inc()
        self._rejections.error("unstorable", "batch not storable: committing its messages one "
                               "by one", error=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc(limit=-4), batch=len(messages))
        for message in messages:
            single = self._validate([message])
            try:
                result = await self._commit(single)
            except Exception as one:
                single = self._unstorable(message, one)
                result = await self._commit(single)
            self._after_commit(single, result)

    def _unstorable(self, message: PendingMessage, exc: Exception) -> _ValidatedBatch:
        """The message as one quarantine row (`unstorable`), acknowledged like any other."""
        batch = _ValidatedBatch(1, message.received_us)
        error = PayloadError("unstorable", f"{type(exc).__name__}: {exc}"[:500])
        sink = message.ack_sink
        if sink is not None:
            batch.acks[sink] = [message.ack_token]
            if isinstance(sink, ReceiptSink):
                trace = MessageTrace(message.ack_token, 0)
                trace.reject(None, error)
                batch.traces[sink] = [trace]
        self._reject(batch, (message.received_us, message.source, message.transport),
                     message.payload[: self._limits.max_payload_bytes], error)
        return batch

    def _after_commit(self, batch: _ValidatedBatch, result: CommitResult) -> None:
        conflicts = dict(result.conflicted) if batch.traces else {}
        for sink, tokens in batch.acks.items():
            traces = batch.traces.get(sink)
            if traces is not None and isinstance(sink, ReceiptSink):
                sink.settle(settle(traces, conflicts))  # answered from the commit's result
            else:
                sink.acknowledge(tokens)  # ack-after-commit: tests/unit/test_ingest_pipeline.py
        self._record(batch, result)
        if batch.readings:
            event = DataProcessedEvent(
                source=SOURCE_NAME, readings=tuple(batch.readings),
                rejected_count=len(batch.quarantine), first_seq=result.first_seq,
                last_seq=result.last_seq)
            self._counts["announce_overflows"] += self._bus.publish_nowait(event)
        if batch.events or batch.rebirths:
            self._after_sparkplug(batch)

    def _after_sparkplug(self, batch: _ValidatedBatch) -> None:
        """Node events (once their births and deaths are stored) and rebirth requests."""
        metrics = self._metrics
        for node_event in batch.events:
            metrics.sparkplug_events.labels(f"node_{node_event.state}").inc()
            self._counts["announce_overflows"] += self._bus.publish_nowait(NodeStateEvent(
                source=SOURCE_NAME, scope=node_event.scope, source_id=node_event.source_id,
                state=node_event.state,
                sensor_ids=node_event.sensor_ids, reason=node_event.reason,
                at=datetime.now(UTC)))
        codec = self._codecs.sparkplug
        for group, node in batch.rebirths:
            if codec is not None and codec.request_rebirth(group, node):
                metrics.sparkplug_events.labels("rebirth_requested").inc()

    def _validate(self, messages: list[PendingMessage],
                  max_rows: int = _NO_ROW_LIMIT) -> _ValidatedBatch:
        """The first messages, up to the one that brings the batch to `max_rows` rows
        (readings, states, quarantine rows) or messages (at least one message); `size` says
        how many were taken."""
        batch = _ValidatedBatch(len(messages), messages[0].received_us)
        context_of = self._mapper.context
        received_by_subscription: Counter[str] = Counter()
        last_sink: AckSink | None = None
        last_tokens: list[AckToken] = []
        last_traces: list[MessageTrace] | None = None
        retained_memory = self._retained
        for taken, (received_us, source, payload, ack_sink, token, retained, transport,
                    replayed) in enumerate(messages):
            # Rows of every kind, and messages (skipped ones write nothing but still wait).
            if taken >= max_rows or \
                    len(batch.readings) + len(batch.states) + len(batch.quarantine) >= max_rows:
                batch.size = taken
                break
            trace = None
            if ack_sink is not None:
                if ack_sink is not last_sink:
                    last_sink, last_tokens = ack_sink, batch.acks.setdefault(ack_sink, [])
                    last_traces = batch.traces.setdefault(ack_sink, []) \
                        if isinstance(ack_sink, ReceiptSink) else None
                last_tokens.append(token)
                if last_traces is not None:
                    trace = MessageTrace(token, len(batch.readings))
                    last_traces.append(trace)
            context = context_of(source) if transport == "mqtt" else HTTP_CONTEXT
            received_by_subscription[context.subscription] += 1
            if context.skip is not None:
                batch.skip(context.skip, source)
                continue
            if not replayed and (retained or (transport == "mqtt" and source in retained_memory)) \
                    and retained_memory.taken_before(source, payload, received_us, retained,
                                                     batch.retained):
                batch.skip("retained_seen", source)
                continue
            first, first_state = len(batch.readings), len(batch.states)
            try:
                self._take(batch, (received_us, source, transport), payload, context=context,
                           trace=trace)
            except Exception as exc:  # a decoder bug must cost one message, never the daemon
                self._undecodable(batch, (received_us, source, transport), payload, exc,
                                  first_reading=first, trace=trace)
                continue
            if retained:
                _flag(batch.readings, first, FLAG_RETAINED)
                _flag(batch.states, first_state, FLAG_RETAINED)
        for subscription, count in received_by_subscription.items():
            self._metrics.messages_received.labels(subscription).inc(count)
        batch.retained += retained_memory.due(messages[batch.size - 1].received_us)
        return batch

    def _take(self, batch: _ValidatedBatch, origin: _Origin, payload: bytes, *,
              context: TopicContext, trace: MessageTrace | None) -> None:
        """Decode and validate one message into the batch (readings or quarantine rows)."""
        received_us = origin[0]
        if context.codec != "auto":
            self._take_codec(batch, origin, payload, context)
            return
        limits = self._limits
        try:
            items = decode_payload(payload, limits.max_payload_bytes,
                                   limits.max_readings_per_message)
        except PayloadError as exc:
            self._reject(batch, origin, payload[: limits.max_payload_bytes], exc)
            if trace is not None:
                trace.reject(None, exc)
            return
        validate = self._validator.validate
        readings = batch.readings
        for index, element in enumerate(items):
            try:
                readings.append(validate(element, context, received_us))
            except PayloadError as exc:
                # An element of an array is kept as a one-element array: a replay must read it
                # as it was read (a bare 1 alone would be a valid reading, [1] is not).
                raw = payload if len(items) == 1 else orjson.dumps([element])
                self._reject(batch, origin, raw, exc)
                if trace is not None:
                    trace.reject(index, exc)
            else:
                if trace is not None:
                    trace.elements.append(index)

    def _take_codec(self, batch: _ValidatedBatch, origin: _Origin, payload: bytes,
                    context: TopicContext) -> None:
        received_us, source, _ = origin
        out = self._codecs.read(context, source, payload, received_us)
        if out.skip is not None:
            batch.skip(out.skip, source)
            return
        batch.readings += out.readings
        batch.states += out.states
        batch.catalog += out.catalog
        batch.births += out.births
        batch.events += out.events
        if out.rebirth is not None:
            batch.rebirths.add(out.rebirth)
        for event, count in out.counts.items():
            name = event.removeprefix("sparkplug_")
            self._metrics.sparkplug_events.labels(name).inc(count)
            self._rejections.info(f"sparkplug:{name}", _SPARKPLUG_EVENTS[name], topic=source,
                                  count=count)
        if out.problem is not None:  # within its limit (a birth's is larger) unless too large
            kept = payload[: self._limits.max_payload_bytes] \
                if out.problem.reason == "payload_too_large" else payload
            self._reject(batch, origin, kept, out.problem)

    def _undecodable(self, batch: _ValidatedBatch, origin: _Origin, payload: bytes,
                     exc: Exception, *, first_reading: int,
                     trace: MessageTrace | None) -> None:
        """An unexpected error while reading one message: what it added is taken back and the
        message is quarantined as `decode_error` (its traceback logged, rate-limited)."""
        del batch.readings[first_reading:]
        self._rejections.error("decode_error", "message could not be decoded (a bug: please "
                               "report it with the quarantined payload)",
                               error=f"{type(exc).__name__}: {exc}", topic=origin[1],
                               traceback=traceback.format_exc(limit=-4))
        error = PayloadError("decode_error", f"{type(exc).__name__}: {exc}"[:500])
        self._reject(batch, origin, payload[: self._limits.max_payload_bytes], error,
                     log_it=False)
        if trace is not None:
            trace.elements.clear()
            trace.reject(None, error)

    def _reject(self, batch: _ValidatedBatch, origin: _Origin, payload: bytes,
                error: PayloadError, *, log_it: bool = True) -> None:
        received_us, source, transport = origin
        batch.quarantine.append(QuarantineRecord(received_us, source, payload, error.reason,
                                                 error.detail, transport))
        batch.rejected[error.reason] += 1
        if log_it:
            self._rejections.warning(error.reason, "message quarantined",
                                     reason=error.reason, detail=error.detail, topic=source)

    async def _commit(self, batch: _ValidatedBatch) -> CommitResult:
        """Commit, retrying with backoff until it works: nothing is acked before that."""
        backoff = Backoff(0.05, 5.0)
        while True:
            self._commit_started = time.monotonic()
            try:
                extras = batch.extras
                if extras:  # only the codecs that make them pass them on
                    return await self._writer.commit_batch(batch.readings, batch.quarantine,
                                                           batch.retained, extras)
                return await self._writer.commit_batch(batch.readings, batch.quarantine,
                                                       batch.retained)
            except BufferWriteError as exc:
                self._metrics.buffer_commit_errors.inc()
                self._counts["commit_errors"] += 1
                self._rejections.warning("commit", "buffer commit failed; not acknowledging",
                                         error=str(exc), batch=batch.size)
                await asyncio.sleep(backoff.next_delay_s())
            finally:
                self._last_attempt_monotonic = time.monotonic()
                self._commit_started = None

    def _record(self, batch: _ValidatedBatch, result: CommitResult) -> None:
        metrics = self._metrics
        suspect = sum(1 for reading in batch.readings if reading.flags & FLAG_CLOCK_SUSPECT)
        if suspect:
            metrics.readings_clock_suspect.inc(suspect)
            self._rejections.warning("clock_suspect", "readings stamped before ingest.min_reading_time "
                                     "or older than ingest.max_reading_age_s: stored, flagged "
                                     "clock_suspect, not judged", readings=suspect)
        metrics.readings_accepted.inc(result.inserted)
        if result.states_inserted:
            metrics.states_accepted.inc(result.states_inserted)
        duplicates = result.duplicates + result.states_duplicates  # states repeat too
        if duplicates:
            metrics.readings_duplicate.inc(duplicates)
        for reason, count in batch.rejected.items():
            metrics.readings_rejected.labels(reason).inc(count)
        if result.conflicts:
            metrics.readings_rejected.labels("conflicting_duplicate").inc(result.conflicts)
            self._rejections.warning("conflicting_duplicate", "readings quarantined: same sensor "
                                     "and ts as a stored reading, another value",
                                     reason="conflicting_duplicate", readings=result.conflicts)
        for reason, count in batch.skipped.items():
            metrics.messages_skipped.labels(reason).inc(count)
            self._rejections.info(f"skipped:{reason}", _SKIPPED[reason], reason=reason,
                                  messages=count, topic=batch.skipped_topics[reason])
        metrics.ingest_latency.observe(max(0.0, time.time() - batch.first_received_us / 1e6))
        counts = self._counts
        counts["messages"] += batch.size
        counts["batches"] += 1
        counts["readings"] += result.inserted
        counts["duplicates"] += duplicates
        counts["quarantined"] += result.quarantined
        metrics.sensors_tracked.set(self._validator.tracked_sensors)
        self._last_commit_monotonic = time.monotonic()
        if result.last_seq is not None:
            self.last_seq = result.last_seq
