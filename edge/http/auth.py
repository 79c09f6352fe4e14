"""Bearer-token and body-size guards, as plain ASGI middleware around the API."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc",
                          "/openapi.json", "/docs/oauth2-redirect"})
# The API docs' own scripts and styles, served by the gateway (a browser cannot send the
# token with them; they hold no data, and every API call from the docs still needs it).
PUBLIC_PREFIXES = ("/static-offline-docs/",)
# Called with a reason ("unauthorized", "body_too_large") when a guard turns a request away.
OnRejected = Callable[[str, str], None]


async def _reply(send: Send, status: int, detail: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class BearerTokenMiddleware:
    """Everything but the public paths needs `Authorization: Bearer <token>`.

    The comparison is constant-time; a wrong or missing token gets a bare 401 that says
    nothing about why. Without a configured token, protected paths always answer 401.
    """

    def __init__(self, app: ASGIApp, token: str | None, on_rejected: OnRejected) -> None:
        self._app = app
        self._expected = token.encode() if token else None
        self._on_rejected = on_rejected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self._app(scope, receive, send)
            return
        scheme, _, credentials = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        # The scheme is case-insensitive (RFC 7235): "bearer" and "Bearer" alike.
        if self._expected is None or scheme.lower() != b"bearer" or \
                not hmac.compare_digest(credentials.strip(), self._expected):
            self._on_rejected("unauthorized", scope["path"])
            await _reply(send, 401, "unauthorized", ((b"www-authenticate", b"Bearer"),))
            return
        await self._app(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 for a body over the limit, whether announced by Content-Length or streamed.

    The body is read here, up to the limit, before the app sees the request: a streamed
    (chunked) body that grows past the limit is refused before any handler runs, instead of
    failing inside one (which answered 500). Bodies are at most `http.max_body_bytes`
    (1 MiB by default), so holding one in memory is cheap.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_rejected: OnRejected) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._on_rejected = on_rejected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_bytes:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self._max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for http.disconnect

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self._on_rejected("body_too_large", scope["path"])
        await _reply(send, 413, f"body larger than {self._max_bytes} bytes")
