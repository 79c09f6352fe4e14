"""Maintenance rules, notifications, the HTTP port, systemd and logging."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from edge.settings.base import Section, secret_from_file

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
        default_factory=lambda: {"limits": "out_of_range", "outlier": "abnormal_readings",
                                 "drift": "drift", "rate": "rapid_change",
                                 "flatline": "sensor_stuck", "silence": "no_data",
                                 "asset_model": "relation_break", "forecast": "out_of_range",
                                 "node_offline": "no_data"},
        description="detector -> cause; one open task per asset and cause (a forecast and "
                    "the limit alert that proves it right share one task).")
    check_interval_s: float = Field(default=30.0, gt=0)
    close_on_recovery: bool = Field(
        default=True, description="Close a task as resolved_by_recovery when its alerts all "
                                  "resolved and stayed quiet; false: a human closes every task.")
    recovery_quiet_s: float = Field(
        default=1800.0, ge=0, description="How long a task's alerts must stay resolved first.")

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
        secret_from_file(self, "token", "token_file")
        return self


# What the gateway publishes under its notification prefix (alerts, tasks, decisions, command
# responses) and the commands it takes there: `{prefix}/<one of these>/...`. Ingestion
# recognises exactly these topics as notifications, of this gateway or another one.
GATEWAY_TOPICS = ("alerts", "tasks", "decisions", "responses", "commands")


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
    host: str = Field(default="127.0.0.1", min_length=1, description="0.0.0.0 to listen on every interface.")
    port: int = Field(default=8080, ge=1, le=65535)
    token: SecretStr | None = Field(
        default=None, description="The ingest token: HTTP ingestion, quarantine replay, reads.")
    token_file: Path | None = None
    operator_token: SecretStr | None = Field(
        default=None, description="The operator token: decisions on alerts and tasks (and "
                                  "reads); the operator page asks for it.")
    operator_token_file: Path | None = None
    read_token: SecretStr | None = Field(
        default=None, description="A read-only token (dashboards): GET /api/* only.")
    read_token_file: Path | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1024 * 1024)
    commit_timeout_s: float = Field(
        default=10.0, gt=0, description="Ingestion answers 503 if the commit takes longer.")

    @model_validator(mode="after")
    def _token_from_file(self) -> HttpSettings:
        secrets = []
        for name in ("token", "operator_token", "read_token"):
            secret_from_file(self, name, f"{name}_file")
            value: SecretStr | None = getattr(self, name)
            if value is not None:
                if len(value.get_secret_value()) < 16:
                    raise ValueError(f"{name} must have at least 16 characters")
                secrets.append(value.get_secret_value())
        if len(set(secrets)) < len(secrets):
            raise ValueError("token, operator_token and read_token must differ (one role each)")
        return self


class SystemdSettings(Section):
    watchdog_stall_s: float = Field(
        default=30.0, gt=0,
        description="Watchdog pings stop when messages wait this long without a commit.")


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"
