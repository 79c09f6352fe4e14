"""A sensor's recent history in time buckets: what the trend is fitted on.

Averaging readings per bucket (a minute by default) makes the fit cost the same at 1 Hz as
at 0.1 Hz, keeps a day of history in a few kilobytes, and is cheap on the hot path: one
addition per reading. A bucket closes when a reading of a later bucket arrives; late
readings for a closed bucket are ignored (they would not move a trend over hours).
"""

from __future__ import annotations

import base64
import math
from collections import deque
from typing import Any

import numpy as np

from edge.prediction.trend import Floats


class BucketSeries:
    """Bucket means of one sensor over the last `keep_s` seconds (reading time)."""

    __slots__ = ("_bucket_s", "_keep_s", "_means", "_n", "_starts", "_sum", "closed", "current",
                 "last_value", "unit")

    def __init__(self, bucket_s: float, keep_s: float) -> None:
        self._bucket_s = bucket_s
        self._keep_s = keep_s
        self._starts: deque[float] = deque()
        self._means: deque[float] = deque()
        self.current = -math.inf  # start of the bucket being filled
        self._sum = 0.0
        self._n = 0
        self.closed = 0  # buckets closed since the owner last looked
        self.last_value = math.nan
        self.unit: str | None = None

    def add(self, ts: float, value: float) -> None:
        start = ts - ts % self._bucket_s
        if start != self.current:
            if start < self.current:
                return  # late for a closed bucket
            self._close()
            self.current = start
        self._sum += value
        self._n += 1
        self.last_value = value

    def _close(self) -> None:
        if self._n:
            self._starts.append(self.current)
            self._means.append(self._sum / self._n)
            self.closed += 1
        self._sum = 0.0
        self._n = 0
        horizon = self.current - self._keep_s
        while self._starts and self._starts[0] < horizon:
            self._starts.popleft()
            self._means.popleft()

    @property
    def span_s(self) -> float:
        """Time covered by the closed buckets."""
        return self._starts[-1] - self._starts[0] + self._bucket_s if self._starts else 0.0

    @property
    def end(self) -> float:
        """End of the newest closed bucket: the time a fit speaks for."""
        return self._starts[-1] + self._bucket_s if self._starts else -math.inf

    def arrays(self, span_s: float) -> tuple[Floats, Floats]:
        """Bucket starts relative to the newest, and bucket means, over the last `span_s`."""
        starts = np.fromiter(self._starts, float, len(self._starts))
        means = np.fromiter(self._means, float, len(self._means))
        first = int(np.searchsorted(starts, starts[-1] - span_s, side="right"))
        return starts[first:] - starts[-1], means[first:]

    def change_since(self, lag_s: float, span_s: float) -> tuple[Floats, Floats]:
        """Over the last `span_s`: each bucket's mean minus the mean `lag_s` earlier.

        What a daily cycle cannot fake: a machine that warms every afternoon is no warmer
        than yesterday afternoon. Buckets without a counterpart are left out.
        """
        starts = np.fromiter(self._starts, float, len(self._starts))
        means = np.fromiter(self._means, float, len(self._means))
        first = int(np.searchsorted(starts, starts[-1] - span_s, side="right"))
        recent = starts[first:]
        earlier = np.searchsorted(starts, recent - lag_s - self._bucket_s / 2)
        earlier = np.minimum(earlier, len(starts) - 1)
        matched = np.abs(starts[earlier] - (recent - lag_s)) < self._bucket_s / 2
        return recent[matched] - starts[-1], means[first:][matched] - means[earlier[matched]]

    def to_json(self) -> dict[str, Any]:
        """Compact (float32 means, bucket offsets), so a restart keeps a day of history."""
        starts = np.fromiter(self._starts, float, len(self._starts))
        first = float(starts[0]) if len(starts) else 0.0
        offsets = np.rint((starts - first) / self._bucket_s).astype("<i4")
        return {"first": first, "offsets": _b64(offsets.tobytes()),
                "means": _b64(np.fromiter(self._means, "<f4", len(self._means)).tobytes()),
                "current": _finite_or_none(self.current), "sum": self._sum, "n": self._n,
                "last": _finite_or_none(self.last_value), "unit": self.unit}

    def load(self, state: dict[str, Any]) -> None:
        offsets = np.frombuffer(base64.b64decode(state["offsets"]), "<i4")
        means = np.frombuffer(base64.b64decode(state["means"]), "<f4")
        self._starts = deque((state["first"] + offsets * self._bucket_s).tolist())
        self._means = deque(means.astype(float).tolist())
        self.current = -math.inf if state["current"] is None else float(state["current"])
        self._sum = float(state["sum"])
        self._n = int(state["n"])
        self.last_value = math.nan if state["last"] is None else float(state["last"])
        self.unit = state.get("unit")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
