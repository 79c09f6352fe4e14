"""Where readings come from: the gateway, MQTT (TLS, subscriptions), ingest limits, assets, sensors."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.detection.settings import AssetDetectionSettings, DetectorSettings, LimitSettings
from edge.settings.base import TEMPLATE_FIELDS, Identifier, Section, secret_from_file
from edge.settings.payloads import WILDCARD_FIELDS, MappingSettings, placeholders
from edge.units import KNOWN_UNITS


class GatewaySettings(Section):
    id: Identifier = Field(description="Stable id of this gateway; stamped on every reading.")
    site: str | None = Field(default=None, description="Site name, for context only.")
    shutdown_timeout_s: float = Field(
        default=15.0, gt=0, le=600,
        description="On SIGTERM: time to commit and acknowledge in-flight work before giving up.",
    )


class TlsSettings(Section):
    enabled: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle that signs the broker.")
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client private key (mutual TLS).")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class ReconnectSettings(Section):
    initial_delay_s: float = Field(default=0.5, gt=0, le=60)
    max_delay_s: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _ordered(self) -> ReconnectSettings:
        if self.max_delay_s < self.initial_delay_s:
            raise ValueError("max_delay_s must be >= initial_delay_s")
        return self


class SubscriptionSettings(Section):
    """One topic filter, the QoS to subscribe with, and how its topic levels map to ids."""

    topic: str = Field(min_length=1, description="MQTT topic filter; + and # allowed.")
    qos: Literal[0, 1, 2] = 1
    codec: Literal["auto", "mapping", "sparkplug_b"] = Field(
        default="auto", description="auto: JSON readings or a bare number; mapping: the "
                                    "`mapping` block; sparkplug_b: spBv1.0 protobuf.")
    template: str | None = Field(
        default=None,
        description="Names topic levels, e.g. factory/{site}/{asset}/{sensor}.",
    )
    sensor_id: str | None = Field(
        default=None,
        description=(
            "How a sensor id is built from template fields when the payload has none; "
            "default {asset}/{sensor} (or {sensor} when the template has no asset)."
        ),
    )
    mapping: MappingSettings | None = None

    @field_validator("topic")
    @classmethod
    def _valid_filter(cls, topic: str) -> str:
        levels = topic.split("/")
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != len(levels) - 1):
                raise ValueError("'#' must be a whole level and the last one")
            if "+" in level and level != "+":
                raise ValueError("'+' must be a whole level")
        return topic

    @field_validator("template")
    @classmethod
    def _valid_template(cls, template: str | None, info: ValidationInfo) -> str | None:
        if template is None:
            return None
        names = placeholders(template)  # plain names only
        if names & WILDCARD_FIELDS:
            raise ValueError(f"{{key}} and {{index}} are reserved (what a mapping's wildcard "
                             f"maps); give the topic level another name than "
                             f"{sorted(names & WILDCARD_FIELDS)}")
        # A mapping may name any topic level (its templates use them); elsewhere only the
        # fields that mean something, so that a typo is caught.
        unknown = names - TEMPLATE_FIELDS
        if unknown and info.data.get("codec") != "mapping":
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use "
                             f"{sorted(TEMPLATE_FIELDS)} (a mapping may name any level)")
        return template

    @model_validator(mode="after")
    def _template_fits_the_filter(self) -> SubscriptionSettings:
        # A template that can never match a topic of its filter would quarantine every
        # message (field trial item 13): say so at load time.
        if self.template is not None and not _can_match(self.topic, self.template):
            raise ValueError(f"template {self.template!r} can never match a topic of "
                             f"{self.topic!r} (levels differ)")
        return self

    @model_validator(mode="after")
    def _sensor_id_uses_template_fields(self) -> SubscriptionSettings:
        if self.sensor_id is not None:
            available = _placeholders(self.template) if self.template else set()
            missing = _placeholders(self.sensor_id) - available
            if missing:
                raise ValueError(f"sensor_id uses {sorted(missing)}, which the template lacks")
        return self

    @model_validator(mode="after")
    def _codec_fits(self) -> SubscriptionSettings:
        if (self.codec == "mapping") != (self.mapping is not None):
            raise ValueError("codec: mapping needs a mapping block (and only it takes one)")
        if self.codec == "sparkplug_b" and not self.topic.startswith(("spBv1.0/", "#", "+")):
            raise ValueError("codec: sparkplug_b subscribes to spBv1.0/<group>/... topics")
        if self.mapping is not None:
            available = _placeholders(self.template) if self.template else set()
            for index, value in enumerate(self.mapping.values):
                missing = placeholders(value.sensor) - available - WILDCARD_FIELDS
                if missing:
                    raise ValueError(f"mapping.values.{index}.sensor uses {sorted(missing)}, "
                                     "which neither the template nor a wildcard gives")
            if self.mapping.asset is not None:
                missing = placeholders(self.mapping.asset) - available
                if missing:
                    raise ValueError(f"mapping.asset uses {sorted(missing)}, which the "
                                     "template lacks")
        return self

    @property
    def sensor_id_format(self) -> str | None:
        """The format that builds a sensor id from topic fields, or None if it cannot."""
        if self.sensor_id is not None:
            return self.sensor_id
        fields = _placeholders(self.template) if self.template else set()
        if "sensor" not in fields:
            return None
        return "{asset}/{sensor}" if "asset" in fields else "{sensor}"


def _can_match(topic_filter: str, template: str) -> bool:
    """Whether some topic matches both the MQTT filter and the template's levels."""
    filter_levels = topic_filter.split("/")
    template_levels = template.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return len(template_levels) >= index
        if index >= len(template_levels):
            return False
        placeholder = template_levels[index].startswith("{")
        if level != "+" and not placeholder and level != template_levels[index]:
            return False
    return len(filter_levels) == len(template_levels)


