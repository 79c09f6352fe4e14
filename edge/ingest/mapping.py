"""Field mapping (`codec: mapping`): readings and states picked out of any JSON by path.

Pure code. `FieldMapping.decode(document, fields, received_us)` reads one parsed message
with the subscription's `MappingSettings` (edge/settings/payloads.py) and returns what it
read: reading and state candidates (validated later, like every codec's), catalogue entries
for ids made from free-text keys, and problems. Whatever a path cannot give is a problem
that names the path; the rest of the message is still read, and the pipeline quarantines
the message once, listing the problems (a replay after a config fix reads it again; what
was stored the first time is a duplicate then).

Paths are JMESPath (the `jmespath` library); a last step `*` maps every field of an object
({key}), `[*]` every element of an array ({index}). Keys become sensor ids by the rule of
edge/ingest/sensor_ids.py, with the original name kept in the catalogue.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import jmespath
import orjson
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from edge.errors import PayloadError
from edge.ingest.sensor_ids import ID_RE, id_part, sensor_id, suffix_collisions
from edge.ingest.timestamps import parse_ts_us
from edge.records import FLAG_TS_FROM_ARRIVAL, Reading, StateReading
from edge.settings.payloads import MappingSettings, TimestampMapping, ValueMapping, wildcard
from edge.times import datetime_to_us

_US_PER_UNIT = {"epoch_s": 1_000_000, "epoch_ms": 1000, "epoch_us": 1, "epoch_ns": 0}
_CACHE_LIMIT = 10_000
_CATALOGUED_LIMIT = 100_000
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MAX_WHY = 160


@dataclass(frozen=True, slots=True)
class NewSensor:
    """A sensor a mapping named from a free-text key: for the catalogue."""

    sensor_id: str
    asset_id: str | None
    name: str
    datatype: str
    unit: str | None


@dataclass(slots=True)
class Mapped:
    readings: list[Reading] = field(default_factory=list)
    states: list[StateReading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "reason: detail"
    new_sensors: list[NewSensor] = field(default_factory=list)


class _Record(NamedTuple):
    """One record and what every value read from it shares."""

    document: Any
    fields: dict[str, Any]  # the template's fields, with {key} and {index} set per value
    asset_id: str | None
    ts_us: int
    quality: str | None
    flags: int
    received_us: int


class _Picked(NamedTuple):
    key: str | None
    position: int | None  # `index` would shadow tuple.index
    raw: Any


class _Value(NamedTuple):
    settings: ValueMapping
    path: _Path
    exclude: frozenset[str]
    numeric: bool  # only numbers are read (kind: number, or a unit, scale or offset given)


class _Names:
    """The sensor names one message gave, for rule 4 of edge/ingest/sensor_ids.py: the
    ids by rules 1-3 of every name, and where the rows of changed names are."""

    __slots__ = ("changed", "plain")

    def __init__(self) -> None:
        self.plain: dict[str, str] = {}
        self.changed: list[tuple[bool, int, str]] = []  # (a state?, row index, name)


class PathFailed(Exception):
    """A path that could not be evaluated on this document (a filter comparing a string
    with a number, a function given the wrong type): the document's problem, not ours."""


class _Path:
    """A compiled path, with its wildcard (None, '.*' or '[*]')."""

    __slots__ = ("expression", "text", "wildcard")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wildcard = wildcard(text)
        base = "" if text == "*" else text[: -len(self.wildcard)] if self.wildcard else text
        self.expression: ParsedResult | None = None if base in ("", "@") else jmespath.compile(base)

    def search(self, document: Any) -> Any:
        if self.expression is None:
            return document
        return _search(self.expression, self.text, document)

    def holds_null(self, document: Any) -> bool:
        """Whether a plain dotted path leads to a JSON null (JMESPath gives None for a null
        and for a missing key alike); other paths cannot tell, and count as missing."""
        steps = _DOTTED.fullmatch(self.text)
        if steps is None:
            return False
        node = document
        for step in self.text.split("."):
            if not isinstance(node, dict) or step not in node:
                return False
            node = node[step]
        return node is None


def _search(expression: ParsedResult, text: str, document: Any) -> Any:
    try:
        return expression.search(document)
    # Filters and functions raise on a document of unexpected types (JMESPathError,
    # TypeError, ValueError, RecursionError ...): whatever evaluating a configured
    # expression on a device's document raises is a problem of that message, named by
    # its path (tests/unit/test_mapping.py, the decode-never-raises property).
    except Exception as exc:
        raise PathFailed(f"path {text!r} cannot be evaluated on this message: "
                         f"{type(exc).__name__}: {str(exc)[:_MAX_WHY]}") from None


