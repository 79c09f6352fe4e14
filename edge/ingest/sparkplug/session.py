"""Sparkplug B edge nodes as the gateway follows them: births, aliases, seq, bdSeq, deaths.

Pure code: `SparkplugSessions.decode(topic, payload, received_us)` turns one message into
`Decoded` (samples, problems, what to persist, events, a rebirth request) and updates what
it knows about the node. The pipeline validates the samples, commits everything with the
message's batch, and carries out the rest.

Rules (spBv1.0, Sparkplug 3.0):
- NBIRTH (seq 0) names the node's metrics (name, alias, datatype, properties such as
  engineering units) and carries `bdSeq`; it resets the node's devices, which re-birth.
  DBIRTH does the same for one device. Birth values are stored like data.
- NDATA/DDATA name metrics by alias (or by name); an alias the births did not name is a
  problem (`unknown_alias`), data from a node never born is `no_birth`: both quarantine the
  message and ask for a rebirth (when enabled, rate-limited).
- `seq` runs 0..255 over all of a node's messages; a gap or an out-of-order message is
  counted and asks for a rebirth; the data still decodes (aliases stay valid).
- NDEATH is honoured only when its `bdSeq` matches the current birth's (a late death of an
  old session is ignored); NDEATH and DDEATH make the node's or device's sensors stale (one
  event, no silence alarms) until the next birth.
- Historical metrics are stored and flagged; transient ones are skipped; nulls are kept as
  null states; Boolean, String, Text, UUID and DateTime are states; DataSet, Template,
  PropertySet, Bytes, File and the array types are quarantined with the metric named.
- NCMD, DCMD and STATE messages are not data (skipped and counted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from google.protobuf.message import DecodeError

from edge.ingest.sensor_ids import level_id, sensor_id, sensor_ids
from edge.ingest.sparkplug.schema import DataType, Payload
from edge.ingest.sparkplug.topics import SparkplugTopic, parse_topic
from edge.records import FLAG_HISTORICAL, FLAG_TS_FROM_ARRIVAL, Reading, StateReading

_NOT_DATA = ("bdSeq", "Node Control/")
_UNIT_KEYS = ("engunit", "engineeringunits", "engineering units", "engineering_units", "unit",
              "units")
_SEQ_MODULO = 256
_FLOAT_FIELDS = frozenset({"double_value", "float_value"})


class Problem(NamedTuple):
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What a birth says about one sensor: kept with the original name."""

    sensor_id: str
    asset_id: str | None
    name: str
    scope: str
    datatype: str
    unit: str | None
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Birth:
    """A birth to persist, so that aliases still decode after a restart."""

    scope: str  # "group/node" or "group/node/device"
    bdseq: int | None
    payload: bytes
    received_us: int


@dataclass(frozen=True, slots=True)
class NodeEvent:
    scope: str
    state: Literal["offline", "online"]
    sensor_ids: tuple[str, ...]
    reason: str

    @property
    def source_id(self) -> str:
        """The scope as an id (the node_offline alert is filed under it)."""
        return sensor_id(self.scope)


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)  # numbers (not yet validated)
    states: list[StateReading] = field(default_factory=list)  # states and nulls
    problems: list[Problem] = field(default_factory=list)
    catalog: list[CatalogEntry] = field(default_factory=list)
    births: list[Birth] = field(default_factory=list)
    events: list[NodeEvent] = field(default_factory=list)
    rebirth: tuple[str, str] | None = None
    skip: str | None = None
    seq_gap: bool = False
    transient: int = 0  # is_transient metrics: not stored (counted)


class _Metric(NamedTuple):
    sensor_id: str
    name: str
    datatype: int
    unit: str | None
    read: Callable[[Any], float] | None  # numbers; None: a state, or unsupported
    read_state: Callable[[Any], str] | None  # states


