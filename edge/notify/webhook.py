"""WebhookSender: POSTs notifications to one URL, with retries and a rate limit.

A bounded queue decouples the agent from the HTTP peer: a slow or dead webhook never
slows detection. Posts beyond the rate limit, beyond the queue, or failing after every
retry are dropped, counted (`edge_notifications_total{channel="webhook",outcome=...}`) and
logged (rate-limited): the alert itself is in the buffer and synced regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType

import httpx

from edge.backoff import Backoff
from edge.logs import RateLimitedLog
from edge.metrics import GatewayMetrics
from edge.settings import WebhookSettings

log = logging.getLogger(__name__)


class WebhookSender:
    def __init__(self, settings: WebhookSettings, metrics: GatewayMetrics,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.url is None:
            raise ValueError("webhook url is not set")
        self._settings = settings
        self._metrics = metrics
        headers = {"content-type": "application/json"}
        if settings.token is not None:
            headers["authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=headers,
                                         transport=transport)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=settings.queue_size)
        self._sent_at: list[float] = []
        self._worker: asyncio.Task[None] | None = None
        self._problems = RateLimitedLog(log, interval_s=30)

    async def __aenter__(self) -> WebhookSender:
        self._worker = asyncio.create_task(self._work(), name="webhook")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.timeout_s):
                    await self._queue.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._client.aclose()
        self._problems.flush()

    def send(self, body: bytes) -> None:
        """Queue one JSON document; never blocks."""
        if not self._allowed_now():
            self._dropped("rate_limited")
            return
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self._dropped("queue_full")

    def _allowed_now(self) -> bool:
        now = time.monotonic()
        self._sent_at = [t for t in self._sent_at if now - t < 60.0]
        if len(self._sent_at) >= self._settings.max_per_minute:
            return False
        self._sent_at.append(now)
        return True

    async def _work(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self._post(body)
            finally:
                self._queue.task_done()

    async def _post(self, body: bytes) -> None:
        backoff = Backoff(0.5, 10.0)
        assert self._settings.url is not None
        for attempt in range(self._settings.retries + 1):
            try:
                response = await self._client.post(self._settings.url, content=body)
                if response.status_code < 500 and response.status_code != 429:
                    outcome = "sent" if response.is_success else "rejected"
                    self._metrics.notifications.labels("webhook", outcome).inc()
                    if not response.is_success:
                        self._problems.warning("rejected", "webhook rejected a notification",
                                               status=response.status_code)
                    return
            except httpx.HTTPError as exc:
                self._problems.warning("error", "webhook unreachable", error=repr(exc))
            if attempt < self._settings.retries:
                await asyncio.sleep(backoff.next_delay_s())
        self._dropped("failed")

    def _dropped(self, reason: str) -> None:
        self._metrics.notifications.labels("webhook", reason).inc()
        self._problems.warning(reason, "webhook notification dropped", reason=reason)
