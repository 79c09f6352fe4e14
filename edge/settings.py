"""Settings: the one source of truth for configuration.

Loaded from one YAML file, then overridden by `EDGE_`-prefixed environment variables
(`__` separates nesting levels, e.g. `EDGE_MQTT__HOST`). Secrets may come from files
(`password_file`, systemd credentials). Unknown keys are errors. Only the composition root
(`edge.daemon`/`edge.cli`) calls `load_settings`; every part receives its own section.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.detection.settings import DetectionSettings, DetectorSettings, LimitSettings
from edge.errors import ConfigError
from edge.ingest.units import KNOWN_UNITS

DEFAULT_CONFIG_PATHS = (Path("config/edge.yaml"), Path("/etc/edge-gateway/edge.yaml"))
ENV_PREFIX = "EDGE_"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"
TEMPLATE_FIELDS = frozenset({"site", "asset", "sensor"})

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class Section(BaseModel):
    """Base of every settings section: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret_file(path: Path | None, field_name: str) -> SecretStr | None:
    if path is None:
        return None
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"{field_name}: cannot read {path}: {exc.strerror}") from None


def _secret_from_file(section: BaseModel, secret_field: str, file_field: str) -> None:
    """Fill `secret_field` from the file named by `file_field` (systemd credentials)."""
    path = getattr(section, file_field)
    if path is None:
        return
    if getattr(section, secret_field) is not None:
        raise ValueError(f"give {secret_field} or {file_field}, not both")
    object.__setattr__(section, secret_field, _read_secret_file(path, file_field))


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
    def _valid_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        names = _placeholders(template)
        unknown = names - TEMPLATE_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {sorted(TEMPLATE_FIELDS)}")
        return template

    @model_validator(mode="after")
    def _sensor_id_uses_template_fields(self) -> SubscriptionSettings:
        if self.sensor_id is not None:
            available = _placeholders(self.template) if self.template else set()
            missing = _placeholders(self.sensor_id) - available
            if missing:
                raise ValueError(f"sensor_id uses {sorted(missing)}, which the template lacks")
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


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None


class MqttSettings(Section):
    host: str = "127.0.0.1"
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
        _secret_from_file(self, "password", "password_file")
        return self


class BufferSettings(Section):
    path: Path = Field(default=Path("var/edge-buffer.sqlite"))
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL survives a power cut; NORMAL only a process crash.",
    )
    max_batch_rows: int = Field(default=5000, ge=1, le=100_000)
    max_batch_delay_ms: float = Field(default=2.0, ge=0, le=1000)
    max_pending_messages: int = Field(
        default=200_000,
        ge=1000,
        description="Messages waiting for a commit; past it QoS 0 messages are dropped (counted).",
    )
    max_bytes: int = Field(
        default=1024**3, ge=1024**2,
        description="Size cap; past it rows are evicted by the documented policy (counted).")
    check_integrity_on_start: bool = Field(
        default=True, description="PRAGMA quick_check at start; a corrupt file is moved aside.")


class IngestLimits(Section):
    max_payload_bytes: int = Field(default=65536, ge=16, le=16 * 1024 * 1024)
    max_readings_per_message: int = Field(default=1000, ge=1)
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="Readings stamped further ahead are rejected."
    )
    accept_unknown_sensors: bool = Field(
        default=True, description="false: only sensors listed under `sensors` are accepted."
    )


class AssetSettings(Section):
    name: str | None = None
    type: str | None = None
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    location: str | None = None


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


class TimescaleSettings(Section):
    """TimescaleDB features, used by `edge-gateway db upgrade` when the extension exists."""

    chunk_interval: str = Field(default="1 day", description="Hypertable chunk interval.")
    compress_after: str | None = Field(
        default="7 days", description="Compress chunks older than this; null turns it off.")
    retention: str | None = Field(
        default=None, description="Drop chunks older than this; null (default) keeps everything.")

    @field_validator("chunk_interval", "compress_after", "retention")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+ (second|minute|hour|day|week|month|year)s?", value):
            raise ValueError("must look like '1 day', '12 hours', '4 weeks'")
        return value


