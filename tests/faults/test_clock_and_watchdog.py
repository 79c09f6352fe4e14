"""Clock jumps lose nothing; a blocked committer stops the systemd watchdog pings."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest

from edge.daemon import Gateway
from edge.records import QuarantineRecord, Reading, RetainedTaken
from edge.settings import Settings
from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

NOW_S = time.time()


def test_out_of_order_and_far_past_timestamps_are_all_kept(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    stamps = ([NOW_S - k for k in range(500)]            # newest first: out of order
              + [978_307_200.0 + k for k in range(200)]    # 2001: a PLC with a flat battery
              + [NOW_S - 86_400 * 365 - k for k in range(300)])  # a year ago, backfilled
    messages = [(f"factory/s/a/t{k % 4}", orjson.dumps({"ts": ts, "value": k}))
                for k, ts in enumerate(stamps)]
    publish_all(broker.port, messages)
    assert wait_for_rows(gateway.buffer_path, "readings", len(stamps)) == len(stamps)
    assert gateway.terminate() == 0
    values = sorted(int(v) for (v,) in buffer_rows(gateway.buffer_path, "SELECT value FROM readings"))
    print(f"\nreconciliation: published {len(stamps)} / buffer {len(values)} / duplicates 0")
    assert values == list(range(len(stamps)))


class _BlockingWriter:
    """The real buffer, except that commits block once `block` is set (a stuck committer)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.block = threading.Event()

    async def commit_batch(self, readings: Sequence[Reading], quarantine: Sequence[QuarantineRecord],
                           retained: Sequence[RetainedTaken] = ()) -> object:
        if self.block.is_set():
            await asyncio.Event().wait()  # never returns
        return await self._inner.commit_batch(readings, quarantine, retained)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)  # every other method of the writer port, as it is


async def test_a_stalled_pipeline_stops_the_watchdog_pings(
    tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    settings = Settings(
        gateway={"id": "gw-stall"}, buffer={"path": str(tmp_path / "b.sqlite")},
        mqtt={"port": broker.port, "client_id": "gw-stall",
              "subscriptions": [{"topic": "factory/#", "template": "factory/{site}/{asset}/{sensor}"}]},
        http={"enabled": False}, systemd={"watchdog_stall_s": 1.0},
    )
    gateway = Gateway(settings)
    writer = _BlockingWriter(gateway.buffer.readings)
    gateway.pipeline._writer = writer  # type: ignore[assignment]
    stop = asyncio.Event()
    runner = asyncio.create_task(gateway.run(stop))

    def pings(seconds: float) -> int:
        return sum(1 for line in _drain(listener, seconds) if line == "WATCHDOG=1")

    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(pings, 1.0) >= 5, "pings while healthy"
    writer.block.set()
    await asyncio.to_thread(publish_all, broker.port, [("factory/s/a/t", b"1.0")] * 20)
    await asyncio.sleep(1.5)  # the commit has now been stuck longer than watchdog_stall_s
    _drain(listener, 0.05)  # forget the pings sent before the stall was noticed
    assert await asyncio.to_thread(pings, 1.5) == 0, "no pings while the committer is stuck"
    stop.set()
    gateway.pipeline._closing = True
    runner.cancel()
    with pytest.raises(BaseException):  # noqa: B017 - cancelled mid-commit on purpose
        await runner
    listener.close()


def _drain(listener: socket.socket, seconds: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            lines += listener.recv(4096).decode().splitlines()
        except BlockingIOError:
            time.sleep(0.02)
    return lines
