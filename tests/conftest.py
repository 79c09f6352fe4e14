"""Fixtures: real brokers and gateway processes owned by the test that uses them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.detection.native import stale
from tests.support.gateway import GatewayProcess, gateway_config
from tests.support.services import Broker, running_broker


def pytest_configure(config: pytest.Config) -> None:
    """Edited detection sources with their old compiled modules (setup.py) would be tested
    as they were before the edit: refuse, and say how to rebuild."""
    if edited := stale():
        pytest.exit(f"edited since the detection modules were compiled: {', '.join(edited)}; "
                    "run `make install` to rebuild them", returncode=2)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto with the recommended config (config/mosquitto.conf) on a free port."""
    with running_broker(tmp_path / "broker") as started:
        yield started


@pytest.fixture
def make_gateway(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., GatewayProcess]]:
    """Builds gateway processes against `broker`; kills any left running at the end."""
    made: list[GatewayProcess] = []

    def make(name: str = "gw", **overrides: Any) -> GatewayProcess:
        workdir = tmp_path / name
        config = gateway_config(broker.port, workdir / "buffer.sqlite", **overrides)
        gateway = GatewayProcess(workdir, config)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        if gateway.alive():
            gateway.kill()


_RECONCILIATIONS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep every reconciliation line a fault test printed (captured output is hidden)."""
    if report.when == "call":
        _RECONCILIATIONS.extend(f"{report.nodeid.split('::')[-1]}: {line.strip()}"
                                for line in report.capstdout.splitlines()
                                if "reconciliation" in line or "soak:" in line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _RECONCILIATIONS:
        terminalreporter.section("reconciliation (published / stored / duplicates)")
        for line in _RECONCILIATIONS:
            terminalreporter.write_line(line)