class CentralSettings(Section):
    """The central TimescaleDB/PostgreSQL database; without `dsn` the gateway runs buffer-only."""

    dsn: SecretStr | None = Field(
        default=None, description="postgresql://user@host:5432/db (the password may be in password_file).")
    password: SecretStr | None = Field(default=None, description="Overrides the DSN's password.")
    password_file: Path | None = None
    sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    sslrootcert: Path | None = Field(default=None, description="CA that signs the server (verify-*).")
    sslcert: Path | None = Field(default=None, description="Client certificate, if the server wants one.")
    sslkey: Path | None = None
    batch_rows: int = Field(default=10_000, ge=100, le=200_000)
    idle_interval_s: float = Field(default=1.0, gt=0, le=300,
                                   description="Pause between syncs when nothing is waiting.")
    heartbeat_interval_s: float = Field(default=30.0, gt=0, le=3600)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    keep_synced_s: float = Field(default=86_400.0, ge=0,
                                 description="Synced rows stay in the local buffer this long.")
    final_sync_timeout_s: float = Field(
        default=5.0, ge=0, description="On shutdown, time for a last sync of what is left.")
    reconnect: ReconnectSettings = ReconnectSettings(initial_delay_s=1.0, max_delay_s=60.0)
    timescale: TimescaleSettings = TimescaleSettings()

    @model_validator(mode="after")
    def _check(self) -> CentralSettings:
        if self.dsn is not None and not self.dsn.get_secret_value().startswith(
                ("postgresql://", "postgres://")):
            raise ValueError("dsn must start with postgresql://")
        if self.sslmode in ("verify-ca", "verify-full") and self.sslrootcert is None:
            raise ValueError(f"sslmode {self.sslmode} needs sslrootcert")
        if (self.sslcert is None) != (self.sslkey is None):
            raise ValueError("sslcert and sslkey must be given together")
        _secret_from_file(self, "password", "password_file")
        return self


Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high", "urgent")
_DEFAULT_DUE_AFTER_S: dict[Priority, float] = {
    "urgent": 4 * 3600.0, "high": 24 * 3600.0, "medium": 72 * 3600.0, "low": 168 * 3600.0}
SeverityName = Literal["info", "warning", "critical"]
Criticality = Literal["low", "medium", "high", "critical"]
_DEFAULT_PRIORITIES: dict[SeverityName, dict[Criticality, Priority]] = {
    "info": {"low": "low", "medium": "low", "high": "low", "critical": "medium"},
    "warning": {"low": "low", "medium": "medium", "high": "high", "critical": "high"},
    "critical": {"low": "medium", "medium": "high", "high": "urgent", "critical": "urgent"},
}


class MaintenanceSettings(Section):
    """How alerts become maintenance tasks."""

    enabled: bool = True
    min_severity: Literal["info", "warning", "critical"] = Field(
        default="warning", description="Alerts below this severity make no task.")
    priorities: dict[SeverityName, dict[Criticality, Priority]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in _DEFAULT_PRIORITIES.items()},
        description="alert severity -> asset criticality -> task priority")
    due_after_s: dict[Priority, float] = Field(
        default_factory=lambda: dict(_DEFAULT_DUE_AFTER_S),
        description="Due date of a new task, by priority.")
    escalate_after_s: float = Field(
        default=3600.0, gt=0, description="An alert still open this long raises its task's priority.")
    causes: dict[str, str] = Field(
        default_factory=lambda: {"limits": "out_of_range", "zscore": "abnormal_readings",
                                 "drift": "drift", "rate": "rapid_change",
                                 "flatline": "sensor_stuck", "silence": "no_data"},
        description="detector -> cause; one open task per asset and cause.")
    check_interval_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> MaintenanceSettings:
        for severity, by_criticality in self.priorities.items():
            missing = {"low", "medium", "high", "critical"} - set(by_criticality)
            if missing:
                raise ValueError(f"priorities.{severity} lacks {sorted(missing)}")
        if set(self.priorities) != {"info", "warning", "critical"}:
            raise ValueError("priorities needs info, warning and critical")
        if set(self.due_after_s) != set(PRIORITIES):
            raise ValueError(f"due_after_s needs exactly {list(PRIORITIES)}")
        return self


