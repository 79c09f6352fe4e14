"""Typed errors, each carrying the context a user needs to act on it."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(EdgeError):
    """The configuration cannot be used; one line per problem, each naming field and file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class PayloadError(EdgeError):
    """A message or one reading in it cannot be accepted; `reason` is a metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TemporarilyUnavailable(EdgeError):
    """A part of the gateway cannot answer now but is being brought back: try again soon
    (HTTP 503 with Retry-After)."""


class BufferStoreError(EdgeError):
    """Base of the SQLite buffer's errors; the message names the buffer file."""


class BufferWriteError(BufferStoreError):
    """The SQLite buffer cannot take a commit (disk full, unwritable, corrupt)."""


class BufferReadError(BufferStoreError):
    """The SQLite buffer cannot be read (not open, damaged)."""


class BufferMissingError(BufferReadError):
    """A read-only command found no buffer file at the configured path."""


class BufferInUseError(BufferWriteError):
    """Another daemon holds the buffer's lock."""


class BufferSchemaError(BufferWriteError):
    """The buffer file was written by a newer or foreign program."""
