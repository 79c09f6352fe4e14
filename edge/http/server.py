"""HttpServer: uvicorn serving the API inside the daemon's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from edge.settings import HttpSettings

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon owns SIGTERM/SIGINT; uvicorn must not take them over.
        yield


class HttpServer:
    """Binds first (a busy port fails here, clearly), then serves until closed."""

    def __init__(self, settings: HttpSettings, app: ASGIApp) -> None:
        self._settings = settings
        self._server = _EmbeddedServer(uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", server_header=False))
        self._task: asyncio.Task[None] | None = None
        self.port = settings.port

    async def __aenter__(self) -> HttpServer:
        sock = socket.socket(socket.AF_INET6 if ":" in self._settings.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._settings.host, self._settings.port))
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        log.info("http listening", extra={"address": f"{self._settings.host}:{self.port}"})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
