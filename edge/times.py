"""Time conversions shared by every layer: integer microseconds since the epoch, UTC.

Readings carry `ts_us`/`received_us` as plain ints (cheap, exact, SQLite-native); these
helpers turn them into aware datetimes and RFC 3339 text at the edges (API, logs, alerts).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def datetime_to_us(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    return (moment - EPOCH) // _ONE_US


def us_to_datetime(ts_us: int) -> datetime:
    """The aware UTC datetime of `ts_us` (exact, unlike datetime.fromtimestamp on floats)."""
    return EPOCH + timedelta(microseconds=ts_us)


def format_ts_us(ts_us: int) -> str:
    """RFC 3339 (UTC, microseconds) for logs and APIs."""
    return us_to_datetime(ts_us).isoformat().replace("+00:00", "Z")


def now_us() -> int:
    """The gateway's clock, in microseconds since the epoch."""
    return time.time_ns() // 1000


def as_utc(moment: datetime) -> datetime:
    """`moment` with a UTC offset: a naive time (no offset) is read as UTC.

    For times already stored without one (older buffers); new ones are refused at the
    boundary (edge/maintenance/decisions.py)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
