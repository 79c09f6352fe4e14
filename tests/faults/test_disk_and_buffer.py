"""Disk full, a corrupt buffer file, and the buffer's size cap, with the real daemon."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.load import reading_message, reconcile
from tests.support.publish import publish_all
from tests.support.services import REPO_ROOT, Broker, env_without_edge_vars


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs: a disk that can really fill up (root only, as in CI)."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"cannot mount a tmpfs (needs root): {result.stderr}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # the disk is full
    finally:
        os.close(fd)
    return ballast


def test_disk_full_stops_acks_says_why_and_recovers_when_space_returns(
    broker: Broker, make_gateway: Callable[..., GatewayProcess], small_disk: Path
) -> None:
    gateway = make_gateway(buffer={"path": str(small_disk / "buffer.sqlite")})
    gateway.start()
    publish_all(broker.port, (reading_message(k) for k in range(1_000)))
    assert wait_for_rows(gateway.buffer_path, "readings", 1_000) == 1_000
    ballast = _fill(small_disk)
    publish_all(broker.port, (reading_message(k) for k in range(1_000, 6_000)))
    deadline = time.monotonic() + 30
    ready = httpx.get(gateway.http_url + "/readyz", timeout=5)
    while ready.status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(gateway.http_url + "/readyz", timeout=5)
    assert ready.status_code == 503
    assert "full" in ready.json()["reasons"][0], ready.json()
    stuck = buffer_rows(gateway.buffer_path, "SELECT count(*) FROM readings")[0][0]
    assert stuck < 6_000, "nothing more could be committed"
    assert gateway.alive()
    ballast.unlink()  # space returns
    assert wait_for_rows(gateway.buffer_path, "readings", 6_000, timeout_s=60) == 6_000
    deadline = time.monotonic() + 20
    while httpx.get(gateway.http_url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "ready again once commits succeed"
        time.sleep(0.2)
    assert gateway.terminate() == 0
    logs = [r for r in gateway.log_records() if r.get("message") == "buffer commit failed; not acknowledging"]
    assert logs, "the failure is logged"
    reconcile(6_000, [v for (v,) in buffer_rows(gateway.buffer_path, "SELECT value FROM readings")],
              "buffer")


def test_a_corrupt_buffer_is_moved_aside_intake_goes_on_and_salvage_recovers_it(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    publish_all(broker.port, (reading_message(k) for k in range(10_000)))
    assert wait_for_rows(gateway.buffer_path, "readings", 10_000) == 10_000
    assert gateway.terminate() == 0
    conn = sqlite3.connect(gateway.buffer_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(gateway.buffer_path.read_bytes())
    data[40 * 4096:42 * 4096] = os.urandom(2 * 4096)  # two damaged pages
    gateway.buffer_path.write_bytes(bytes(data))

    gateway.start()
    moved = [r for r in gateway.log_records() if r.get("message", "").startswith("buffer file moved aside")]
    assert moved and moved[0]["problem"].startswith("corrupt")
    old = Path(moved[0]["moved_to"])
    assert old.exists() and old.read_bytes() == bytes(data), "moved, never overwritten"
    publish_all(broker.port, (reading_message(k) for k in range(10_000, 12_000)))
    assert wait_for_rows(gateway.buffer_path, "readings", 2_000) == 2_000, "intake goes on"
    metrics = httpx.get(gateway.http_url + "/metrics", timeout=5).text
    assert 'edge_buffer_files_moved_aside_total{reason="corrupt"} 1.0' in metrics

    result = subprocess.run([sys.executable, "-m", "edge", "buffer", "salvage", str(old),
                             "--config", str(gateway.config_path)], capture_output=True, text=True,
                            timeout=120, cwd=REPO_ROOT, env=env_without_edge_vars(), check=False)
    assert result.returncode == 0, result.stderr
    recovered = int(result.stdout.split("readings: ")[1].split()[0])
    assert gateway.terminate() == 0
    total = buffer_rows(gateway.buffer_path, "SELECT count(*) FROM readings")[0][0]
    print(f"\nreconciliation: published 12000 / buffer {total} / salvaged {recovered} "
          f"/ lost with the damaged pages {10_000 - recovered}")
    assert total == 2_000 + recovered
    assert recovered >= 9_000, "every page but the damaged ones gives its rows back"


def test_the_buffer_cap_during_an_outage_evicts_by_policy_counts_and_keeps_running(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway(central={"dsn": "postgresql://postgres@127.0.0.1:1/unreachable",
                                    "sslmode": "disable"})
    gateway.config["buffer"]["max_bytes"] = 1024**2  # 1 MiB: ~15,000 readings
    gateway.config_path.write_text(yaml.safe_dump(gateway.config))
    gateway.start()
    publish_all(broker.port, (reading_message(k) for k in range(40_000)))
    deadline = time.monotonic() + 60
    evicted = 0.0
    while time.monotonic() < deadline and evicted == 0:
        text = httpx.get(gateway.http_url + "/metrics", timeout=5).text
        evicted = sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(
            'edge_buffer_evicted_total{kind="readings",reason="cap_reached_unsynced"}'))
        time.sleep(0.5)
    assert evicted > 0, "the cap was reached and rows were evicted"
    assert gateway.alive(), "the daemon keeps running"
    stored = buffer_rows(gateway.buffer_path, "SELECT count(*), min(value), max(value) FROM readings")[0]
    assert gateway.terminate() == 0
    print(f"\nreconciliation: published 40000 / buffer {stored[0]} / evicted {evicted:.0f} "
          f"(oldest first: kept values {stored[1]:.0f}..{stored[2]:.0f})")
    assert stored[2] == 39_999, "the newest readings are kept"
    assert stored[0] + evicted >= 40_000 - 1, "every reading is either kept or counted as evicted"