@dataclass(slots=True)
class _Scope:
    by_alias: dict[int, _Metric] = field(default_factory=dict)
    by_name: dict[str, _Metric] = field(default_factory=dict)
    asset_id: str | None = None
    online: bool = True
    died_alone: bool = False  # by its own DDEATH (it has a node_offline alert of its own)
    # Taken back from the buffer at start: its first message says it is online (an alert
    # left open across the restart resolves; data means it was born again meanwhile).
    restored: bool = False
    # Digest of the birth that defined it: the same bytes again are a copy (a retained birth
    # resent on a re-subscribe, a QoS 1 redelivery), never a new session: a new birth has a
    # new timestamp (and an NBIRTH a new bdSeq).
    birth: bytes | None = None


@dataclass(slots=True)
class _Node:
    scope: _Scope
    bdseq: int | None
    last_seq: int | None  # None: not known (restored from the buffer)
    devices: dict[str, _Scope] = field(default_factory=dict)
    # Restored from the buffer: the node may have re-birthed (other aliases) while the
    # gateway was away, and births are not retained; its first message asks for a rebirth.
    restored: bool = False


@dataclass(frozen=True, slots=True)
class Naming:
    """How metric names become sensor ids and assets (`sparkplug.*` settings)."""

    sensor_id: str = "{group}/{node}/{device}/{metric}"
    asset: str = "{group}/{node}/{device}"

    def format(self, template: str, group: str, node: str, device: str | None,
               metric: str = "") -> str:
        """An id from `template`: group, node and device made ids level by level
        (`level_id`), `metric` already an id (the birth's names made ids together)."""
        if device is None:  # a node's own metrics: the device level is left out
            template = template.replace("/{device}", "").replace("{device}/", "")
            template = template.replace("{device}", "")
        return sensor_id(template.format(group=level_id(group), node=level_id(node),
                                         device=level_id(device) if device else "",
                                         metric=metric))


