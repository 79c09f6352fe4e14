"""Test-owned Mosquitto brokers (on free ports, with the recommended config) and helpers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RECOMMENDED_BROKER_CONFIG = REPO_ROOT / "config" / "mosquitto.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class Broker:
    """A mosquitto process owned by a test; restartable, killable."""

    workdir: Path
    port: int
    extra_config: str = ""
    use_recommended_config: bool = True
    listener_config: str | None = None  # replaces the plain anonymous listener
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> None:
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = RECOMMENDED_BROKER_CONFIG.read_text() if self.use_recommended_config else ""
        listener = self.listener_config or (
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        # Started as root (as in CI) Mosquitto would switch to the 'mosquitto' user, which
        # cannot read this test's private directory (persistence, certificates, passwords).
        run_as = "user root\n" if os.geteuid() == 0 else ""
        self.config_path.write_text(
            base
            + "\n" + run_as + listener
            + f"persistence_location {self.workdir}/\n"
            + ("persistence true\n" if not self.use_recommended_config else "")
            + self.extra_config
        )
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([mosquitto, "-c", str(self.config_path)],
                                        stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log_text(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_broker(workdir: Path, **kwargs: object) -> Iterator[Broker]:
    broker = Broker(workdir=workdir, port=free_port(), **kwargs)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def env_without_edge_vars() -> dict[str, str]:
    """The environment for a child gateway, free of the caller's EDGE_ overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