class WebhookSettings(Section):
    """Optional HTTP POST of every alert and task (e.g. to a CMMS or a chat bridge)."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=3, ge=0, le=20)
    max_per_minute: int = Field(
        default=60, ge=1, description="Rate limit; beyond it posts are dropped and counted.")
    queue_size: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _token_from_file(self) -> WebhookSettings:
        _secret_from_file(self, "token", "token_file")
        return self


class NotificationSettings(Section):
    """Alerts and tasks published to MQTT for HMIs and PLCs (and to an optional webhook)."""

    enabled: bool = True
    topic_prefix: str = Field(default="edge/{gateway_id}", min_length=1,
                              description="{gateway_id} is replaced; no wildcards.")
    qos: Literal[0, 1, 2] = 1
    webhook: WebhookSettings = WebhookSettings()

    @field_validator("topic_prefix")
    @classmethod
    def _no_wildcards(cls, prefix: str) -> str:
        if "+" in prefix or "#" in prefix or prefix.endswith("/"):
            raise ValueError("a topic prefix has no wildcards and no trailing '/'")
        return prefix


class HttpSettings(Section):
    """The daemon's HTTP port: health, metrics and the API."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="0.0.0.0 to listen on every interface.")
    port: int = Field(default=8080, ge=1, le=65535)
    token: SecretStr | None = Field(default=None, description="Bearer token for /api/* and /docs.")
    token_file: Path | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1024 * 1024)
    commit_timeout_s: float = Field(
        default=10.0, gt=0, description="Ingestion answers 503 if the commit takes longer.")

    @model_validator(mode="after")
    def _token_from_file(self) -> HttpSettings:
        _secret_from_file(self, "token", "token_file")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token must have at least 16 characters")
        return self


class SystemdSettings(Section):
    watchdog_stall_s: float = Field(
        default=30.0, gt=0,
        description="Watchdog pings stop when messages wait this long without a commit.")


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(BaseSettings):
    """The whole configuration of one gateway."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    gateway: GatewaySettings
    mqtt: MqttSettings
    buffer: BufferSettings = BufferSettings()
    ingest: IngestLimits = IngestLimits()
    central: CentralSettings = CentralSettings()
    detection: DetectionSettings = DetectionSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    notifications: NotificationSettings = NotificationSettings()
    http: HttpSettings = HttpSettings()
    systemd: SystemdSettings = SystemdSettings()
    assets: dict[Identifier, AssetSettings] = Field(default_factory=dict)
    sensors: dict[Identifier, SensorSettings] = Field(default_factory=dict)
    logging: LoggingSettings = LoggingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it overrides the YAML file passed in as init values.
        return (env_settings, init_settings)

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"edge-{self.gateway.id}"[:64]

    @property
    def notification_prefix(self) -> str:
        return self.notifications.topic_prefix.replace("{gateway_id}", self.gateway.id)


def resolve_config_path(explicit: Path | None) -> Path:
    """The file to load: --config, else the first default that exists."""
    if explicit is not None:
        return explicit
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


def load_settings(path: Path) -> Settings:
    """Read, merge and validate; raise ConfigError with one line per problem."""
    raw = _read_yaml(path)
    _reject_unknown_env(path)
    try:
        return Settings(**raw)
    except ValidationError as exc:
        raise ConfigError([_describe(error, path) for error in exc.errors()]) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: top level must be a mapping of sections, got {type(data).__name__}"])
    return data


def _reject_unknown_env(path: Path) -> None:
    """EDGE_ variables naming no section are typos; say so instead of ignoring them."""
    sections = set(Settings.model_fields)
    problems = []
    for name in os.environ:
        if not name.startswith(ENV_PREFIX) or name == "EDGE_CONFIG":
            continue
        section = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if section not in sections:
            problems.append(f"{name}: unknown setting (environment); sections are {sorted(sections)}")
    if problems:
        raise ConfigError(problems)


def _describe(error: Any, path: Path) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    env_name = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
    source = f"environment {env_name}" if env_name in os.environ else str(path)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    message = re.sub(r"^Value error, ", "", message)
    return f"{loc}: {message} (in {source})"


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The resolved config as plain data, secrets replaced by '********'."""
    return settings.model_dump(mode="json")
