"""Helpers for the field-trial regression tests: run the CLI as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.services import REPO_ROOT, env_without_edge_vars


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """`edge-gateway ARGS` in a child process, with only the given EDGE_ variables."""
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=REPO_ROOT,
                          env={**env_without_edge_vars(), **(env or {})}, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path
