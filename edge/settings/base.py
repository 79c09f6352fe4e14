"""Shared pieces of the settings models: the section base class, ids, secrets from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
)

DEFAULT_CONFIG_PATHS = (Path("config/edge.yaml"), Path("/etc/edge-gateway/edge.yaml"))
ENV_PREFIX = "EDGE_"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"
TEMPLATE_FIELDS = frozenset({"site", "asset", "sensor"})

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class Section(BaseModel):
    """Base of every settings section: immutable, unknown keys rejected, and no number may
    be infinite or NaN (a duration of `.inf` would silently switch a timer off)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _read_secret_file(path: Path | None, field_name: str) -> SecretStr | None:
    if path is None:
        return None
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"{field_name}: cannot read {path}: {exc.strerror}") from None


def secret_from_file(section: BaseModel, secret_field: str, file_field: str) -> None:
    """Fill `secret_field` from the file named by `file_field` (systemd credentials)."""
    path = getattr(section, file_field)
    if path is None:
        return
    if getattr(section, secret_field) is not None:
        raise ValueError(f"give {secret_field} or {file_field}, not both")
    object.__setattr__(section, secret_field, _read_secret_file(path, file_field))
