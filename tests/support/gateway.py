"""Run the real daemon (`python -m edge run`) as a child process, as a user would."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.services import REPO_ROOT, env_without_edge_vars, free_port

TEST_TOKEN = "test-token-0123456789abcdef"


def gateway_config(port: int, buffer_path: Path, **overrides: Any) -> dict[str, Any]:
    """A minimal valid config for a test gateway; `overrides` replace whole sections."""
    config: dict[str, Any] = {
        "gateway": {"id": "gw-test", "shutdown_timeout_s": 20},
        "mqtt": {
            "port": port,
            "client_id": "gw-test-client",
            "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
            "subscriptions": [{"topic": "factory/#", "qos": 1,
                               "template": "factory/{site}/{asset}/{sensor}"}],
        },
        "buffer": {"path": str(buffer_path)},
        "logging": {"format": "json"},
        "http": {"port": free_port(), "token": TEST_TOKEN},
    }
    config.update(overrides)
    return config


@dataclass
class GatewayProcess:
    """A daemon child process with its config file and JSON log."""

    workdir: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)  # EDGE_ variables for the daemon
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "gateway.log"
        self.config_path = self.workdir / "edge.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))

    @property
    def buffer_path(self) -> Path:
        return Path(self.config["buffer"]["path"])

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.config['http']['port']}"

    def start(self, wait_connected: bool = True) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--config", str(self.config_path)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**env_without_edge_vars(), **self.env},
            )
        if wait_connected:
            self.wait_for_log("mqtt connected", occurrences=self.starts)

    def wait_for_log(self, message: str, occurrences: int = 1, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(1 for r in self.log_records() if r.get("message") == message) >= occurrences:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        raise TimeoutError(f"no log {message!r} after {timeout_s} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self.process = None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def buffer_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for_rows(path: Path, table: str, expected: int, timeout_s: float = 60.0) -> int:
    """Poll the buffer until `table` holds `expected` rows; returns the final count."""
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        if path.exists():
            try:
                count = buffer_rows(path, f"SELECT count(*) FROM {table}")[0][0]
            except sqlite3.OperationalError:
                count = 0
            if count >= expected:
                return int(count)
        time.sleep(0.1)
    return int(count)
