"""Reading timestamps: RFC 3339 strings or epoch numbers, to integer microseconds UTC."""

from __future__ import annotations

import math
from datetime import datetime

from edge.errors import PayloadError
from edge.times import datetime_to_us

# Epoch magnitude thresholds: 1e11 s is the year 5138, while 1e11 ms is 1973, so a value
# past each threshold must be in the next finer unit.
_MS_THRESHOLD = 1e11
_US_THRESHOLD = 1e14
_NS_THRESHOLD = 1e17


def parse_ts_us(raw: object) -> int:
    """Microseconds since the epoch (UTC) for an RFC 3339 string or epoch s/ms/µs/ns number."""
    if isinstance(raw, str):
        return _parse_rfc3339(raw)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _parse_epoch(raw)
    raise PayloadError("invalid_ts",
                       f"ts must be an RFC 3339 string or epoch number, got {type(raw).__name__}")


def _parse_epoch(raw: float) -> int:
    if not math.isfinite(raw) or raw < 0:
        raise PayloadError("invalid_ts", f"epoch ts {raw!r} is not a finite, non-negative number")
    if raw >= _NS_THRESHOLD:
        return int(raw) // 1000
    if raw >= _US_THRESHOLD:
        return int(raw)
    if raw >= _MS_THRESHOLD:
        return round(raw * 1000)
    return round(raw * 1_000_000)


def _parse_rfc3339(raw: str) -> int:
    if len(raw) > 64:
        raise PayloadError("invalid_ts", "ts string longer than 64 characters")
    try:
        # RFC 3339 allows a lowercase t and z (section 5.6 note); Python's parser does not.
        parsed = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise PayloadError("invalid_ts", f"ts {raw!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        # A PLC clock without an offset is ambiguous; guessing would shift data silently.
        raise PayloadError("invalid_ts", f"ts {raw!r} has no UTC offset")
    return datetime_to_us(parsed)

