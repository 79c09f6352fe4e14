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
element of an array, with `{index}` its position. `records`
splits one message into several (arrays of samples): each path is then read per record.
"""

from __future__ import annotations

import re
import string
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field, field_validator, model_validator

from edge.settings.base import Section

TS_FORMATS = ("epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "rfc3339")
_STRFTIME = "strftime:"
_PLACEHOLDER = re.compile(r"[a-z_][a-z0-9_]*")


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
        return compiled_path(path)

    @model_validator(mode="after")
    def _known_format(self) -> TimestampMapping:
        if self.format.startswith(_STRFTIME):
            pattern = self.format[len(_STRFTIME):]
            if "%" not in pattern:
                raise ValueError("strftime: needs a format such as %d.%m.%Y %H:%M:%S")
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
        return compiled_path(path)


class ValueMapping(Section):
    """One value (or, with a wildcard, many) picked out of a record."""

    path: str
    sensor: str = Field(description="Sensor id template: topic fields, {key}, {index}.")
    unit: str | None = Field(default=None, description="A constant unit.")
    unit_path: str | None = Field(default=None,
                                  description="Where the unit is (may use {key}).")
    scale: float = Field(default=1.0, description="value * scale + offset")
    offset: float = 0.0
    states: dict[str, str] | None = Field(
        default=None, description="Values that are states, and their names (true/false for "
                                  "booleans): {RUNNING: running, '0': stopped}.")
    kind: Literal["auto", "number", "state"] = Field(
        default="auto", description="auto: numbers are readings, booleans and strings states.")
    exclude: list[str] = Field(default_factory=list,
                               description="Keys a .* path leaves out (e.g. ts, id).")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        return compiled_path(path)

    @model_validator(mode="after")
    def _consistent(self) -> ValueMapping:
        if self.unit is not None and self.unit_path is not None:
            raise ValueError("give unit or unit_path, not both")
        if self.unit_path is not None:
            compiled_path(self.unit_path.replace("{key}", "k"))
        wildcard = self.path == "*" or self.path.endswith((".*", "[*]"))
        if self.exclude and not (self.path == "*" or self.path.endswith(".*")):
            raise ValueError("exclude applies to a .* path only")
        fields = placeholders(self.sensor)
        if not wildcard and fields & {"key", "index"}:
            raise ValueError("{key} and {index} name what a wildcard path (.* or [*]) maps")
        if wildcard and not fields & {"key", "index"}:
            raise ValueError("a wildcard path maps many values: the sensor template needs "
                             "{key} (for .*) or {index} (for [*])")
        return self


class MappingSettings(Section):
    """How one JSON message becomes readings and states (`codec: mapping`)."""

    records: str | None = Field(default=None, description="Path to an array of records "
                                                          "(samples); default: the message.")
    ts: TimestampMapping | None = Field(default=None,
                                        description="Default: the arrival time (flagged).")
    quality: QualityMapping | None = None
    asset: str | None = Field(default=None, description="Asset id template; default: the "
                                                        "topic's {asset}.")
    values: list[ValueMapping] = Field(min_length=1)

    @field_validator("records")
    @classmethod
    def _records_path(cls, path: str | None) -> str | None:
        return None if path is None else compiled_path(path)


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
    def _known_fields(cls, template: str) -> str:
        unknown = placeholders(template) - {"group", "node", "device", "metric"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use group, node, "
                             "device, metric")
        return template
