"""Bearer-token and body-size guards, as plain ASGI middleware around the API."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/", "/favicon.ico", "/healthz", "/readyz", "/metrics", "/docs",
                          "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
ROLE_KEY = "edge.role"  # where the guard leaves the caller's role in the ASGI scope
# The API docs' own scripts and styles, served by the gateway (a browser cannot send the
# token with them; they hold no data, and every API call from the docs still needs it).
PUBLIC_PREFIXES = ("/static-offline-docs/", "/ui/")  # and the operator page's (it asks for
# the token itself and keeps it in the browser tab)
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
    """Everything but the public paths needs `Authorization: Bearer <token>` of a role that
    may do what the request does (`required_roles`).

    Roles: `ingest` (http.token), `operator` (http.operator_token), `read` (http.read_token).
    A missing or unknown token gets a bare 401; a known token whose role may not do this
    (a sensor's ingest token deciding about a task) gets 403. Comparisons are constant-time.
    """

    def __init__(self, app: ASGIApp, tokens: dict[str, str], on_rejected: OnRejected) -> None:
        self._app = app
        self._tokens = [(secret.encode(), role) for role, secret in tokens.items()]
        self._on_rejected = on_rejected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self._app(scope, receive, send)
            return
        role = self._role(dict(scope["headers"]).get(b"authorization", b""))
        if role is None:
            self._on_rejected("unauthorized", path)
            await _reply(send, 401, "unauthorized", ((b"www-authenticate", b"Bearer"),))
            return
        if role not in required_roles(scope["method"], path):
            self._on_rejected("forbidden", path)
            await _reply(send, 403, f"the {role} token may not {scope['method']} {path}")
            return
        await self._app({**scope, ROLE_KEY: role}, receive, send)

    def _role(self, header: bytes) -> str | None:
        scheme, _, credentials = header.partition(b" ")
        # The scheme is case-insensitive (RFC 7235): "bearer" and "Bearer" alike.
        if scheme.lower() != b"bearer":
            return None
        presented = credentials.strip()
        found = None
        for secret, role in self._tokens:  # compare with every token: no early exit
            if hmac.compare_digest(presented, secret):
                found = role
        return found


def required_roles(method: str, path: str) -> frozenset[str]:
    """Which roles may make this request."""
    if method in ("GET", "HEAD"):
        return _ANYONE
    if path.startswith("/api/v1/ingestion/"):
        return _INGEST
    if path == "/api/v1/quarantine/replay":
        return _INGEST | _OPERATOR
    return _OPERATOR


_INGEST = frozenset({"ingest"})
_OPERATOR = frozenset({"operator"})
_ANYONE = frozenset({"ingest", "operator", "read"})


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
