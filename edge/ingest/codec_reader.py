"""Messages of `codec: mapping` and `codec: sparkplug_b` subscriptions, read into a batch.

`CodecReader.read(context, topic, payload, received_us)` decodes one message with its
codec and validates every value the same way as `auto` readings (ids, sensor cap, times,
units), so every codec keeps the same guarantees. What one message yields: readings,
states, catalogue entries, Sparkplug births to persist, node events and a rebirth request;
the problems (a path a mapping could not read, an unknown alias, a bad value) become one
quarantine row for the whole message, with every problem named: the values it could read
are stored, and a replay after a fix adds only what was missing (the rest are duplicates).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.errors import PayloadError
from edge.ingest.mapping import FieldMapping
from edge.ingest.sparkplug.codec import SparkplugCodec
from edge.ingest.sparkplug.session import NodeEvent
from edge.ingest.topics import TopicContext
from edge.ingest.validation import ReadingValidator
from edge.records import CatalogRecord, Reading, SparkplugBirth, StateReading
from edge.settings import IngestLimits

_MAX_DETAIL = 1000
_MORE_ROOM = 200  # kept for '; and N more (their reasons)'


@dataclass(slots=True)
class CodecOutput:
    readings: list[Reading] = field(default_factory=list)
    states: list[StateReading] = field(default_factory=list)
    catalog: list[CatalogRecord] = field(default_factory=list)
    births: list[SparkplugBirth] = field(default_factory=list)
    events: list[NodeEvent] = field(default_factory=list)
    rebirth: tuple[str, str] | None = None
    problem: PayloadError | None = None  # quarantines the message (its readable part is kept)
    skip: str | None = None  # not data: acknowledged and counted
    counts: Counter[str] = field(default_factory=Counter)  # what was rejected, by reason


def _json(payload: bytes) -> Any:
    """The message's JSON document. orjson refuses a number beyond a double (`1e400`), which
    JSON allows: then Python's parser reads it as infinity, so the mapping quarantines that
    one value (`mapping_value`: not finite) and keeps the rest of the message. Anything else orjson
    refuses stays refused, with orjson's error."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in str(exc):
            raise
        try:
            return json.loads(payload.decode("utf-8"), parse_constant=_not_json,
                              parse_int=_as_orjson_int)
        except (ValueError, RecursionError):
            raise exc from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _as_orjson_int(text: str) -> int | float:
    """Integers as orjson reads them: beyond 64 bits, a double (infinite if beyond that)."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(text)


class CodecReader:
    def __init__(self, validator: ReadingValidator, limits: IngestLimits,
                 sparkplug: SparkplugCodec | None) -> None:
        self._validator = validator
        self._limits = limits
        self.sparkplug = sparkplug

    def read(self, context: TopicContext, topic: str, payload: bytes,
             received_us: int) -> CodecOutput:
        limit = self._limits.max_payload_bytes
        if context.codec == "sparkplug_b" and self.sparkplug is not None and \
                ("/NBIRTH/" in topic or "/DBIRTH/" in topic):
            limit = self.sparkplug.settings.max_birth_bytes
        if len(payload) > limit:
            return CodecOutput(problem=PayloadError(
                "payload_too_large", f"{len(payload)} bytes > limit {limit}"))
        if context.codec == "sparkplug_b":
            return self._sparkplug(topic, payload, received_us)
        assert context.mapping is not None
        return self._mapping(context, context.mapping, payload, received_us)

    def mapping_problem(self, context: TopicContext, payload: bytes,
                        received_us: int) -> PayloadError | None:
        """Why a `codec: mapping` message would be quarantined today (a replay judging a
        row), or None; the catalogue memory is left alone, so the replayed message still
        adds its catalogue entries."""
        assert context.mapping is not None
        if len(payload) > self._limits.max_payload_bytes:
            return PayloadError("payload_too_large", f"{len(payload)} bytes > limit "
                                                     f"{self._limits.max_payload_bytes}")
        return self._mapping(context, context.mapping, payload, received_us,
                             catalogue=False).problem

    # -- mapping ------------------------------------------------------------------------------
    def _mapping(self, context: TopicContext, mapping: FieldMapping, payload: bytes,
                 received_us: int, *, catalogue: bool = True) -> CodecOutput:
        out = CodecOutput()
        if not payload:  # as in `auto`
            out.problem = PayloadError("empty_payload")
            return out
        try:
            document = _json(payload)
        except orjson.JSONDecodeError as exc:
            reason = "invalid_utf8" if "UTF-8" in str(exc) else "invalid_json"
            out.problem = PayloadError(reason, str(exc)[:200])
            return out
        try:
            mapped = mapping.decode(document, context.fields, received_us, catalogue=catalogue)
        # decode never raises by design (its property test); should it all the same, one
        # message is quarantined instead of the exception ending the pipeline, and the
        # daemon with it (and, at QoS 1, every restart: the message comes back).
        except Exception as exc:
            out.problem = PayloadError("mapping_failed", f"{type(exc).__name__}: {exc}"[:200])
            return out
        problems = list(mapped.problems)
        if len(mapped.readings) + len(mapped.states) > self._limits.max_readings_per_message:
            out.problem = PayloadError("too_many_readings", f"{len(mapped.readings)} readings "
                                       f"and {len(mapped.states)} states > limit "
                                       f"{self._limits.max_readings_per_message}")
            return out
        self._validated(mapped.readings, mapped.states, out, problems)
        now = _at(received_us)
        out.catalog = [CatalogRecord(
            sensor_id=new.sensor_id, asset_id=new.asset_id, name=new.name, source="mapping",
            scope=context.subscription, datatype=new.datatype, unit=new.unit,
            first_seen_at=now, updated_at=now) for new in mapped.new_sensors]
        out.problem = _problem(problems)
        return out

    # -- Sparkplug B --------------------------------------------------------------------------
    def _sparkplug(self, topic: str, payload: bytes, received_us: int) -> CodecOutput:
        if self.sparkplug is None:
            return CodecOutput(problem=PayloadError("sparkplug_disabled", "no Sparkplug codec"))
        decoded = self.sparkplug.decode(topic, payload, received_us)
        out = CodecOutput(skip=decoded.skip, events=decoded.events, rebirth=decoded.rebirth)
        out.births = [SparkplugBirth(b.scope, b.bdseq, b.payload, b.received_us)
                      for b in decoded.births]
        problems = [f"{p.reason}: {p.detail}" for p in decoded.problems]
        self._validated(decoded.readings, decoded.states, out, problems)
        now = _at(received_us)
        out.catalog = [CatalogRecord(
            sensor_id=entry.sensor_id, asset_id=entry.asset_id, name=entry.name,
            source="sparkplug_b", scope=entry.scope, datatype=entry.datatype, unit=entry.unit,
            properties=_plain(entry.properties), first_seen_at=now, updated_at=now)
            for entry in decoded.catalog]
        out.problem = _problem(problems)
        if decoded.seq_gap:
            out.counts["sparkplug_seq_gap"] += 1
        if decoded.transient:
            out.counts["sparkplug_transient_skipped"] += decoded.transient
        return out

    def _validated(self, readings: list[Reading], states: list[StateReading], out: CodecOutput,
                   problems: list[str]) -> None:
        self._validator.validate_samples(readings, out.readings, problems)
        for state in states:
            try:
                out.states.append(self._validator.validate_state(state))
            except PayloadError as exc:
                problems.append(f"{exc.reason}: {exc.detail}")


def _problem(problems: list[str]) -> PayloadError | None:
    """One quarantine reason for the message: the first problem's, with all of them named."""
    if not problems:
        return None
    reason = problems[0].split(":", 1)[0]
    if len(problems) == 1:
        return PayloadError(reason, problems[0][:_MAX_DETAIL])
    # Whole problems while they fit; the rest counted with their reasons, never cut mid-way.
    budget = _MAX_DETAIL - _MORE_ROOM
    shown = [problems[0][:budget]]
    used = len(shown[0])
    for problem in problems[1:]:
        used += len(problem) + 2
        if used > budget:
            break
        shown.append(problem)
    detail = f"{len(problems)} problems: " + "; ".join(shown)
    rest = problems[len(shown):]
    if rest:
        reasons = sorted({problem.split(":", 1)[0] for problem in rest})
        detail += f"; and {len(rest)} more ({', '.join(reasons)})"
    return PayloadError(reason, detail[:_MAX_DETAIL])


def _plain(properties: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in properties.items()
            if not (isinstance(v, float) and not math.isfinite(v))}


def _at(received_us: int) -> datetime:
    return datetime.fromtimestamp((received_us or time.time_ns() // 1000) / 1e6, UTC)

