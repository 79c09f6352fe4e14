"""Model snapshots: what the engine has learned, as versioned, checksummed bytes.

Layout: the magic line `edge-detection-snapshot`, then a JSON header line (format version,
SHA-256 of the body), then the zlib-compressed JSON body. Only plain JSON is ever decoded (never
pickle), so a damaged or foreign file raises `SnapshotError` (`SnapshotVersionError` for another
format version) and cannot do anything else: the caller logs it and the sensors relearn.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from array import array
from collections.abc import Iterator
from typing import Any

MAGIC = b"edge-detection-snapshot\n"
VERSION = 1


class SnapshotError(Exception):
    """The snapshot cannot be used (damaged, truncated, not a snapshot)."""


class SnapshotVersionError(SnapshotError):
    """The snapshot was written by another format version."""

    def __init__(self, found: object) -> None:
        super().__init__(f"snapshot format version {found!r}, this gateway reads {VERSION}")
        self.found = found


def encode(body: dict[str, Any]) -> bytes:
    """Dumped and compressed entry by entry: run in a worker thread (as the anomaly agent
    does), a snapshot of 20,000 sensors leaves the event loop its turns, where one
    `json.dumps` of it all would hold the GIL for seconds and copy ~300 MB around."""
    compressor = zlib.compressobj(6)
    chunks, pending, size = [], [], 0
    for piece in _json_pieces(body):
        pending.append(piece)
        size += len(piece)
        if size >= _CHUNK_CHARS:
            chunks.append(compressor.compress("".join(pending).encode()))
            pending, size = [], 0
    chunks.append(compressor.compress("".join(pending).encode()))
    chunks.append(compressor.flush())
    payload = b"".join(chunks)
    header = json.dumps({"version": VERSION, "sha256": hashlib.sha256(payload).hexdigest()})
    return MAGIC + header.encode() + b"\n" + payload


_CHUNK_CHARS = 1 << 20


def _json_pieces(body: dict[str, Any]) -> Iterator[str]:
    """The text of `json.dumps(body)`, with each entry of a dict-valued key dumped alone."""
    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), allow_nan=True)

    yield "{"
    for n, (key, value) in enumerate(body.items()):
        yield f"{',' if n else ''}{dumps(key)}:"
        if isinstance(value, dict):
            yield "{"
            for m, (inner_key, inner) in enumerate(value.items()):
                yield f"{',' if m else ''}{dumps(inner_key)}:{dumps(inner)}"
            yield "}"
        else:
            yield dumps(value)
    yield "}"


def decode(data: bytes) -> dict[str, Any]:
    if not data.startswith(MAGIC):
        raise SnapshotError("not a detection snapshot")
    header_line, _, payload = data[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(header_line)
    except ValueError as e:
        raise SnapshotError(f"snapshot header unreadable: {e}") from None
    if not isinstance(header, dict):
        raise SnapshotError("snapshot header malformed")
    if header.get("version") != VERSION:
        raise SnapshotVersionError(header.get("version"))
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise SnapshotError("snapshot checksum mismatch (truncated or damaged)")
    try:
        body = json.loads(zlib.decompress(payload))
    except (ValueError, zlib.error) as e:
        raise SnapshotError(f"snapshot body unreadable: {e}") from None
    if not isinstance(body, dict):
        raise SnapshotError("snapshot body malformed")
    return body


def pack(values: array) -> str:  # type: ignore[type-arg]
    """An array as text for the JSON body (machine byte order: snapshots stay on their gateway)."""
    return base64.b64encode(values.tobytes()).decode("ascii")


def unpack(text: str, typecode: str) -> array:  # type: ignore[type-arg]
    """The array `pack` wrote; ValueError if the text is not one."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"array field unreadable: {e}") from None
    values = array(typecode)
    if len(raw) % values.itemsize:
        raise ValueError("array field has a partial element")
    values.frombytes(raw)
    return values


def settings_key(value: Any) -> str:
    """A short digest of settings: a model is only restored under the settings it learned with."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
