"""Logging: JSON lines with the gateway id on every record, and rate-limited warnings."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
import weakref
from dataclasses import dataclass
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
    """Logs a recurring problem at most once per interval per key, and reports what it held
    back when the interval ends, even if no further occurrence comes.

    The first occurrence is logged at once; later ones within the interval are held and
    reported by one summary line (the latest occurrence's message and fields, `summary:
    true`, `suppressed_since_last`: how many) when the interval ends: on the next call for
    any key, from a timer, at `flush()` (shutdown) or when the log is dropped or the
    process exits. So every line's own occurrence (a summary has none) plus its
    `suppressed_since_last` add up to all occurrences. At most one line per key and
    interval. Thread-safe (the buffer's writer thread logs through one too).
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._limiter = _Limiter(logger, interval_s)
        # Runs when this log is dropped, and at exit: what was held back is never lost.
        weakref.finalize(self, self._limiter.flush, True)

    def warning(self, key: str, message: str, **fields: Any) -> None:
        self._limiter.log(logging.WARNING, key, message, fields)

    def info(self, key: str, message: str, **fields: Any) -> None:
        self._limiter.log(logging.INFO, key, message, fields)

    def error(self, key: str, message: str, **fields: Any) -> None:
        self._limiter.log(logging.ERROR, key, message, fields)

    def flush(self) -> None:
        """Report every held-back occurrence now (at shutdown)."""
        self._limiter.flush(force=True)


@dataclass(slots=True)
class _Held:
    """Occurrences of one key held back since its last line (the latest one's content)."""

    level: int
    message: str
    fields: dict[str, Any]
    count: int = 1


_Line = tuple[int, str, dict[str, Any]]
_MAX_KEYS = 10_000


class _Limiter:
    """RateLimitedLog's state, apart from it so that its finalizer and timer may hold it."""

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # key -> time of its last line
        self._held: dict[str, _Held] = {}
        self._next_due = math.inf  # earliest end of an interval with something held
        self._timer: threading.Timer | None = None

    def log(self, level: int, key: str, message: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            lines = self._take_due(now) if now >= self._next_due else []
            last = self._last.get(key)
            if last is not None and now - last < self._interval_s:
                self._hold(key, level, message, fields, last)
            else:
                if len(self._last) > _MAX_KEYS:
                    self._last = {k: v for k, v in self._last.items() if k in self._held}
                self._last[key] = now
                lines.append((level, message, {**fields, "suppressed_since_last": 0}))
        self._emit(lines)

    def flush(self, force: bool = False) -> None:
        with self._lock:
            lines = self._take_due(math.inf if force else time.monotonic())
        self._emit(lines)

    def _hold(self, key: str, level: int, message: str, fields: dict[str, Any],
              last: float) -> None:
        held = self._held.get(key)
        if held is None:
            self._held[key] = _Held(level, message, fields)
            self._next_due = min(self._next_due, last + self._interval_s)
            self._arm()
        else:
            held.level, held.message, held.fields = level, message, fields
            held.count += 1

    def _take_due(self, now: float) -> list[_Line]:
        """Summary lines of the keys whose interval ended; their next interval starts now."""
        lines: list[_Line] = []
        for key in [k for k in self._held if now >= self._last[k] + self._interval_s]:
            held = self._held.pop(key)
            self._last[key] = min(now, time.monotonic())
            lines.append((held.level, held.message, {
                **held.fields, "suppressed_since_last": held.count, "summary": True}))
        self._next_due = min((self._last[k] + self._interval_s for k in self._held),
                             default=math.inf)
        return lines

    def _arm(self) -> None:
        """A timer for the earliest interval end, so a burst's count comes without a call."""
        if self._timer is not None and self._timer.is_alive():
            return
        delay_s = max(0.0, self._next_due - time.monotonic())
        self._timer = threading.Timer(delay_s, self._on_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            lines = self._take_due(time.monotonic())
            self._timer = None
            if self._held:
                self._arm()
        self._emit(lines)

    def _emit(self, lines: list[_Line]) -> None:
        for level, message, fields in lines:
            self._logger.log(level, message, extra=fields)
