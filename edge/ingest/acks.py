"""AwaitedAcks: an AckSink whose callers await their message's commit (HTTP, replays)."""

from __future__ import annotations

import asyncio
import itertools

from edge.ingest.ports import AckToken


class AwaitedAcks:
    """Each registered token is a future that the commit of its message resolves."""

    def __init__(self) -> None:
        self._waiting: dict[AckToken, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)

    def register(self) -> tuple[AckToken, asyncio.Future[None]]:
        token = AckToken(next(self._ids))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return token, future

    def forget(self, token: AckToken) -> None:
        self._waiting.pop(token, None)

    def acknowledge(self, tokens: list[AckToken]) -> None:
        for token in tokens:
            future = self._waiting.pop(token, None)
            if future is not None and not future.done():
                future.set_result(None)