class SparkplugSessions:
    """Every edge node and device the gateway has seen born."""

    def __init__(self, naming: Naming = Naming()) -> None:
        self._naming = naming
        self._nodes: dict[tuple[str, str], _Node] = {}
        self.counts: dict[str, int] = {}

    def decode(self, topic: str, payload: bytes, received_us: int) -> Decoded:
        parsed = parse_topic(topic)
        if parsed is None:
            return Decoded(problems=[Problem("invalid_topic",
                                             f"{topic[:80]!r} is not a Sparkplug B topic")])
        if parsed.type in ("NCMD", "DCMD", "STATE"):
            return Decoded(skip="sparkplug_command" if parsed.type != "STATE" else "sparkplug_state")
        if not payload:  # an empty protobuf would pass as a message without metrics
            return Decoded(problems=[Problem("empty_payload", f"an empty {parsed.type}")])
        message = Payload()
        try:
            message.ParseFromString(payload)
        except DecodeError as exc:
            return Decoded(problems=[Problem("invalid_protobuf", str(exc)[:200])])
        if message.uuid == "SPBV1.0_COMPRESSED":
            return Decoded(problems=[Problem("unsupported_compression",
                                             "compressed Sparkplug payloads are not read")])
        if parsed.type in ("NBIRTH", "DBIRTH"):
            unreadable = _unreadable_text(message)
            if unreadable is not None:
                return Decoded(problems=[Problem("invalid_protobuf", unreadable)])
        handler = _HANDLERS[parsed.type]
        return handler(self, parsed, message, payload, received_us)

    def restore(self, births: Iterable[tuple[str, bytes, int]]) -> int:
        """Take back persisted births (scope, payload, arrival; node births first); returns
        how many were usable. A device birth older than its node's birth belongs to an
        earlier session of the node (an NBIRTH resets its devices): not taken back."""
        restored = 0
        node_born_us: dict[str, int] = {}
        for scope, payload, received_us in sorted(births, key=lambda b: b[0].count("/")):
            parts = scope.split("/")
            kind = "NBIRTH" if len(parts) == 2 else "DBIRTH"
            if kind == "NBIRTH":
                node_born_us[scope] = received_us
            elif received_us < node_born_us.get("/".join(parts[:2]), received_us):
                continue
            topic = f"spBv1.0/{parts[0]}/{kind}/{'/'.join(parts[1:])}"
            decoded = self.decode(topic, payload, 0)
            if not decoded.problems:
                restored += 1
        for node in self._nodes.values():
            node.last_seq = None  # the seq went on while the gateway was away
            node.restored = node.scope.restored = True
            for device in node.devices.values():
                device.restored = True
        return restored

    def sensors_of(self, group: str, node: str) -> tuple[str, ...]:
        known = self._nodes.get((group, node))
        if known is None:
            return ()
        ids = [m.sensor_id for m in known.scope.by_name.values()]
        for device in known.devices.values():
            ids += [m.sensor_id for m in device.by_name.values()]
        return tuple(ids)

    # -- messages ---------------------------------------------------------------------------
    def _nbirth(self, topic: SparkplugTopic, message: Any, raw: bytes,
                received_us: int) -> Decoded:
        bdseq = _bdseq(message)
        known = self._nodes.get(topic.node_key)
        digest = _digest(raw)
        if known is not None and known.scope.birth == digest:
            self._count("birth_copy")
            return Decoded(skip="sparkplug_birth_copy")
        decoded = Decoded()
        scope = self._scope(topic, None, message.metrics, decoded)
        scope.birth = digest
        # The birth resets the node's devices (they re-birth); a device that was dead is
        # kept as dead, so that its birth says it is back (its node_offline alert resolves).
        # A device taken back from the buffer may have died before the restart (deaths are
        # not kept): its birth says it is back too.
        dead = {} if known is None else {name: _Scope(online=False, died_alone=True)
                                         for name, device in known.devices.items()
                                         if device.died_alone or device.restored}
        self._nodes[topic.node_key] = _Node(scope, bdseq, int(message.seq), dead)
        if known is not None and known.scope.restored and known.scope.online and received_us:
            decoded.events.append(NodeEvent(_scope_name(topic, None), "online", (), "NBIRTH"))
        self._take_birth(topic, None, scope, previous=known.scope if known else None,
                         bdseq=bdseq, received=(message, raw, received_us), decoded=decoded)
        return decoded

    def _dbirth(self, topic: SparkplugTopic, message: Any, raw: bytes,
                received_us: int) -> Decoded:
        assert topic.device is not None
        digest = _digest(raw)
        known = self._nodes.get(topic.node_key)
        if known is not None and (copied := known.devices.get(topic.device)) is not None and \
                copied.birth == digest:  # before the seq check: a copy's seq is an old one
            self._count("birth_copy")
            return Decoded(skip="sparkplug_birth_copy")
        decoded = Decoded()
        node = self._born(topic, message, decoded, received_us)
        if node is None:
            return decoded
        previous = node.devices.get(topic.device)
        if previous is not None and previous.online and previous.restored:
            decoded.events.append(NodeEvent(_scope_name(topic, topic.device), "online", (),
                                            "DBIRTH"))
        node_ids = frozenset(m.sensor_id for m in node.scope.by_name.values())
        scope = self._scope(topic, topic.device, message.metrics, decoded, taken=node_ids)
        scope.birth = digest
        node.devices[topic.device] = scope
        self._take_birth(topic, topic.device, scope, previous=previous, bdseq=None,
                         received=(message, raw, received_us), decoded=decoded)
        return decoded

    def _take_birth(self, topic: SparkplugTopic, device: str | None, scope: _Scope, *,
                    previous: _Scope | None, bdseq: int | None,
                    received: tuple[Any, bytes, int], decoded: Decoded) -> None:
        """What every birth does once its scope is in place: say the source is back (if it
        was dead), keep the birth for restarts, and store its values (not when restored)."""
        message, raw, received_us = received
        name = _scope_name(topic, device)
        if previous is not None and not previous.online:
            decoded.events.append(NodeEvent(name, "online", (), "DBIRTH" if device else "NBIRTH"))
        decoded.births.append(Birth(name, bdseq, raw, received_us))
        if received_us:
            self._samples(topic, scope, message, received_us, decoded, birth=True)

    def _data(self, topic: SparkplugTopic, message: Any, raw: bytes,
              received_us: int) -> Decoded:
        decoded = Decoded()
        node = self._born(topic, message, decoded, received_us)
        if node is None:
            return decoded
        scope = node.scope if topic.device is None else node.devices.get(topic.device)
        if scope is None or not scope.online:
            decoded.problems.append(Problem("no_birth", f"device {topic.device!r} of node "
                                            f"{topic.group}/{topic.node} " + (
                                                "was never born" if scope is None else
                                                "is offline since its DDEATH")))
            decoded.rebirth = topic.node_key
            return decoded
        self._back_after_restart(_scope_name(topic, None), node.scope, decoded)
        if topic.device is not None:
            self._back_after_restart(_scope_name(topic, topic.device), scope, decoded)
        self._samples(topic, scope, message, received_us, decoded)
        return decoded

    def _ndeath(self, topic: SparkplugTopic, message: Any, raw: bytes,
                received_us: int) -> Decoded:
        node = self._nodes.get(topic.node_key)
        bdseq = _bdseq(message)
        # A birth that gave a bdSeq is ended only by a death carrying the same one: a death
        # without a readable integer bdSeq cannot be matched to it, and taking a live node
        # offline on it would quarantine the node's data until its next birth.
        if node is None or not node.scope.online or \
                (node.bdseq is not None and bdseq != node.bdseq):
            self._count("stale_death")  # another session's, the same death again, or unmatched
            return Decoded(skip="sparkplug_stale_death")
        node.scope.online = False
        for device in node.devices.values():
            device.online = False
        return Decoded(events=[NodeEvent(_scope_name(topic, None), "offline",
                                         self.sensors_of(*topic.node_key), "NDEATH")])

    def _ddeath(self, topic: SparkplugTopic, message: Any, raw: bytes,
                received_us: int) -> Decoded:
        decoded = Decoded()
        node = self._nodes.get(topic.node_key)
        assert topic.device is not None
        device = node.devices.get(topic.device) if node is not None else None
        if node is None or device is None:
            return Decoded(skip="sparkplug_stale_death")
        self._check_seq(topic, node, message, decoded)
        device.online = False
        device.died_alone = True
        decoded.events.append(NodeEvent(_scope_name(topic, topic.device), "offline",
                                        tuple(m.sensor_id for m in device.by_name.values()),
                                        "DDEATH"))
        return decoded

    # -- helpers ----------------------------------------------------------------------------
    def _born(self, topic: SparkplugTopic, message: Any, decoded: Decoded,
              received_us: int) -> _Node | None:
        node = self._nodes.get(topic.node_key)
        if node is None:
            decoded.problems.append(Problem("no_birth", f"node {topic.group}/{topic.node} was "
                                            "never born (no NBIRTH seen or kept)"))
            decoded.rebirth = topic.node_key
            return None
        if not node.scope.online and received_us:
            # Sparkplug: after an NDEATH nothing of the node is valid until its next NBIRTH.
            decoded.problems.append(Problem("no_birth", f"node {topic.group}/{topic.node} is "
                                            "offline since its NDEATH; waiting for an NBIRTH"))
            decoded.rebirth = topic.node_key
            return None
        if received_us:
            self._check_seq(topic, node, message, decoded)
            if node.restored:
                node.restored = False
                decoded.rebirth = topic.node_key
        return node

    @staticmethod
    def _back_after_restart(name: str, scope: _Scope, decoded: Decoded) -> None:
        """The first data of a node or device taken back from the buffer: it is alive (an
        NDEATH or DDEATH before the restart may have left its alert open)."""
        if scope.restored:
            scope.restored = False
            decoded.events.append(NodeEvent(name, "online", (), "data after a restart"))

    def _check_seq(self, topic: SparkplugTopic, node: _Node, message: Any,
                   decoded: Decoded) -> None:
        if not message.HasField("seq"):
            return
        seq = int(message.seq)
        if seq == node.last_seq:
            return  # a redelivered copy (QoS 1): the buffer keeps one, it is not a gap
        if node.last_seq is not None and seq != (node.last_seq + 1) % _SEQ_MODULO:
            self._count("seq_gap")
            decoded.seq_gap = True
            decoded.rebirth = topic.node_key
        node.last_seq = seq

    def _scope(self, topic: SparkplugTopic, device: str | None, metrics: Any,
               decoded: Decoded, taken: frozenset[str] = frozenset()) -> _Scope:
        """The scope a birth defines. `taken`: the node's sensor ids, which a device's metric
        must not reuse (node metric 'D9/T' and device D9's metric 'T' would share an id):
        the device's metric gets the digest suffix then (rule 5 of edge/ingest/sensor_ids)."""
        naming = self._naming
        names = [m.name for m in metrics if m.name and not m.name.startswith(_NOT_DATA)]
        metric_ids = sensor_ids(names)  # rule 4: colliding names of one birth get digests
        asset = naming.format(naming.asset, topic.group, topic.node, device)
        asset_id = asset or None
        scope = _Scope(asset_id=asset_id)
        scope_name = _scope_name(topic, device)
        ambiguous: set[int] = set()
        for index, metric in enumerate(metrics):
            name = metric.name
            if not name:
                decoded.problems.append(Problem("invalid_birth", f"metric {index} of the birth "
                                                "has no name"))
                continue
            if name.startswith(_NOT_DATA):
                continue
            if name in scope.by_name:  # names are unique in a birth: the first one counts
                decoded.problems.append(Problem("duplicate_name", (
                    f"metric {index} repeats the name {name[:80]!r} of an earlier one; "
                    "the first is kept")))
                continue
            ident = naming.format(naming.sensor_id, topic.group, topic.node, device,
                                      metric_ids[name])
            if ident in taken:
                ident = naming.format(naming.sensor_id, topic.group, topic.node, device,
                                          sensor_id(name, suffix=True))
            unit = _unit(metric)
            datatype = int(metric.datatype)
            spec = _Metric(ident, name, datatype, unit, _NUMBERS.get(datatype),
                           _STATES.get(datatype))
            scope.by_name[name] = spec
            if metric.HasField("alias"):
                alias = int(metric.alias)
                other = scope.by_alias.get(alias)
                if other is not None or alias in ambiguous:
                    # Data by this alias could be either metric: it is read by no alias
                    # (quarantined as unknown_alias) until a birth gives distinct ones.
                    decoded.problems.append(Problem("duplicate_alias", (
                        f"alias {alias} names both {other.name!r} and {name!r}"
                        if other is not None else f"alias {alias} names {name!r} too")))
                    scope.by_alias.pop(alias, None)
                    ambiguous.add(alias)
                else:
                    scope.by_alias[alias] = spec
            decoded.catalog.append(CatalogEntry(
                ident, asset_id, name, scope_name, _datatype_name(datatype), unit,
                _properties(metric)))
        return scope

    def _samples(self, topic: SparkplugTopic, scope: _Scope, message: Any, received_us: int,
                 decoded: Decoded, *, birth: bool = False) -> None:
        """Every metric of a birth or data message as a reading or a state (hot path: one
        alias lookup and a datatype-specific read per metric)."""
        stamped = message.HasField("timestamp") and message.timestamp > 0
        default_ts = int(message.timestamp) * 1000 if stamped else received_us
        default_flags = 0 if stamped else FLAG_TS_FROM_ARRIVAL
        by_alias = scope.by_alias
        readings = decoded.readings
        asset_id = scope.asset_id
        # Alias 0 is a real alias only if the birth gave it; else 0 means "no alias".
        alias_zero = 0 in by_alias
        by_name = scope.by_name
        born: set[str] = set()
        for metric in message.metrics:
            if birth:  # a birth names every metric: its values go by name, never by alias
                name = metric.name
                spec = by_name.get(name)
                if spec is None or name in born:
                    continue  # bdSeq, Node Control/*, nameless or repeated (named by _scope)
                born.add(name)
            else:
                alias = metric.alias
                spec = by_alias.get(alias) if alias or (alias_zero and metric.HasField("alias")) \
                    else None
                if spec is None:
                    spec = self._by_name(topic, scope, metric, decoded)
                    if spec is None:
                        continue
            if metric.is_transient:
                decoded.transient += 1
                continue
            stamp = metric.timestamp  # 0: not set (1970 is no reading time)
            ts_us = stamp * 1000 if stamp else default_ts
            flags = 0 if stamp else default_flags
            if metric.is_historical:
                flags |= FLAG_HISTORICAL
            if spec.read is _float:  # the common case, inlined
                which = metric.WhichOneof("value")
                if which in _FLOAT_FIELDS:
                    readings.append(Reading(spec.sensor_id, asset_id, ts_us, getattr(metric, which),
                                            spec.unit, None, flags, received_us))
                    continue
            _store(spec, metric, Reading(spec.sensor_id, asset_id, ts_us, 0.0, spec.unit, None,
                                         flags, received_us), decoded)

    def _by_name(self, topic: SparkplugTopic, scope: _Scope, metric: Any,
                 decoded: Decoded) -> _Metric | None:
        name = metric.name
        if not isinstance(name, str):  # proto2 hands invalid UTF-8 back as bytes
            decoded.problems.append(Problem("invalid_protobuf", "a metric name is not UTF-8"))
            return None
        if name.startswith(_NOT_DATA):
            return None
        spec = scope.by_name.get(name) if name else None
        if spec is None:
            decoded.problems.append(_unknown(metric))
            decoded.rebirth = topic.node_key
        return spec

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def _store(spec: _Metric, metric: Any, where: Reading, decoded: Decoded) -> None:
    """A metric other than a plain float: a number, a state, a null, or a problem.

    `where` carries the sensor, asset, time, flags and arrival (its value is a placeholder).
    """
    try:
        if spec.read is not None:
            decoded.readings.append(where._replace(value=spec.read(metric)))
            return
        if spec.read_state is not None:
            decoded.states.append(StateReading(where.sensor_id, where.asset_id, where.ts_us,
                                               spec.read_state(metric), None, where.flags,
                                               where.received_us))
            return
        if not metric.is_null:
            decoded.problems.append(Problem(
                "unsupported_datatype", f"metric {spec.name!r}: {_datatype_name(spec.datatype)} "
                "is not stored (flatten it with a mapping)"))
            return
    except _NoValue:
        if not metric.is_null:
            decoded.problems.append(Problem("invalid_value", f"metric {spec.name!r}: no "
                                            f"{_datatype_name(spec.datatype)} value"))
            return
    except ValueError as exc:
        decoded.problems.append(Problem("invalid_value", f"metric {spec.name!r}: {exc}"))
        return
    # A null (is_null, no value): kept as a null state, whatever the datatype.
    decoded.states.append(StateReading(where.sensor_id, where.asset_id, where.ts_us, None, None,
                                       where.flags, where.received_us))


