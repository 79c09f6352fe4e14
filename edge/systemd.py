"""systemd integration: readiness and a watchdog fed by pipeline progress.

Under `Type=notify` the daemon sends READY=1 once MQTT is connected and the buffer is
open, and WATCHDOG=1 every half `WatchdogSec` - but only while the ingest pipeline is
alive: a commit attempt returned recently, or nothing is waiting. A blocked committer (or
a stuck event loop, which cannot run this task at all) stops the pings, and systemd
restarts the service. Outside systemd (no NOTIFY_SOCKET) everything here is a no-op.
The datagrams go through libsystemd's sd_notify (cysystemd).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)


def _sd_notify(line: str) -> None:
    from cysystemd.daemon import sd_notify  # type: ignore[attr-defined]

    sd_notify(line)


class SystemdNotifier:
    def __init__(self, progressing: Callable[[], bool],
                 send: Callable[[str], None] = _sd_notify) -> None:
        self._progressing = progressing
        self._send = send
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval_s = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() else None
        self._was_progressing = True
        self._ready = asyncio.Event()

    def _notify(self, line: str) -> None:
        if self.enabled:
            try:
                self._send(line)
            except Exception:  # never let a notification take the daemon down
                log.exception("sd_notify failed")

    def ready(self, status: str) -> None:
        self._notify(f"READY=1\nSTATUS={status}")
        self._ready.set()

    def stopping(self) -> None:
        self._notify("STOPPING=1\nSTATUS=stopping")

    async def feed_watchdog(self) -> None:
        """After READY=1, ping while the pipeline progresses; runs until cancelled."""
        if not self.enabled or self.watchdog_interval_s is None:
            return
        await self._ready.wait()  # systemd only watches a service once it is ready
        while True:
            progressing = self._progressing()
            if progressing:
                self._notify("WATCHDOG=1")
            elif self._was_progressing:
                log.error("pipeline stalled: no commit returned in time; watchdog pings stop")
            self._was_progressing = progressing
            await asyncio.sleep(self.watchdog_interval_s)
