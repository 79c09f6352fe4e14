"""Settings: the one source of truth for configuration.

Loaded from one YAML file, then overridden by `EDGE_`-prefixed environment variables
(`__` separates nesting levels, e.g. `EDGE_MQTT__HOST`). Secrets may come from files
(`password_file`, systemd credentials). Unknown keys are errors. Only the composition root
(`edge.daemon`/`edge.cli`) calls `load_settings`; every part receives its own section.
"""

from edge.settings.base import DEFAULT_CONFIG_PATHS, ENV_PREFIX, Identifier, Section
from edge.settings.ingest import (
    AssetSettings,
    GatewaySettings,
    IngestLimits,
    MqttSettings,
    ReconnectSettings,
    SensorSettings,
    SubscriptionSettings,
    TlsSettings,
)
from edge.settings.loader import (
    Settings,
    config_warnings,
    load_settings,
    masked_dump,
    resolve_config_path,
)
from edge.settings.operations import (
    GATEWAY_TOPICS,
    PRIORITIES,
    HttpSettings,
    LoggingSettings,
    MaintenanceSettings,
    NotificationSettings,
    Priority,
    SystemdSettings,
    WebhookSettings,
)
from edge.settings.storage import BufferSettings, CentralSettings, TimescaleSettings

__all__ = [
    "DEFAULT_CONFIG_PATHS", "ENV_PREFIX", "GATEWAY_TOPICS", "PRIORITIES", "AssetSettings", "BufferSettings",
    "CentralSettings", "GatewaySettings", "HttpSettings", "Identifier", "IngestLimits",
    "LoggingSettings", "MaintenanceSettings", "MqttSettings", "NotificationSettings", "Priority",
    "ReconnectSettings", "Section", "SensorSettings", "Settings", "SubscriptionSettings",
    "SystemdSettings", "TimescaleSettings", "TlsSettings", "WebhookSettings", "config_warnings",
    "load_settings",
    "masked_dump", "resolve_config_path",
]
