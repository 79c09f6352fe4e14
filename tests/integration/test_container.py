"""The container image, checked without a Docker engine: lint, structure, and its wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.services import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_volumes() -> None:
    text = DOCKERFILE.read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and all("slim" in line for line in stages)
    final = text.split("FROM python:3.11-slim-bookworm\n", 1)[1]
    assert "pip wheel" not in final, "no building in the final stage"
    assert "USER ${UID}:${UID}" in final and "ARG UID=10001" in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "STOPSIGNAL SIGTERM" in final
    assert 'VOLUME ["/etc/edge-gateway", "/var/lib/edge-gateway"]' in final


def test_the_wheel_the_image_installs_carries_the_daemon_and_the_migrations(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "-w", str(tmp_path), str(REPO_ROOT)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("edge_gateway-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("edge/cli.py", "edge/daemon.py", "cloud_sync/syncer.py",
                     "migrations/env.py", "migrations/versions/0001_central_schema.py",
                     "migrations/script.py.mako"):
        assert required in names, required
    # The detection models are compiled (setup.py): the image needs no compiler to run them.
    assert any(n.startswith("edge/detection/tails.") and n.endswith(".so") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edge-gateway = edge.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
