"""Which detection worker holds a sensor, and snapshots made of several workers' parts.

Pure functions shared by the sharded host (edge/agents/detection_shards.py) and the engine
that loads a snapshot: both must agree on the owner of every sensor and asset.
"""

from __future__ import annotations

import zlib

from edge.detection.snapshot import SnapshotError

PARTS_MAGIC = b"edge-detection-snapshot-parts\n"
_COUNT_BYTES = 4
_LENGTH_BYTES = 8


def shard_of(key: str, shards: int) -> int:
    """The worker (of `shards`) that holds the asset (or lone sensor) `key`: stable across
    runs and machines (CRC-32, not Python's salted `hash`)."""
    return zlib.crc32(key.encode()) % shards if shards > 1 else 0


def pack_parts(parts: list[bytes]) -> bytes:
    """Several workers' snapshots as one, each kept as it is (nothing decoded or copied into
    a new body: the event loop only joins bytes)."""
    pieces = [PARTS_MAGIC, len(parts).to_bytes(_COUNT_BYTES, "big")]
    for part in parts:
        pieces += (len(part).to_bytes(_LENGTH_BYTES, "big"), part)
    return b"".join(pieces)


def unpack_parts(data: bytes) -> list[bytes] | None:
    """The parts of a packed snapshot; None for a plain (one engine's) snapshot."""
    if not data.startswith(PARTS_MAGIC):
        return None
    at = len(PARTS_MAGIC) + _COUNT_BYTES
    if len(data) < at:
        raise SnapshotError("snapshot parts truncated")
    count = int.from_bytes(data[at - _COUNT_BYTES:at], "big")
    parts: list[bytes] = []
    for _ in range(count):
        end = at + _LENGTH_BYTES
        if len(data) < end:
            raise SnapshotError("snapshot parts truncated")
        size = int.from_bytes(data[at:end], "big")
        if len(data) < end + size:
            raise SnapshotError("snapshot parts truncated")
        parts.append(data[end:end + size])
        at = end + size
    if at != len(data):
        raise SnapshotError("snapshot parts malformed (bytes after the last part)")
    return parts