def filters_intersect(first: str, second: str) -> bool:
    """Whether some topic matches both MQTT topic filters."""
    first_levels, second_levels = first.split("/"), second.split("/")
    for index in range(max(len(first_levels), len(second_levels))):
        a = first_levels[index] if index < len(first_levels) else None
        b = second_levels[index] if index < len(second_levels) else None
        if a == "#" or b == "#":
            return True
        if a is None or b is None:
            return False
        if "+" not in (a, b) and a != b:
            return False
    return True


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None


class MqttSettings(Section):
    host: str = Field(default="127.0.0.1", min_length=1, description="The broker's host name or address.")
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = Field(
        default=None,
        max_length=64,
        description="Stable client id, so the broker keeps our session; default edge-<gateway.id>.",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT 5 lets us raise the in-flight window (receive_maximum)."
    )
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        le=0xFFFFFFFF,
        description="How long the broker keeps our session (and queued messages) while we are away.",
    )
    receive_maximum: int = Field(
        default=65535,
        ge=1,
        le=65535,
        description="Unacknowledged QoS>=1 messages the broker may send us (MQTT 5).",
    )
    tls: TlsSettings = TlsSettings()
    reconnect: ReconnectSettings = ReconnectSettings()
    subscriptions: list[SubscriptionSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _password_from_file(self) -> MqttSettings:
        secret_from_file(self, "password", "password_file")
        return self


class IngestLimits(Section):
    max_payload_bytes: int = Field(default=65536, ge=16, le=16 * 1024 * 1024)
    max_readings_per_message: int = Field(default=1000, ge=1)
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="Readings stamped further ahead are rejected."
    )
    accept_unknown_sensors: bool = Field(
        default=True, description="false: only sensors listed under `sensors` are accepted."
    )
    max_sensors: int = Field(
        default=20_000, ge=1,
        description="Distinct sensors tracked at once; readings of further new sensors are "
                    "quarantined as too_many_sensors (configured sensors always pass).")
    sensor_idle_release_s: float = Field(
        default=7 * 86_400.0, gt=0,
        description="A sensor with no reading for this long is forgotten (its place is free).")
    min_reading_time: datetime = Field(
        default=datetime(2020, 1, 1, tzinfo=UTC),
        description="Readings stamped before this (e.g. the install date) are stored but "
                    "flagged clock_suspect and not fed to detection.")
    max_reading_age_s: float = Field(
        default=30 * 86_400.0, gt=0,
        description="Readings stamped further behind the gateway's clock are stored but "
                    "flagged clock_suspect and not fed to detection.")

    @field_validator("min_reading_time")
    @classmethod
    def _aware(cls, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("give a UTC offset, e.g. 2024-06-01T00:00:00Z")
        return moment


class AssetSettings(Section):
    name: str | None = None
    type: str | None = None
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    location: str | None = None
    detection: AssetDetectionSettings | None = Field(
        default=None, description="The asset model: enabled, sensitivity (default: detection's).")


class SensorSettings(Section):
    asset: str | None = Field(default=None, description="Asset id when the topic does not say.")
    unit: str | None = Field(
        default=None, description="Canonical unit; readings in other known units are converted."
    )
    kind: str | None = Field(default=None, description="vibration, temperature, pressure, ...")
    limits: LimitSettings | None = Field(default=None, description="Datasheet limits (static).")
    detection: DetectorSettings | None = Field(
        default=None, description="Only what differs from detection.defaults.")

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str | None) -> str | None:
        if unit is not None and unit not in KNOWN_UNITS:
            raise ValueError(f"unknown unit {unit!r}; known: {', '.join(sorted(KNOWN_UNITS))}")
        return unit
