"""Field trial, crashes: TimescaleDB installed but not preloaded, and central.timescale.mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from tests.field.support import run_cli, write_config
from tests.support.central import dsn_for, fresh_database
from tests.support.pg_cluster import (
    TIMESCALE_INSTALLED_NOT_PRELOADED,
    TIMESCALE_NOT_PRELOADED,
    private_postgres,
)
from tests.support.services import free_port


def _config(tmp_path: Path, dsn: str, mode: str | None) -> Path:
    central: dict[str, object] = {"dsn": dsn, "sslmode": "disable"}
    if mode is not None:
        central["timescale"] = {"mode": mode}
    return write_config(tmp_path / f"edge-{mode}.yaml", {
        "gateway": {"id": "gw"}, "mqtt": {"subscriptions": [{"topic": "#"}]}, "central": central})


def _problems(stderr: str) -> list[str]:
    """stderr without Alembic's progress lines (INFO ...)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("INFO ")]


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}
    finally:
        await conn.close()


def test_installed_but_not_preloaded_stops_with_one_line_that_names_the_fix(tmp_path: Path) -> None:
    """Item 2: `db upgrade` on a server where CREATE EXTENSION timescaledb is FATAL."""
    with private_postgres(free_port(), TIMESCALE_NOT_PRELOADED) as cluster:
        result = run_cli("db", "upgrade", "--config", str(_config(tmp_path, cluster.dsn, None)))
        assert result.returncode == 1, result.stderr
        lines = _problems(result.stderr)
        assert len(lines) == 1, result.stderr
        assert "shared_preload_libraries = 'timescaledb'" in lines[0] and "mode: off" in lines[0]
        assert "PendingRollbackError" not in result.stderr
        # mode: off chooses plain PostgreSQL deliberately; the server is left as it was.
        off = run_cli("db", "upgrade", "--config", str(_config(tmp_path, cluster.dsn, "off")))
        assert off.returncode == 0, off.stderr
        assert {"sensor_readings", "anomaly_alerts"} <= asyncio.run(_tables(cluster.dsn))
        required = run_cli("db", "downgrade", "base", "--config",
                           str(_config(tmp_path, cluster.dsn, "off")))
        assert required.returncode == 0, required.stderr
        strict = run_cli("db", "upgrade", "--config",
                         str(_config(tmp_path, cluster.dsn, "required")))
        assert strict.returncode == 1 and "shared_preload_libraries" in strict.stderr


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_plain_postgresql_without_the_extension_gets_plain_tables(tmp_path: Path, mode: str) -> None:
    """Item 2: extension absent -> plain tables (auto, with the notice; off, silently)."""
    with fresh_database(migrated=False) as database:
        result = run_cli("db", "upgrade", "--config", str(_config(tmp_path, dsn_for(database), mode)))
        assert result.returncode == 0, result.stderr
        assert ("TimescaleDB is not available" in result.stderr) == (mode == "auto")
        assert "sensor_readings" in asyncio.run(_tables(dsn_for(database)))


def test_required_fails_clearly_when_the_extension_is_absent(tmp_path: Path) -> None:
    """Item 2: mode required on plain PostgreSQL stops, saying the extension is missing."""
    with fresh_database(migrated=False) as database:
        result = run_cli("db", "upgrade", "--config",
                         str(_config(tmp_path, dsn_for(database), "required")))
        assert result.returncode == 1
        assert "timescaledb" in result.stderr and "not installed" in result.stderr
        assert len(_problems(result.stderr)) == 1, result.stderr


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_an_installed_extension_that_is_not_preloaded_stops_with_one_line(tmp_path: Path) -> None:
    """Review of item 2: when the extension was already installed (a restored database),
    the preload check was skipped and create_hypertable was FATAL mid-migration."""
    with private_postgres(free_port(), TIMESCALE_INSTALLED_NOT_PRELOADED) as cluster:
        asyncio.run(_execute(cluster.dsn, "CREATE EXTENSION timescaledb"))
        result = run_cli("db", "upgrade", "--config", str(_config(tmp_path, cluster.dsn, None)))
        assert result.returncode == 1, result.stderr
        lines = _problems(result.stderr)
        assert len(lines) == 1, result.stderr
        assert "shared_preload_libraries = 'timescaledb'" in lines[0], lines[0]
        assert "sensor_readings" not in asyncio.run(_tables(cluster.dsn)), "nothing half-made"
