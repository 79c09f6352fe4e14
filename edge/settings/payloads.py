"""Payload formats: field mappings for multi-value JSON, and Sparkplug B.

A subscription's `codec` says how its messages are read: `auto` (one reading per JSON object,
an array of them, or a bare number: the default), `mapping` (the `mapping:` block below picks
values out of any JSON by path) or `sparkplug_b` (spBv1.0 protobuf; `sparkplug:` section).

    subscriptions:
      - topic: plant/+/line/+/telemetry
        template: plant/{site}/line/{asset}/telemetry
        codec: mapping
        mapping:
          ts: {path: time, format: epoch_ms}
          values:
            - {path: "values.*", sensor: "{asset}/{key}"}            # every field of values
            - {path: data.motor.current, sensor: "{asset}/motor_current", unit: A}
            - {path: state, sensor: "{asset}/state", states: {RUNNING: running, IDLE: idle}}

Paths are JMESPath expressions (https://jmespath.org): `data.motor.current`, `samples[0].v`.
A path whose last step is `*` maps every field of the object before it (`*` alone: of the
message), with `{key}` the field's name (`exclude` leaves keys out); `[*]` maps every
element of an array, with `{index}` its position: the sensor template needs that one, and
both names are reserved (no topic level, no asset template uses them). `records`
splits one message into several (arrays of samples): each path is then read per record.
`kind` is auto (numbers are readings, text and booleans states; a unit, unit path, scale
or offset makes it number), number or state. Contradictions (states with a scale, a
wildcard time path, a strftime directive that cannot parse) are refused at load, not met
on every message.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.settings.base import Section

TS_FORMATS = ("epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "rfc3339")
_STRFTIME = "strftime:"
MAX_STATE_NAME = 256  # the longest state the pipeline stores
_TIME_OF_DAY = re.compile(r"%[HIMSTRXc]")  # directives that write a time of day
_PLACEHOLDER = re.compile(r"[a-z_][a-z0-9_]*")
# What a wildcard maps: reserved in topic templates and the asset template.
WILDCARD_FIELDS = frozenset({"key", "index"})
# Value-mapping settings that only make sense for numbers: they imply `kind: number`.
NUMERIC_SETTINGS = frozenset({"unit", "unit_path", "scale", "offset"})


def compiled_path(path: str) -> str:
    """`path` if it is a JMESPath expression (a wildcard suffix allowed), else ValueError."""
    base = path
    if path == "*":
        return path
    if path.endswith(".*"):
        base = path[:-2]
    elif path.endswith("[*]"):
        base = path[:-3]
    if base in ("", "@"):
        return path
    try:
        jmespath.compile(base)
    except JMESPathError as exc:
        raise ValueError(f"{path!r} is not a JMESPath expression: {exc}") from None
    return path


def wildcard(path: str) -> str | None:
    """The wildcard a path ends in: '.*' (every field of an object), '[*]' (every element
    of an array) or None."""
    if path == "*" or path.endswith(".*"):
        return ".*"
    return "[*]" if path.endswith("[*]") else None


def _single_path(path: str) -> str:
    """A path that must give one value (a time, a quality): no wildcard."""
    compiled_path(path)
    if wildcard(path) is not None:
        raise ValueError(f"{path!r} ends in a wildcard, which maps many values; this path "
                         "must name one")
    return path


def text_map(raw: Any, what: str) -> Any:
    """A YAML mapping of codes to names: say how to write what YAML reads as booleans or
    numbers (`true: running` is the boolean True, `on` too), instead of pydantic's
    'Input should be a valid string'."""
    if not isinstance(raw, dict):
        return raw
    for code, name in raw.items():
        for item in (code, name):
            if isinstance(item, bool | int | float):
                raise ValueError(
                    f"{what}: {item!r} is not text (YAML reads unquoted true/false/yes/no/"
                    "on/off as booleans, and numbers as numbers): quote it, e.g. "
                    "{'true': running, '0': stopped}")
    return raw


def placeholders(template: str) -> set[str]:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    for name in names:
        if not _PLACEHOLDER.fullmatch(name):
            raise ValueError(f"placeholder {{{name}}} is not a plain name")
    return names


class TimestampMapping(Section):
    """Where a record's time is, and how it is written."""

    path: str
    format: str = Field(
        default="rfc3339",
        description="epoch_s, epoch_ms, epoch_us, epoch_ns, rfc3339, or strftime:<format> "
                    "(with `zone` when the format has no %z).")
    zone: str | None = Field(default=None, description="IANA zone for strftime times, e.g. "
                                                        "Europe/Berlin.")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        return _single_path(path)

    @field_validator("format")
    @classmethod
    def _valid_directives(cls, fmt: str) -> str:
        if fmt.startswith(_STRFTIME):
            pattern = fmt[len(_STRFTIME):]
            if "%" not in pattern:
                raise ValueError("strftime: needs a format such as %d.%m.%Y %H:%M:%S")
            # A bad directive (%Q, %-d) would fail on every message: try it on a sample (in
            # the afternoon, so that a 12-hour %I without %p shows).
            sample = datetime(2026, 11, 24, 22, 30, 7, 123456, tzinfo=UTC)
            try:
                read = datetime.strptime(sample.strftime(pattern), pattern)
            except (ValueError, re.error) as exc:  # re.error: a directive given twice
                raise ValueError(f"strftime format {pattern!r} cannot read the time it "
                                 f"writes: {exc}") from None
            if read.year != sample.year:
                raise ValueError(f"strftime format {pattern!r} has no year: every time would "
                                 f"be read as {read.year}")
            if _TIME_OF_DAY.search(pattern) and read.hour != sample.hour:
                raise ValueError(f"strftime format {pattern!r} does not read the hour back "
                                 "(a 12-hour %I needs %p; %M or %S need an hour)")
        return fmt

    @model_validator(mode="after")
    def _known_format(self) -> TimestampMapping:
        if self.format.startswith(_STRFTIME):
            pattern = self.format[len(_STRFTIME):]
            if "%z" not in pattern and self.zone is None:
                raise ValueError("a strftime format without %z needs `zone` (the time zone "
                                 "the device writes in)")
        elif self.format not in TS_FORMATS:
            raise ValueError(f"format must be one of {list(TS_FORMATS)} or strftime:<format>")
        if self.zone is not None:
            try:
                ZoneInfo(self.zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {self.zone!r}") from None
        return self


class QualityMapping(Section):
    path: str
    map: dict[str, str] = Field(default_factory=dict,
                                description="Device codes to quality names, e.g. {'0': good}; "
                                            "codes not listed are kept as they are.")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        return _single_path(path)

    @field_validator("map", mode="before")
    @classmethod
    def _text_codes(cls, raw: Any) -> Any:
        return text_map(raw, "quality codes and names are text")


class ValueMapping(Section):
    """One value (or, with a wildcard, many) picked out of a record."""

    path: str = Field(min_length=1, description="JMESPath; '@' is the record itself.")
    sensor: str = Field(min_length=1,
                        description="Sensor id template: topic fields, {key} (for .*), "
                                    "{index} (for [*]).")
    unit: str | None = Field(default=None, description="A constant unit (implies kind: number).")
    unit_path: str | None = Field(default=None,
                                  description="Where the unit is (may use {key}; implies "
                                              "kind: number).")
    scale: float = Field(default=1.0, allow_inf_nan=False,
                         description="value * scale + offset (implies kind: number); not 0")
    offset: float = Field(default=0.0, allow_inf_nan=False)
    states: dict[str, str] | None = Field(
        default=None, description="Values that are states, and their names (true/false for "
                                  "booleans, quoted): {RUNNING: running, '0': stopped}.")
    kind: Literal["auto", "number", "state"] = Field(
        default="auto", description="auto: numbers are readings, booleans and strings states "
                                    "(unit, unit_path, scale or offset make it number); "
                                    "number: anything else is quarantined; state: kept as text.")
    exclude: list[str] = Field(default_factory=list,
                               description="Keys a .* path leaves out (e.g. ts, id).")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        return compiled_path(path)

    @field_validator("sensor")
    @classmethod
    def _names_what_the_path_maps(cls, sensor: str, info: ValidationInfo) -> str:
        path = info.data.get("path")
        if path is None:
            return sensor  # the path itself is wrong, and said so
        fields = placeholders(sensor) & WILDCARD_FIELDS
        needed = {".*": "key", "[*]": "index", None: None}[wildcard(path)]
        if needed is None and fields:
            raise ValueError("{key} and {index} name what a wildcard path (.* or [*]) maps; "
                             f"{path!r} has none")
        if needed is not None and fields != {needed}:
            raise ValueError(f"a {wildcard(path)} path maps many values: the sensor template "
                             f"needs {{{needed}}} (and only it) to tell them apart "
                             f"({'key: the field name' if needed == 'key' else 'index: the position'})")
        return sensor

    @field_validator("states", mode="before")
    @classmethod
    def _text_states(cls, raw: Any) -> Any:
        return text_map(raw, "states are text")

    @field_validator("scale")
    @classmethod
    def _scale_keeps_the_value(cls, scale: float) -> float:
        if scale == 0:
            raise ValueError("scale 0 would make every value the offset")
        return scale

    @field_validator("states")
    @classmethod
    def _states_are_not_numbers(cls, states: dict[str, str] | None,
                                info: ValidationInfo) -> dict[str, str] | None:
        numeric = _numeric_settings(info)
        if states is not None and not states:
            raise ValueError("states is empty: declare at least one state, or leave states out")
        if states is not None and numeric:
            raise ValueError(f"states are names, not numbers: {sorted(numeric)} do not apply "
                             "to them")
        for name in (states or {}).values():
            if not name or "\x00" in name or len(name) > MAX_STATE_NAME:
                # Stored as text (PostgreSQL cannot hold NUL), as long as a state may be.
                raise ValueError(f"state name {name[:40]!r} is empty, holds a NUL character "
                                 f"or is longer than {MAX_STATE_NAME} characters")
        return states

    @field_validator("kind")
    @classmethod
    def _kind_fits(cls, kind: str, info: ValidationInfo) -> str:
        if kind == "number" and info.data.get("states") is not None:
            raise ValueError("kind: number contradicts states (states are names)")
        numeric = _numeric_settings(info)
        if kind == "state" and numeric:
            raise ValueError(f"kind: state contradicts {sorted(numeric)} (they apply to numbers)")
        return kind

    @model_validator(mode="after")
    def _consistent(self) -> ValueMapping:
        if self.unit is not None and self.unit_path is not None:
            raise ValueError("give unit or unit_path, not both")
        if self.unit_path is not None:
            compiled_path(self.unit_path.replace("{key}", "k"))
            if "{key}" in self.unit_path and wildcard(self.path) != ".*":
                raise ValueError(f"unit_path {self.unit_path!r} uses {{key}}, but path "
                                 f"{self.path!r} has no keys: only a '.*' path (the fields "
                                 "of an object) has them")
        if self.exclude and wildcard(self.path) != ".*":
            raise ValueError("exclude applies to a .* path only")
        return self

    @property
    def numeric(self) -> bool:
        """Whether only numbers are read: `kind: number`, or a unit, scale or offset given."""
        return self.kind == "number" or (
            self.kind == "auto" and bool(self.model_fields_set & NUMERIC_SETTINGS))


def _numeric_settings(info: ValidationInfo) -> set[str]:
    """The numeric settings given so far (a default scale of 1 and offset of 0 count
    as given only when written)."""
    data = info.data
    given = {name for name in ("unit", "unit_path") if data.get(name) is not None}
    if data.get("scale", 1.0) != 1.0:
        given.add("scale")
    if data.get("offset", 0.0) != 0.0:
        given.add("offset")
    return given


class MappingSettings(Section):
    """How one JSON message becomes readings and states (`codec: mapping`)."""

    records: str | None = Field(default=None, description="Path to an array of records "
                                                          "(samples); default: the message.")
    ts: TimestampMapping | None = Field(default=None,
                                        description="Default: the arrival time (flagged).")
    quality: QualityMapping | None = None
    asset: str | None = Field(default=None, description="Asset id template (topic fields); "
                                                        "default: the topic's {asset}.")
    values: list[ValueMapping] = Field(min_length=1)

    @field_validator("records")
    @classmethod
    def _records_path(cls, path: str | None) -> str | None:
        if path is not None and wildcard(path) == ".*":
            raise ValueError(f"records {path!r} must name an array (like 'samples' or "
                             "'samples[*]'); '.*' would read an object's fields")
        return None if path is None else compiled_path(path)

    @field_validator("asset")
    @classmethod
    def _asset_from_the_topic(cls, template: str | None) -> str | None:
        if template is not None and placeholders(template) & WILDCARD_FIELDS:
            raise ValueError("the asset is one per message: {key} and {index} (what a "
                             "wildcard maps) cannot name it; use topic fields")
        return template

    def overlaps(self) -> list[str]:
        """Where a wildcard value mapping also maps a field that an explicit one reads, into
        the same sensor id (`*` takes `state` raw while `state` is also mapped with
        `states`): one of the two values is refused on every message that has the field."""
        found = []
        for w, wide in enumerate(self.values):
            which = wildcard(wide.path)
            if which is None:
                continue
            name = "key" if which == ".*" else "index"
            base = "" if wide.path == "*" else wide.path[: -len(which)]
            head, _, tail = wide.sensor.partition(f"{{{name}}}")
            pattern = re.compile(re.escape(head) + (r"(.+)" if name == "key" else r"(\d+)")
                                 + re.escape(tail))
            for e, exact in enumerate(self.values):
                match = pattern.fullmatch(exact.sensor) if wildcard(exact.path) is None else None
                if match is None or match[1] in wide.exclude or \
                        exact.path not in _field_paths(base, name, match[1]):
                    continue
                hint = f" (add exclude: [{match[1]}] to values.{w})" if name == "key" else ""
                found.append(f"values.{w} ({wide.path!r}) also maps {exact.path!r}, which "
                             f"values.{e} reads, into the same sensor {exact.sensor!r}: one "
                             "of the two values is refused (conflicting_duplicate) on every "
                             f"message with that field{hint}")
        return found


def _field_paths(base: str, name: str, part: str) -> set[str]:
    """The ways a path names the field `part` of the object (or array) at `base`."""
    if name == "index":
        return {f"{base}[{part}]"}
    quoted = f'"{part}"'
    return {part, quoted} if base == "" else {f"{base}.{part}", f"{base}.{quoted}"}


class SparkplugSettings(Section):
    """How Sparkplug B (spBv1.0) metrics become sensors, and the gateway's role."""

    sensor_id: str = Field(default="{group}/{node}/{device}/{metric}",
                           description="Node metrics leave out {device} and its slash.")
    asset: str = Field(default="{group}/{node}/{device}",
                       description="A device is an asset; a node's own metrics: {group}/{node}.")
    request_rebirth: bool = Field(
        default=False, description="Send NCMD Node Control/Rebirth on a seq gap, an unknown "
                                   "alias or data before a birth (off: read-only deployments).")
    rebirth_min_interval_s: float = Field(default=30.0, ge=1,
                                          description="At most one request per node this often.")
    max_birth_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="NBIRTH/DBIRTH size limit (a birth names every metric with its properties: "
                    "1,500 tags are ~150 KB); other messages keep ingest.max_payload_bytes.")
    primary_host_id: str | None = Field(
        default=None, description="Publish STATE as this primary host application (never "
                                  "unless set): spBv1.0/STATE/<id>, retained, with a will.")

    @field_validator("sensor_id", "asset")
    @classmethod
    def _known_fields(cls, template: str, info: ValidationInfo) -> str:
        names = placeholders(template)
        unknown = names - {"group", "node", "device", "metric"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use group, node, "
                             "device, metric")
        if info.field_name == "sensor_id" and "metric" not in names:
            raise ValueError("needs {metric}: without it every metric of a device gets the "
                             "same sensor id")
        return template