class FieldMapping:
    """One subscription's mapping, compiled."""

    def __init__(self, settings: MappingSettings) -> None:
        self._settings = settings
        self._records = _Path(settings.records) if settings.records else None
        self._ts = settings.ts
        self._ts_path = _Path(settings.ts.path) if settings.ts else None
        self._ts_parse = _ts_parser(settings.ts) if settings.ts else None
        self._quality_path = _Path(settings.quality.path) if settings.quality else None
        self._values = [_Value(value, _Path(value.path), frozenset(value.exclude), value.numeric)
                        for value in settings.values]
        self._unit_paths: dict[str, ParsedResult] = {}
        self._catalogued: set[str] = set()

    def decode(self, document: Any, fields: Mapping[str, str], received_us: int, *,
               catalogue: bool = True) -> Mapped:
        """What one message gives; never raises (what cannot be read is a problem).
        `catalogue=False` (a replay judging a row) leaves the catalogue memory alone."""
        out = Mapped()
        names = _Names()
        asset_id = self._asset(fields, out)
        # One dict of template fields for str.format_map: no duplicate keyword arguments.
        message = _Record(None, {**fields, "key": None, "index": None}, asset_id, received_us,
                          None, 0, received_us)
        for number, record in enumerate(self._each_record(document, out)):
            before = len(out.problems)
            self._read_record(record, message, out, names)
            if self._records is not None and len(out.problems) > before:
                out.problems[before:] = [_in_record(problem, number)
                                         for problem in out.problems[before:]]
        if names.changed:
            self._resolve(names, out, catalogue)
        return out

    def _read_record(self, record: Any, message: _Record, out: Mapped, names: _Names) -> None:
        ts_us, flags = self._record_ts(record, message.received_us, out)
        if ts_us is None:
            return
        try:
            quality = self._record_quality(record)
        except PathFailed as exc:
            out.problems.append(f"mapping_quality: {exc}")
            return
        context = message._replace(document=record, ts_us=ts_us, quality=quality, flags=flags)
        for value in self._values:
            for picked in self._picked(record, value.path, value.exclude, out):
                self._emit(value, picked, context, out, names)

    # -- records, time, quality, asset ------------------------------------------------------
    def _each_record(self, document: Any, out: Mapped) -> Iterator[Any]:
        if self._records is None:
            yield document
            return
        try:
            records = self._records.search(document)
        except PathFailed as exc:
            out.problems.append(f"mapping_records: {exc}")
            return
        if not isinstance(records, list):
            out.problems.append(f"mapping_records: path {self._records.text!r} is not an array "
                                f"(got {_type(records)})")
            return
        yield from records

    def _record_ts(self, record: Any, received_us: int, out: Mapped) -> tuple[int | None, int]:
        if self._ts_path is None or self._ts_parse is None:
            return received_us, FLAG_TS_FROM_ARRIVAL
        try:
            raw = self._ts_path.search(record)
        except PathFailed as exc:
            out.problems.append(f"mapping_ts: {exc}")
            return None, 0
        if raw is None:
            out.problems.append(f"mapping_ts: path {self._ts_path.text!r} not found")
            return None, 0
        try:
            return self._ts_parse(raw), 0
        except (PayloadError, ValueError, OverflowError, TypeError) as exc:
            out.problems.append(f"mapping_ts: path {self._ts_path.text!r}: {_why(exc)}")
            return None, 0

    def _record_quality(self, record: Any) -> str | None:
        if self._quality_path is None or self._settings.quality is None:
            return None
        raw = self._quality_path.search(record)
        if raw is None:
            return None
        if not isinstance(raw, str | int) and not _integral(raw):
            # As the auto codec: text or an integer code (0.0 is the code 0).
            raise PathFailed(f"quality at path {self._settings.quality.path!r} is "
                             f"{_type(raw)}: a quality is text or an integer code")
        code = _code(raw)
        return self._settings.quality.map.get(code, code)

    def _asset(self, fields: Mapping[str, str], out: Mapped) -> str | None:
        template = self._settings.asset
        if template is None:
            return fields.get("asset")
        try:
            return sensor_id(template.format_map({name: id_part(value)
                                                  for name, value in fields.items()}))
        except KeyError as exc:
            out.problems.append(f"mapping_asset: the topic gives no {exc}")
            return None

    # -- values ---------------------------------------------------------------------------
    def _picked(self, record: Any, path: _Path, exclude: frozenset[str],
                out: Mapped) -> Iterator[_Picked]:
        try:
            found = path.search(record)
        except PathFailed as exc:
            out.problems.append(f"mapping_missing: {exc}")
            return
        if path.wildcard == ".*":
            if not isinstance(found, dict):
                out.problems.append(f"mapping_missing: path {path.text!r}: no object there "
                                    f"(got {_type(found)})")
                return
            for key, raw in found.items():
                if key not in exclude:
                    yield _Picked(str(key), None, raw)
        elif path.wildcard == "[*]":
            if not isinstance(found, list):
                out.problems.append(f"mapping_missing: path {path.text!r}: no array there "
                                    f"(got {_type(found)})")
                return
            for index, raw in enumerate(found):
                yield _Picked(None, index, raw)
        elif found is None and not path.holds_null(record):
            out.problems.append(f"mapping_missing: path {path.text!r} not found")
        else:
            yield _Picked(None, None, found)

    def _emit(self, value: _Value, picked: _Picked, record: _Record, out: Mapped,
              names: _Names) -> None:
        settings, path = value.settings, value.path
        key, index, raw = picked
        where = path.text if key is None and index is None else \
            f"{path.text} ({key if key is not None else index})"
        fields = record.fields
        fields["key"], fields["index"] = key, index
        try:
            name = settings.sensor.format_map(fields)
        except KeyError as exc:
            out.problems.append(f"mapping_sensor: the topic gives no {exc} for {where!r}")
            return
        kind, read = _classify(settings, value.numeric, raw)
        if kind is _NOT_READ:
            out.problems.append(f"mapping_value: path {where!r}: {read}")
            return
        unit = settings.unit
        if settings.unit_path is not None:
            try:
                unit = self._unit(settings.unit_path, record.document, key)
            except PathFailed as exc:
                out.problems.append(f"mapping_unit: for {where!r}: {exc}")
                return
        ident = name if key != "" and ID_RE.fullmatch(name) else \
            _free_text_id(settings.sensor, fields)
        names.plain[name] = ident
        if kind is _NUMBER:
            try:
                number = float(read) * settings.scale + settings.offset
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                out.problems.append(f"mapping_value: path {where!r}: {number!r} is not finite")
                return
            if ident != name:
                names.changed.append((False, len(out.readings), name))
            out.readings.append(Reading(ident, record.asset_id, record.ts_us, number, unit,
                                        record.quality, record.flags, record.received_us))
        else:
            if ident != name:
                names.changed.append((True, len(out.states), name))
            out.states.append(StateReading(ident, record.asset_id, record.ts_us, read,
                                           record.quality, record.flags, record.received_us))

    def _resolve(self, names: _Names, out: Mapped, catalogue: bool) -> None:
        """Rule 4 over the message's names, and catalogue entries for changed names."""
        final = suffix_collisions(names.plain)
        for is_state, row_index, name in names.changed:
            ident = final[name]
            if is_state:
                state = out.states[row_index]
                if state.sensor_id != ident:
                    state = out.states[row_index] = state._replace(sensor_id=ident)
                asset_id, datatype, unit = state.asset_id, "state", None
            else:
                reading = out.readings[row_index]
                if reading.sensor_id != ident:
                    reading = out.readings[row_index] = reading._replace(sensor_id=ident)
                asset_id, datatype, unit = reading.asset_id, "number", reading.unit
            if catalogue and ident not in self._catalogued and \
                    len(self._catalogued) < _CATALOGUED_LIMIT:
                self._catalogued.add(ident)
                out.new_sensors.append(NewSensor(ident, asset_id, name, datatype, unit))

    def _unit(self, unit_path: str, record: Any, key: str | None) -> str | None:
        # A key goes in as a quoted identifier (JSON string escaping, which is JMESPath's):
        # any key, the empty one included, makes a valid expression.
        text = unit_path.replace("{key}", orjson.dumps(key).decode()) if key is not None \
            else unit_path
        expression = self._unit_paths.get(text)
        if expression is None:
            try:
                expression = jmespath.compile(text)
            except JMESPathError as exc:
                raise PathFailed(f"unit path {text[:80]!r} is not an expression: "
                                 f"{str(exc).splitlines()[0][:_MAX_WHY]}") from None
            if len(self._unit_paths) >= _CACHE_LIMIT:
                self._unit_paths.clear()
            self._unit_paths[text] = expression
        unit = _search(expression, text, record)
        if unit is None:
            raise PathFailed(f"unit path {text!r} not found")
        if not isinstance(unit, str):
            raise PathFailed(f"unit at path {text!r} is {_type(unit)}, not text")
        return unit


