"""What the `EDGE_` environment variables do to the config file's settings.

An environment variable silently overriding a key of the file (the systemd unit's
`Environment=EDGE_BUFFER__PATH=...`) surprises whoever reads the file; `check-config` and
the daemon's start line say which variables set which keys, and what the file said.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edge.settings.base import ENV_PREFIX

_SECRET_WORDS = ("password", "token", "secret", "dsn")


@dataclass(frozen=True, slots=True)
class EnvironmentOverride:
    variable: str
    key: str  # dotted settings path, e.g. buffer.path
    value: str  # masked for secrets
    file_value: str | None  # what the file said, None if it did not set the key

    def describe(self) -> str:
        if self.file_value is None:
            return f"{self.variable} sets {self.key} = {self.value} (not in the file)"
        return (f"{self.variable} overrides {self.key}: the file says {self.file_value}, "
                f"the environment {self.value}")


def settings_variables() -> dict[str, str]:
    """The EDGE_ variables that address settings (EDGE_CONFIG names the file instead)."""
    return {name: value for name, value in os.environ.items()
            if name.startswith(ENV_PREFIX) and name != "EDGE_CONFIG"}


def key_of(variable: str) -> str:
    return ".".join(part.lower() for part in variable[len(ENV_PREFIX):].split("__"))


def environment_overrides(file_data: dict[str, Any]) -> list[EnvironmentOverride]:
    overrides = []
    for variable, value in sorted(settings_variables().items()):
        key = key_of(variable)
        found: Any = file_data
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        secret = any(word in key for word in _SECRET_WORDS)
        overrides.append(EnvironmentOverride(
            variable, key, "********" if secret else value,
            None if found is None else ("********" if secret else str(found))))
    return overrides
