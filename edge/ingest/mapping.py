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
from jmespath.parser import ParsedResult

from edge.errors import PayloadError
from edge.ingest.sensor_ids import ID_RE, sensor_id
from edge.ingest.timestamps import parse_ts_us
from edge.records import FLAG_TS_FROM_ARRIVAL, Reading, StateReading
from edge.settings.payloads import MappingSettings, TimestampMapping, ValueMapping
from edge.times import datetime_to_us

_UNITS_PER_US = {"epoch_s": 1e-6, "epoch_ms": 1e-3, "epoch_us": 1.0, "epoch_ns": 1e3}
_CACHE_LIMIT = 10_000
_CATALOGUED_LIMIT = 100_000
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


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
    fields: Mapping[str, str]
    asset_id: str | None
    ts_us: int
    quality: str | None
    flags: int
    received_us: int


class _Picked(NamedTuple):
    key: str | None
    position: int | None  # `index` would shadow tuple.index
    raw: Any


class _Path:
    """A compiled path, with its wildcard (None, '.*' or '[*]')."""

    __slots__ = ("expression", "text", "wildcard")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wildcard = ".*" if text == "*" or text.endswith(".*") else \
            "[*]" if text.endswith("[*]") else None
        base = "" if text == "*" else text[: -len(self.wildcard)] if self.wildcard else text
        self.expression: ParsedResult | None = None if base in ("", "@") else jmespath.compile(base)

    def search(self, document: Any) -> Any:
        return document if self.expression is None else self.expression.search(document)

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


class FieldMapping:
    """One subscription's mapping, compiled."""

    def __init__(self, settings: MappingSettings) -> None:
        self._settings = settings
        self._records = _Path(settings.records) if settings.records else None
        self._ts = settings.ts
        self._ts_path = _Path(settings.ts.path) if settings.ts else None
        self._ts_parse = _ts_parser(settings.ts) if settings.ts else None
        self._quality_path = _Path(settings.quality.path) if settings.quality else None
        self._values = [(value, _Path(value.path), frozenset(value.exclude))
                        for value in settings.values]
        self._unit_paths: dict[str, ParsedResult] = {}
        self._catalogued: set[str] = set()

    def decode(self, document: Any, fields: Mapping[str, str], received_us: int) -> Mapped:
        out = Mapped()
        for record in self._each_record(document, out):
            ts_us, flags = self._record_ts(record, received_us, out)
            if ts_us is None:
                continue
            context = _Record(record, fields, self._asset(fields, out), ts_us,
                              self._record_quality(record, out), flags, received_us)
            for value_settings, path, exclude in self._values:
                for picked in self._picked(record, path, exclude, out):
                    self._emit(value_settings, path, picked, context, out)
        return out

    # -- records, time, quality, asset ------------------------------------------------------
    def _each_record(self, document: Any, out: Mapped) -> Iterator[Any]:
        if self._records is None:
            yield document
            return
        records = self._records.search(document)
        if not isinstance(records, list):
            out.problems.append(f"mapping_records: path {self._records.text!r} is not an array "
                                f"(got {_type(records)})")
            return
        yield from records

    def _record_ts(self, record: Any, received_us: int, out: Mapped) -> tuple[int | None, int]:
        if self._ts_path is None or self._ts_parse is None:
            return received_us, FLAG_TS_FROM_ARRIVAL
        raw = self._ts_path.search(record)
        if raw is None:
            out.problems.append(f"mapping_ts: path {self._ts_path.text!r} not found")
            return None, 0
        try:
            return self._ts_parse(raw), 0
        except (PayloadError, ValueError, OverflowError, TypeError) as exc:
            out.problems.append(f"mapping_ts: path {self._ts_path.text!r}: {_why(exc)}")
            return None, 0

    def _record_quality(self, record: Any, out: Mapped) -> str | None:
        if self._quality_path is None or self._settings.quality is None:
            return None
        raw = self._quality_path.search(record)
        if raw is None:
            return None
        code = _text(raw)
        return self._settings.quality.map.get(code, code)

    def _asset(self, fields: Mapping[str, str], out: Mapped) -> str | None:
        template = self._settings.asset
        if template is None:
            return fields.get("asset")
        try:
            return sensor_id(template.format(**fields))
        except KeyError as exc:
            out.problems.append(f"mapping_asset: the topic gives no {exc}")
            return None

    # -- values ---------------------------------------------------------------------------
    def _picked(self, record: Any, path: _Path, exclude: frozenset[str],
                out: Mapped) -> Iterator[_Picked]:
        found = path.search(record)
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

    def _emit(self, settings: ValueMapping, path: _Path, picked: _Picked, record: _Record,
              out: Mapped) -> None:
        key, index, raw = picked
        where = path.text if key is None and index is None else \
            f"{path.text} ({key if key is not None else index})"
        try:
            name = settings.sensor.format(**record.fields, key=key, index=index)
        except KeyError as exc:
            out.problems.append(f"mapping_sensor: the topic gives no {exc} for {where!r}")
            return
        ident = name if ID_RE.fullmatch(name) else sensor_id(name)
        kind, value = _classify(settings, raw)
        if kind is _NOT_READ:
            out.problems.append(f"mapping_value: path {where!r}: {value}")
            return
        unit = settings.unit if settings.unit is not None else \
            self._unit(settings, record.document, key)
        if kind is _NUMBER:
            number = float(value) * settings.scale + settings.offset
            if not math.isfinite(number):
                out.problems.append(f"mapping_value: path {where!r}: {number!r} is not finite")
                return
            out.readings.append(Reading(ident, record.asset_id, record.ts_us, number, unit,
                                        record.quality, record.flags, record.received_us))
        else:
            out.states.append(StateReading(ident, record.asset_id, record.ts_us, value,
                                           record.quality, record.flags, record.received_us))
        if ident != name and ident not in self._catalogued and \
                len(self._catalogued) < _CATALOGUED_LIMIT:
            self._catalogued.add(ident)
            out.new_sensors.append(NewSensor(ident, record.asset_id, name,
                                             "number" if kind is _NUMBER else "state", unit))

    def _unit(self, settings: ValueMapping, record: Any, key: str | None) -> str | None:
        if settings.unit_path is None:
            return None
        text = settings.unit_path.replace("{key}", orjson.dumps(key).decode()) if key else \
            settings.unit_path
        expression = self._unit_paths.get(text)
        if expression is None:
            if len(self._unit_paths) >= _CACHE_LIMIT:
                self._unit_paths.clear()
            expression = self._unit_paths[text] = jmespath.compile(text)
        unit = expression.search(record)
        return unit if isinstance(unit, str) else None


