"""systemd: the unit verifies and rates well; READY=1 and WATCHDOG=1 reach a real notify socket."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.systemd import SystemdNotifier
from tests.support.gateway import GatewayProcess
from tests.support.services import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "edge-gateway.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


@needs_systemd
def test_unit_file_verifies_clean(tmp_path: Path) -> None:
    # On a gateway ExecStart points at /opt/edge-gateway; here at this checkout's command.
    unit = tmp_path / "edge-gateway.service"
    edge_gateway = Path(sys.executable).with_name("edge-gateway")
    unit.write_text(UNIT.read_text().replace("/opt/edge-gateway/bin/edge-gateway", str(edge_gateway)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


@needs_systemd
def test_unit_file_exposure_is_at_most_2() -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for edge-gateway.service: ([\d.]+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    print(f"systemd-analyze security: {found.group(1)}")
    assert float(found.group(1)) <= 2.0


def test_daemon_sends_ready_then_watchdog_pings_to_the_notify_socket(
    tmp_path: Path, make_gateway: Callable[..., GatewayProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(0.5)
    gateway = make_gateway()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.setattr("tests.support.gateway.env_without_edge_vars",
                        lambda: {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")})
    gateway.start()
    received: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and received.count("WATCHDOG=1") < 3:
        try:
            received += listener.recv(4096).decode().splitlines()
        except TimeoutError:
            continue
    assert gateway.terminate() == 0
    try:
        while True:
            received += listener.recv(4096).decode().splitlines()
    except TimeoutError:
        pass
    listener.close()
    assert "READY=1" in received
    assert received.index("READY=1") < received.index("WATCHDOG=1")
    assert received.count("WATCHDOG=1") >= 3
    assert "STOPPING=1" in received


async def test_watchdog_pings_stop_while_the_pipeline_is_stalled(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent")
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    sent: list[str] = []
    progressing = [True]
    notifier = SystemdNotifier(lambda: progressing[0], send=sent.append)
    task = asyncio.create_task(notifier.feed_watchdog())
    await asyncio.sleep(0.05)
    assert sent == [], "no pings before READY=1"
    notifier.ready("ingesting")
    await asyncio.sleep(0.1)
    pinged = sent.count("WATCHDOG=1")
    assert pinged >= 3
    progressing[0] = False
    await asyncio.sleep(0.1)
    assert sent.count("WATCHDOG=1") <= pinged + 1, "no pings while stalled"
    progressing[0] = True
    await asyncio.sleep(0.1)
    assert sent.count("WATCHDOG=1") >= pinged + 3, "pings resume with progress"
    task.cancel()
