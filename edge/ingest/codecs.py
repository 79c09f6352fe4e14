"""Payload codecs: bytes to candidate readings (plain dicts), or a PayloadError.

Accepted forms: a JSON object `{"sensor_id", "ts", "value", "unit"?, "quality"?}`, a JSON
array of such objects, or a bare number (its sensor id comes from the topic).
Field checks happen later, in the DataAcquisitionAgent's validator.
"""

from __future__ import annotations

from typing import Any

import orjson

from edge.errors import PayloadError

_JSON_STARTS = frozenset(b"{[\"tfn")


def decode_payload(payload: bytes, max_bytes: int, max_items: int) -> list[Any]:
    """The candidate readings in one message; elements are not yet checked."""
    if len(payload) > max_bytes:
        raise PayloadError("payload_too_large", f"{len(payload)} bytes > limit {max_bytes}")
    if payload[:1] == b"{":  # the common case: one JSON object, no surrounding whitespace
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass  # the general path below says why
        else:
            if type(document) is dict:
                return [document]
    body = payload.strip()
    if not body:
        raise PayloadError("empty_payload")
    if body[0] in _JSON_STARTS:
        return _decode_json(body, max_items)
    return [{"value": _bare_number(body)}]


def _decode_json(body: bytes, max_items: int) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = "invalid_utf8" if "UTF-8" in str(exc) else "invalid_json"
        raise PayloadError(reason, str(exc)[:200]) from None
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        if not document:
            raise PayloadError("empty_payload", "empty JSON array")
        if len(document) > max_items:
            raise PayloadError("too_many_readings", f"{len(document)} readings > limit {max_items}")
        return document
    raise PayloadError("invalid_shape", f"JSON {type(document).__name__} is not a reading or list")


def _bare_number(body: bytes) -> float:
    try:
        return float(body)
    except ValueError:
        pass
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("invalid_utf8", "payload is not valid UTF-8") from None
    raise PayloadError("invalid_json", f"payload is neither JSON nor a number: {body[:40]!r}")
