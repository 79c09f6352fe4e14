"""Logging: JSON lines with the gateway id on every record, and rate-limited warnings."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "gateway_id", "taskName"}
# Third-party duplicates of the message with terminal colours (uvicorn): never logged.
_NOISE = ("color_message",)


class _GatewayIdFilter(logging.Filter):
    def __init__(self, gateway_id: str) -> None:
        super().__init__()
        self._gateway_id = gateway_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.gateway_id = self._gateway_id
        for name in _NOISE:
            record.__dict__.pop(name, None)
        return True


class _KeyValueFormatter(logging.Formatter):
    """Text lines that keep the structured fields: `message key=value key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{key}={_text(value)}" for key, value in record.__dict__.items()
                  if key not in _STANDARD]
        return f"{line} {' '.join(fields)}" if fields else line


def _text(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if not text or any(c.isspace() for c in text) else text


def configure_logging(gateway_id: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every log record to stderr, as JSON (default) or text, stamped with gateway_id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_GatewayIdFilter(gateway_id))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "{asctime}{levelname}{name}{message}{gateway_id}", style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(_KeyValueFormatter(
            "%(asctime)s %(levelname)s %(gateway_id)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # gmqtt logs every broken socket write, and its own reconnect decisions (which we do not
    # use: edge.ingest.mqtt_source reconnects); ours says it once per state change.
    logging.getLogger("gmqtt").setLevel(logging.CRITICAL)


class RateLimitedLog:
    """Logs a recurring problem at most once per interval per key, with a suppressed count."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, **fields: Any) -> None:
        self._log(logging.WARNING, key, message, fields)

    def info(self, key: str, message: str, **fields: Any) -> None:
        self._log(logging.INFO, key, message, fields)

    def _log(self, level: int, key: str, message: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        self._logger.log(level, message, extra={**fields, "suppressed_since_last": suppressed})
