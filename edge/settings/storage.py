"""Where readings go: the local SQLite buffer and the central database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from edge.settings.base import Section, secret_from_file
from edge.settings.ingest import ReconnectSettings


class BufferSettings(Section):
    path: Path = Field(default=Path("var/edge-buffer.sqlite"),
                       description="The buffer file; `run` creates it (and its folder).")
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

    @field_validator("path")
    @classmethod
    def _a_file_or_nothing(cls, path: Path) -> Path:
        # A folder here is a typo, never a corrupt buffer: moving it aside would move a
        # user's working folder (field trial item 1).
        if path.is_symlink() and not path.exists():
            # Often a data volume that is not mounted: a fresh buffer made through the link
            # (or a crash on its missing folder) would be worse than not starting.
            raise ValueError(f"{path} is a symlink to {path.readlink()}, which does not exist")
        if path.is_dir():
            raise ValueError(f"{path} is a directory; give the path of a buffer file in it")
        if path.exists() and not path.is_file():
            raise ValueError(f"{path} exists but is not a regular file")
        return path


class TimescaleSettings(Section):
    """TimescaleDB features, used by `edge-gateway db upgrade` when the extension exists."""

    mode: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="auto: use TimescaleDB when the server has it, plain tables when it does "
                    "not (with a notice), stop when it is installed but not preloaded; "
                    "required: stop unless TimescaleDB can be enabled; off: plain PostgreSQL.")
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
    decision_poll_s: float = Field(
        default=2.0, gt=0, le=3600,
        description="How often decisions made centrally for this gateway are pulled.")
    final_sync_timeout_s: float = Field(
        default=5.0, ge=0, description="On shutdown, time for a last sync of what is left.")
    reconnect: ReconnectSettings = ReconnectSettings(initial_delay_s=1.0, max_delay_s=60.0)
    timescale: TimescaleSettings = TimescaleSettings()

    @field_validator("dsn")
    @classmethod
    def _postgresql(cls, dsn: SecretStr | None) -> SecretStr | None:
        # A field check, so the error names central.dsn and only what set it.
        if dsn is not None and not dsn.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn must start with postgresql://")
        return dsn

    @model_validator(mode="after")
    def _check(self) -> CentralSettings:
        if self.sslmode in ("verify-ca", "verify-full") and self.sslrootcert is None:
            raise ValueError(f"sslmode {self.sslmode} needs sslrootcert")
        if (self.sslcert is None) != (self.sslkey is None):
            raise ValueError("sslcert and sslkey must be given together")
        secret_from_file(self, "password", "password_file")
        return self
