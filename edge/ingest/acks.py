"""AwaitedAcks: a sink whose callers await their message's commit and receipt (HTTP, replays)."""

from __future__ import annotations

import asyncio
import itertools

from edge.ingest.ports import AckToken, MessageReceipt


class AwaitedAcks:
    """Each registered token is a future that the commit of its message resolves with the
    message's receipt (what the commit did with it)."""

    def __init__(self) -> None:
        self._waiting: dict[AckToken, asyncio.Future[MessageReceipt]] = {}
        self._ids = itertools.count(1)

    def register(self) -> tuple[AckToken, asyncio.Future[MessageReceipt]]:
        token = AckToken(next(self._ids))
        future: asyncio.Future[MessageReceipt] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return token, future

    def forget(self, token: AckToken) -> None:
        self._waiting.pop(token, None)

    def settle(self, receipts: dict[AckToken, MessageReceipt]) -> None:
        for token, receipt in receipts.items():
            future = self._waiting.pop(token, None)
            if future is not None and not future.done():
                future.set_result(receipt)

    def acknowledge(self, tokens: list[AckToken]) -> None:
        """Committed, without a receipt (a pipeline that does not trace): nothing to report."""
        self.settle({token: MessageReceipt() for token in tokens})