_NUMBER = object()
_NOT_READ = object()


def _free_text_id(template: str, fields: dict[str, Any]) -> str:
    """The id of a name that is not one (rules 1-3 of edge/ingest/sensor_ids.py), each
    template part with nothing left (a Cyrillic key, an empty key) made `m-<digest>`."""
    text = template.format_map({name: id_part(value) if isinstance(value, str) else value
                                for name, value in fields.items()})
    return text if ID_RE.fullmatch(text) else sensor_id(text)


def _in_record(problem: str, number: int) -> str:
    reason, _, detail = problem.partition(": ")
    return f"{reason}: record {number}: {detail}"


def _classify(settings: ValueMapping, numeric: bool, raw: Any) -> tuple[Any, Any]:
    """(_NUMBER, number) | (None, state text or None for null) | (_NOT_READ, why)."""
    if raw is None:
        return None, None  # a null: kept as a null state
    if settings.states is not None:
        code = _code(raw)
        if code in settings.states:
            return None, settings.states[code]
        return _NOT_READ, f"{code[:40]!r} is not one of the declared states {sorted(settings.states)}"
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if numeric:
        if is_number:
            return _NUMBER, raw
        return _NOT_READ, f"{_type(raw)} {_text(raw)[:40]!r} is not a number" + (
            "" if settings.kind == "number" else " (unit, scale or offset make this mapping "
                                                 "numeric)")
    if isinstance(raw, dict | list):
        return _NOT_READ, f"{_type(raw)} is neither a number nor a state"
    if settings.kind == "state" or not is_number:
        return None, _text(raw)
    return _NUMBER, raw


