"""The root Settings model and how it is loaded: YAML, environment, one line per problem."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.detection.settings import DetectionSettings
from edge.errors import ConfigError
from edge.settings.base import DEFAULT_CONFIG_PATHS, ENV_PREFIX, Identifier
from edge.settings.ingest import (
    AssetSettings,
    GatewaySettings,
    IngestLimits,
    MqttSettings,
    SensorSettings,
)
from edge.settings.operations import (
    HttpSettings,
    LoggingSettings,
    MaintenanceSettings,
    NotificationSettings,
    SystemdSettings,
)
from edge.settings.storage import BufferSettings, CentralSettings


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
