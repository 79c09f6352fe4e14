"""The root Settings model and how it is loaded: YAML, environment, one line per problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    ValidationError,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.detection.settings import DetectionSettings, merged
from edge.errors import ConfigError
from edge.prediction.settings import PredictionSettings
from edge.settings.base import DEFAULT_CONFIG_PATHS, ENV_PREFIX, Identifier
from edge.settings.environment import masked, secret_paths, settings_variables
from edge.settings.ingest import (
    AssetSettings,
    GatewaySettings,
    IngestLimits,
    MqttSettings,
    SensorSettings,
    filters_intersect,
)
from edge.settings.operations import (
    GATEWAY_TOPICS,
    HttpSettings,
    LoggingSettings,
    MaintenanceSettings,
    NotificationSettings,
    SystemdSettings,
)
from edge.settings.payloads import SparkplugSettings
from edge.settings.storage import BufferSettings, CentralSettings
from edge.settings.yaml_file import read_yaml


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
    prediction: PredictionSettings = PredictionSettings()
    sparkplug: SparkplugSettings = SparkplugSettings()
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
    raw = read_yaml(path)
    _reject_unknown_env(path)
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        raise ConfigError([_describe(error, path) for error in exc.errors()]) from None
    problems = (_undefined_references(settings, path) + _notifications_inside_data(settings, path)
                + _contradictory_overrides(settings, path))
    if problems:
        raise ConfigError(problems)
    return settings


def _undefined_references(settings: Settings, path: Path) -> list[str]:
    """Names that must point at something defined elsewhere in the config."""
    return [f"sensors.{sensor_id}.asset: asset {sensor.asset!r} is not defined under assets "
            f"(in {_source(('sensors', sensor_id, 'asset'), path)})"
            for sensor_id, sensor in settings.sensors.items()
            if sensor.asset is not None and sensor.asset not in settings.assets]


def _contradictory_overrides(settings: Settings, path: Path) -> list[str]:
    """A sensor's detector override is judged merged onto detection.defaults, as the engine
    will use it: a drift fast span fine against the class default may not be against the
    configured slow span."""
    problems = []
    for sensor_id, sensor in settings.sensors.items():
        if sensor.detection is None:
            continue
        problem = merged(settings.detection.defaults, sensor.detection).drift.span_problem()
        if problem is not None:
            loc = ("sensors", sensor_id, "detection", "drift")
            problems.append(f"{'.'.join(loc)}: {problem} (merged with detection.defaults.drift; "
                            f"in {_source(loc, path)})")
    return problems


def config_warnings(settings: Settings) -> list[str]:
    """Settings that are valid but probably not what was meant (check-config and `run` say so)."""
    warnings = []
    for index, sub in enumerate(settings.mqtt.subscriptions):
        # Only `auto` takes ids from the topic; a mapping and Sparkplug B make their own.
        if sub.codec == "auto" and sub.template is not None and sub.sensor_id_format is None:
            warnings.append(
                f"mqtt.subscriptions.{index}: template {sub.template!r} has no {{sensor}} "
                "level and the subscription no sensor_id format, so only payloads that carry "
                "a sensor_id are accepted; a bare number on it is quarantined as "
                "missing_sensor_id (add a {sensor} level to the template, or e.g. "
                "sensor_id: '{asset}')")
        if sub.mapping is not None:
            warnings += [f"mqtt.subscriptions.{index}.mapping: {overlap}"
                         for overlap in sub.mapping.overlaps()]
    warnings += _codecs_that_overlap(settings)
    return warnings


def _codecs_that_overlap(settings: Settings) -> list[str]:
    """A topic two subscriptions match is read by the first one listed only: with different
    codecs, the second one's codec is never used for it (and under MQTT 5 the broker may
    deliver such a message twice)."""
    subs = settings.mqtt.subscriptions
    return [f"mqtt.subscriptions.{later}: topic {subs[later].topic!r} (codec "
            f"{subs[later].codec}) overlaps mqtt.subscriptions.{first}: {subs[first].topic!r} "
            f"(codec {subs[first].codec}); a message on both is read by the first listed only: "
            "list the more specific subscription first, or narrow the filters"
            for later in range(len(subs)) for first in range(later)
            if subs[first].codec != subs[later].codec
            and filters_intersect(subs[first].topic, subs[later].topic)]


def _notifications_inside_data(settings: Settings, path: Path) -> list[str]:
    """A data subscription rooted in a named topic tree must not contain the gateway's
    notification topics: the gateway would publish into its own data, and a sensor topic
    such as `<prefix>/alerts/...` would be skipped as a notification. Catch-all filters
    (`#`, `+/...`) span every tree on purpose; the gateway's topics are excluded there.
    """
    prefix = settings.notification_prefix
    problems = []
    for index, subscription in enumerate(settings.mqtt.subscriptions):
        topic_filter = subscription.topic
        if topic_filter.split("/", 1)[0] in ("+", "#"):
            continue
        if any(filters_intersect(topic_filter, f"{prefix}/{kind}/#") for kind in GATEWAY_TOPICS):
            problems.append(
                f"notifications.topic_prefix: {prefix!r} puts the gateway's alerts, tasks and "
                f"commands inside mqtt.subscriptions.{index}.topic {topic_filter!r}, a data "
                "subscription; choose a prefix outside the data topics, e.g. edge/{gateway_id} "
                f"(in {_source(('notifications', 'topic_prefix'), path)})")
    return problems


def _reject_unknown_env(path: Path) -> None:
    """EDGE_ variables naming no section are typos; say so instead of ignoring them."""
    sections = set(Settings.model_fields)
    problems = []
    for name in settings_variables():
        section = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if section not in sections:
            problems.append(f"{name}: unknown setting (environment); sections are {sorted(sections)}")
    if problems:
        raise ConfigError(problems)


def _source(loc: tuple[Any, ...], path: Path) -> str:
    """Where the failing value came from: the variable that sets exactly that key, or a
    parent section given whole (EDGE_CENTRAL='{...}'); else the file. Variables that set
    other keys below a section-level error are named as context, never blamed."""
    variables = {name.upper(): value for name, value in settings_variables().items()}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(str(part) for part in loc[:depth]).upper()
        if name in variables:
            return f"environment {name}" + ("" if variables[name] else " (set but empty)")
    section = ENV_PREFIX + "__".join(str(part) for part in loc).upper() + "__"
    below = sorted(name for name in variables if loc and name.startswith(section))
    return f"{path}; the environment sets {', '.join(below)}" if below else str(path)


def _describe(error: Any, path: Path) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    source = _source(tuple(error["loc"]), path)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    message = re.sub(r"^Value error, ", "", message)
    return f"{loc}: {message} (in {source})"


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The resolved config as plain data, secrets (and passwords in URLs) masked."""
    dumped: dict[str, Any] = masked(settings.model_dump(mode="json"), (), secret_paths(Settings))
    return dumped