_HANDLERS: dict[str, Callable[[SparkplugSessions, SparkplugTopic, Any, bytes, int], Decoded]] = {
    "NBIRTH": SparkplugSessions._nbirth, "DBIRTH": SparkplugSessions._dbirth,
    "NDATA": SparkplugSessions._data, "DDATA": SparkplugSessions._data,
    "NDEATH": SparkplugSessions._ndeath, "DDEATH": SparkplugSessions._ddeath,
}


def _scope_name(topic: SparkplugTopic, device: str | None) -> str:
    return f"{topic.group}/{topic.node}" + (f"/{device}" if device else "")


def _unknown(metric: Any) -> Problem:
    if metric.HasField("alias"):
        return Problem("unknown_alias", f"alias {int(metric.alias)} is not in the birth")
    return Problem("unknown_alias", f"metric {metric.name[:80]!r} is not in the birth")


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def _bdseq(message: Any) -> int | None:
    for metric in message.metrics:
        if metric.name == "bdSeq":
            which = metric.WhichOneof("value")
            return int(getattr(metric, which)) if which in ("long_value", "int_value") else None
    return None


def _unit(metric: Any) -> str | None:
    if not metric.HasField("properties"):
        return None
    properties = metric.properties
    for key, value in zip(properties.keys, properties.values, strict=False):
        if key.lower() in _UNIT_KEYS and value.WhichOneof("value") == "string_value":
            return str(value.string_value) or None
    return None


