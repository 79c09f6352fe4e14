"""What the `EDGE_` environment variables do to the config file's settings.

An environment variable silently overriding a key of the file (the systemd unit's
`Environment=EDGE_BUFFER__PATH=...`) surprises whoever reads the file; `check-config` and
the daemon's start line say which variables set which keys, and what the file said.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from edge.settings.base import ENV_PREFIX

MASK = "**********"  # as pydantic shows a SecretStr
_ANY = "*"  # a path level that stands for every key of a dict or item of a list
_URL_PASSWORD = re.compile(r"(?P<user>://[^:/@\s]+:)[^@\s]+@")


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


def environment_overrides(file_data: dict[str, Any],
                          model: type[BaseModel]) -> list[EnvironmentOverride]:
    """Which variables set which keys of `model`, secrets masked by the model's fields."""
    secrets = secret_paths(model)
    overrides = []
    for variable, value in sorted(settings_variables().items()):
        key = key_of(variable)
        path = tuple(key.split("."))
        found: Any = file_data
        for part in path:
            found = found.get(part) if isinstance(found, dict) else None
        overrides.append(EnvironmentOverride(
            variable, key, _masked_text(value, path, secrets),
            None if found is None else _shown(found, path, secrets)))
    return overrides


def secret_paths(model: type[BaseModel]) -> frozenset[tuple[str, ...]]:
    """The paths of the model's secret fields (SecretStr), `*` for any dict key or list item.

    Masking follows the model, not the variable's name: a whole section given as one JSON
    value (EDGE_CENTRAL='{"dsn": ...}') has its secrets inside (review of item 18).
    """
    found: set[tuple[str, ...]] = set()
    for name, field_info in model.model_fields.items():
        _collect(field_info.annotation, (name,), found)
    return frozenset(found)


def _collect(annotation: Any, path: tuple[str, ...], found: set[tuple[str, ...]]) -> None:
    if annotation is SecretStr:
        found.add(path)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.update(path + sub for sub in secret_paths(annotation))
    elif typing.get_origin(annotation) in (dict, list):
        _collect(typing.get_args(annotation)[-1], (*path, _ANY), found)
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            _collect(member, path, found)


def _is_secret(path: tuple[str, ...], secrets: frozenset[tuple[str, ...]]) -> bool:
    return any(len(secret) == len(path) and all(s in (_ANY, p) for s, p in zip(secret, path,
                                                                                 strict=True))
               for secret in secrets)


def masked(value: Any, path: tuple[str, ...], secrets: frozenset[tuple[str, ...]]) -> Any:
    """`value` (set at `path`) with every secret part replaced by MASK."""
    if value is None:
        return None
    if _is_secret(path, secrets):
        return MASK
    if isinstance(value, dict):
        return {k: masked(v, (*path, str(k)), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item, (*path, _ANY), secrets) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<user>{MASK}@", value)
    return value


def _masked_text(value: str, path: tuple[str, ...], secrets: frozenset[tuple[str, ...]]) -> str:
    """An environment value as text, masked; a JSON value (a whole section) part by part."""
    if _is_secret(path, secrets):
        return MASK
    if value.lstrip()[:1] in ("{", "["):
        try:
            return json.dumps(masked(json.loads(value), path, secrets))
        except ValueError:
            return MASK  # not JSON after all: show nothing rather than a secret
    return str(masked(value, path, secrets))


def _shown(found: Any, path: tuple[str, ...], secrets: frozenset[tuple[str, ...]]) -> str:
    return str(masked(found, path, secrets))