def _integral(raw: Any) -> bool:
    return isinstance(raw, float) and raw.is_integer()


def _code(raw: Any) -> str:
    """A code as the declared maps spell it: a float with no fraction (2.0, as many PLCs
    send integers) is the integer code '2'."""
    return str(int(raw)) if _integral(raw) else _text(raw)


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return raw
    try:
        return orjson.dumps(raw).decode()
    except TypeError:  # an integer beyond 64 bits (only from a document not read by orjson)
        return str(raw)


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _why(exc: Exception) -> str:
    return exc.detail if isinstance(exc, PayloadError) else str(exc)


def _epoch_number(raw: Any, fmt: str) -> int | float:
    """An epoch number, from JSON or a string (integers stay integers: exact)."""
    number: Any = raw
    if isinstance(raw, str):
        try:
            number = int(raw)
        except ValueError:
            number = float(raw)
    if isinstance(number, bool) or not isinstance(number, int | float) or \
            not math.isfinite(number) or number < 0:
        raise ValueError(f"{str(raw)[:40]!r} is not an epoch number ({fmt})")
    return number


def _ts_parser(settings: TimestampMapping) -> Callable[[Any], int]:
    fmt = settings.format
    if fmt in _US_PER_UNIT:
        us_per = _US_PER_UNIT[fmt]

        def epoch(raw: Any) -> int:
            # The same arithmetic as the `auto` codec (edge/ingest/timestamps.py), so a
            # device moved between codecs keeps its keys: integers stay exact.
            number = _epoch_number(raw, fmt)
            if fmt == "epoch_ns":
                return int(number) // 1000
            if isinstance(number, int) or fmt == "epoch_us":
                return int(number) * us_per
            return round(number * us_per)
        return epoch
    if fmt == "rfc3339":
        return parse_ts_us
    pattern = fmt.split(":", 1)[1]
    zone = ZoneInfo(settings.zone) if settings.zone else None

    def strftime(raw: Any) -> int:
        if not isinstance(raw, str):
            raise ValueError(f"{_type(raw)} is not a {pattern!r} time")
        moment = datetime.strptime(raw, pattern)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return datetime_to_us(moment)
    return strftime