def _properties(metric: Any) -> dict[str, Any]:
    if not metric.HasField("properties"):
        return {}
    out: dict[str, Any] = {}
    for key, value in zip(metric.properties.keys, metric.properties.values, strict=False):
        which = value.WhichOneof("value")
        if which in ("int_value", "long_value", "float_value", "double_value", "boolean_value",
                     "string_value"):
            out[key] = getattr(value, which)
    return out


def _datatype_name(datatype: int) -> str:
    """The specification's spelling (DateTime, DataSet, UInt64, UUID)."""
    try:
        name = DataType(datatype).name
    except ValueError:
        return f"datatype {datatype}"
    return _SPELLING.get(name) or name.title().replace("Uint", "UInt")


_SPELLING = {"DATETIME": "DateTime", "DATASET": "DataSet", "PROPERTYSET": "PropertySet",
             "PROPERTYSETLIST": "PropertySetList", "UUID": "UUID"}


# -- value readers: one per datatype, chosen at birth -----------------------------------------
class _NoValue(ValueError):
    """The metric carries no value (a null, or a malformed metric)."""


def _integer(metric: Any) -> int:
    which = metric.WhichOneof("value")
    if which == "int_value":
        return int(metric.int_value)
    if which == "long_value":
        return int(metric.long_value)
    if which is None:
        raise _NoValue
    raise ValueError(f"an integer metric carries {which}")