_NUMBER = object()
_NOT_READ = object()


def _classify(settings: ValueMapping, raw: Any) -> tuple[Any, Any]:
    """(_NUMBER, number) | (None, state text or None for null) | (_NOT_READ, why)."""
    if raw is None:
        return None, None  # a null: kept as a null state
    if settings.states is not None:
        code = _text(raw)
        if code in settings.states:
            return None, settings.states[code]
        return _NOT_READ, f"{code[:40]!r} is not one of the declared states {sorted(settings.states)}"
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if settings.kind == "number":
        return (_NUMBER, raw) if is_number else (_NOT_READ, f"{_type(raw)} is not a number")
    if isinstance(raw, dict | list):
        return _NOT_READ, f"{_type(raw)} is neither a number nor a state"
    if settings.kind == "state" or not is_number:
        return None, _text(raw)
    return _NUMBER, raw


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return raw if isinstance(raw, str) else orjson.dumps(raw).decode()


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _why(exc: Exception) -> str:
    return exc.detail if isinstance(exc, PayloadError) else str(exc)


def _ts_parser(settings: TimestampMapping) -> Callable[[Any], int]:
    fmt = settings.format
    if fmt in _UNITS_PER_US:
        per_us = _UNITS_PER_US[fmt]

        def epoch(raw: Any) -> int:
            number = float(raw) if isinstance(raw, str) else raw
            if isinstance(number, bool) or not isinstance(number, int | float) or \
                    not math.isfinite(number) or number < 0:
                raise ValueError(f"{raw!r} is not an epoch number ({fmt})")
            return round(number / per_us)
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