def _signed(bits: int) -> Callable[[Any], float]:
    """Signed integers travel as two's complement in the unsigned fields."""
    width = 64 if bits == 64 else 32
    half, low, high = 1 << (width - 1), -(1 << (bits - 1)), 1 << (bits - 1)

    def read(metric: Any) -> float:
        raw = _integer(metric) & ((1 << width) - 1)
        value = raw - (1 << width) if raw >= half else raw
        if not low <= value < high:
            raise ValueError(f"{value} does not fit Int{bits}")
        return float(value)
    return read


def _unsigned(metric: Any) -> float:
    return float(_integer(metric))


def _float(metric: Any) -> float:
    which = metric.WhichOneof("value")
    if which == "double_value":
        return float(metric.double_value)
    if which == "float_value":
        return float(metric.float_value)
    if which is None:
        raise _NoValue
    raise ValueError(f"a floating-point metric carries {which}")


def _boolean(metric: Any) -> str:
    if metric.WhichOneof("value") != "boolean_value":
        raise _NoValue
    return "true" if metric.boolean_value else "false"


def _text(metric: Any) -> str:
    if metric.WhichOneof("value") != "string_value":
        raise _NoValue
    value = metric.string_value
    if not isinstance(value, str):  # proto2 hands invalid UTF-8 back as bytes
        raise ValueError("string value is not valid UTF-8")
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("string value contains a NUL character")
    return value


def _unreadable_text(message: Any) -> str | None:
    """What in a birth is not text a database can hold (invalid UTF-8, which proto2 hands
    back as bytes, or NUL): names, property keys and string properties name sensors and
    units, so such a birth is refused whole, its metric named by position."""
    for index, metric in enumerate(message.metrics):
        if not _storable(metric.name):
            return f"metric {index}: name is not valid UTF-8 text, or holds a NUL character"
        if metric.HasField("properties"):
            properties = metric.properties
            for key, value in zip(properties.keys, properties.values, strict=False):
                if not _storable(key) or (value.WhichOneof("value") == "string_value"
                                          and not _storable(value.string_value)):
                    return (f"metric {index}: property {key!r} is not valid UTF-8 text, or "
                            "holds a NUL character")
    return None


def _storable(text: object) -> bool:
    return isinstance(text, str) and "\x00" not in text


def _datetime(metric: Any) -> str:
    ms = _integer(metric)
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"DateTime {ms} ms is out of range") from exc
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_NUMBERS: dict[int, Callable[[Any], float]] = {
    DataType.INT8: _signed(8), DataType.INT16: _signed(16), DataType.INT32: _signed(32),
    DataType.INT64: _signed(64), DataType.UINT8: _unsigned, DataType.UINT16: _unsigned,
    DataType.UINT32: _unsigned, DataType.UINT64: _unsigned, DataType.FLOAT: _float,
    DataType.DOUBLE: _float,
}
_STATES: dict[int, Callable[[Any], str]] = {
    DataType.BOOLEAN: _boolean, DataType.STRING: _text, DataType.TEXT: _text,
    DataType.UUID: _text, DataType.DATETIME: _datetime,
}
