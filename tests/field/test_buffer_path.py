"""Field trial, data loss: what may and may not happen to the file at `buffer.path`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from tests.field.support import run_cli, write_config
from tests.support.gateway import GatewayProcess, buffer_rows, gateway_config, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker, free_port


def test_a_directory_at_buffer_path_is_a_config_error_and_is_never_moved(
    tmp_path: Path, broker: Broker,
) -> None:
    """Item 1: a directory at buffer.path exits 2 naming buffer.path and is never renamed."""
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "keep").write_text("x")
    config = write_config(tmp_path / "edge.yaml",
                          gateway_config(broker.port, tmp_path / "unused.sqlite"))
    for command in ("status", "run", "check-config"):
        result = run_cli(command, "--config", str(config),
                         env={"EDGE_BUFFER__PATH": str(folder)}, timeout_s=30)
        assert result.returncode == 2, f"{command}: exit {result.returncode}\n{result.stderr}"
        assert "buffer.path" in result.stderr and "EDGE_BUFFER__PATH" in result.stderr, result.stderr
    assert folder.is_dir() and (folder / "keep").read_text() == "x"
    assert not list(tmp_path.glob("v.corrupt-*")), "the folder was moved aside"


def test_read_only_commands_never_create_a_missing_buffer(tmp_path: Path) -> None:
    """Item 1 (and 17): `status` reports a missing buffer; it creates no folder and no file."""
    missing = tmp_path / "nowhere" / "buffer.sqlite"
    config = write_config(tmp_path / "edge.yaml", {
        **gateway_config(free_port(), missing), "http": {"enabled": False}})
    result = run_cli("status", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"no buffer at {missing}" in result.stderr
    assert not missing.parent.exists()


def test_status_reads_a_stopped_daemons_buffer_without_leaving_files(
    make_gateway: Callable[..., GatewayProcess], broker: Broker,
) -> None:
    """Item 1: a read-only command opens the buffer read-only (no side files left behind)."""
    gateway = make_gateway("gw")
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", b"1.5")])
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    assert gateway.terminate() == 0
    before = sorted(p.name for p in gateway.buffer_path.parent.iterdir())
    config = write_config(gateway.workdir.parent / "status.yaml",
                          {**gateway.config, "http": {"enabled": False}})
    result = run_cli("status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "buffer readings   : 1 rows" in result.stdout
    assert sorted(p.name for p in gateway.buffer_path.parent.iterdir()) == before


def test_run_creates_a_missing_parent_folder(make_gateway: Callable[..., GatewayProcess],
                                             tmp_path: Path) -> None:
    """Item 1: `run` still creates a missing parent folder (the quick start relies on it)."""
    nested = tmp_path / "var" / "deep" / "buffer.sqlite"
    gateway = make_gateway("gw", buffer={"path": str(nested)})
    gateway.start()
    assert nested.exists()
    assert gateway.terminate() == 0


def test_a_second_daemon_on_the_same_buffer_exits_before_touching_it(
    make_gateway: Callable[..., GatewayProcess], broker: Broker,
) -> None:
    """Item 1: two daemons never share one buffer; the second exits with a clear message."""
    first = make_gateway("first")
    first.start()
    publish_all(broker.port, [(f"factory/s/a/t{k}", b"1.0") for k in range(10)])
    assert wait_for_rows(first.buffer_path, "readings", 10) == 10
    second = make_gateway("second", buffer={"path": str(first.buffer_path)},
                          mqtt={**first.config["mqtt"], "client_id": "second-client"})
    second.start(wait_connected=False)
    deadline = time.monotonic() + 20
    while second.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not second.alive(), "the second daemon must not run on a buffer in use"
    assert second.process is not None and second.process.returncode == 1
    assert "is in use by another edge-gateway" in second.log_text()
    assert first.alive()
    publish_all(broker.port, [("factory/s/a/after", b"2.0")])
    assert wait_for_rows(first.buffer_path, "readings", 11) == 11
    assert first.terminate() == 0
    assert buffer_rows(first.buffer_path, "SELECT count(*) FROM readings")[0][0] == 11
    assert not list(first.buffer_path.parent.glob("*.corrupt-*"))


def test_status_says_central_is_not_configured_instead_of_showing_a_lag(
    make_gateway: Callable[..., GatewayProcess], broker: Broker,
) -> None:
    """Item 17: status showed 'sync lag 7.83 s' when central was not configured."""
    gateway = make_gateway("gw")
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", b"1.5")])
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    time.sleep(1.5)
    for phase in ("daemon", "buffer"):
        result = run_cli("status", "--config", str(gateway.config_path))
        assert result.returncode == 0, result.stderr
        lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
        assert lines["sync lag      "].strip() == "central not configured", result.stdout
        assert lines["central       "].strip() == "not configured", result.stdout
        if phase == "daemon":
            assert gateway.terminate() == 0


def _digests(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_status_reads_a_killed_daemons_buffer_with_its_wal_and_changes_nothing(
    make_gateway: Callable[..., GatewayProcess], broker: Broker,
) -> None:
    """Review of item 1: after kill -9 the rows live in the -wal; status read the file with
    immutable=1, which ignores the WAL ("not an edge-gateway buffer", or too few rows)."""
    gateway = make_gateway("gw", http={"enabled": False})
    gateway.start()
    publish_all(broker.port, [(f"factory/s/a/t{k % 20}", f"{k}".encode()) for k in range(3000)])
    assert wait_for_rows(gateway.buffer_path, "readings", 3000) == 3000
    gateway.kill()
    wal = gateway.buffer_path.with_name(gateway.buffer_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the kill left the rows in the WAL"
    before = _digests(gateway.buffer_path, wal)
    result = run_cli("status", "--config", str(gateway.config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "buffer readings   : 3000 rows" in result.stdout, result.stdout
    assert _digests(gateway.buffer_path, wal) == before, "status changed the buffer or its WAL"
    gateway.start()  # the daemon starts on the same files afterwards, and has every row
    assert gateway.terminate() == 0
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM readings")[0][0] == 3000


def test_a_second_daemon_reaching_the_buffer_through_a_symlink_exits_before_touching_it(
    make_gateway: Callable[..., GatewayProcess], broker: Broker, tmp_path: Path,
) -> None:
    """Review of item 1: the lock was named from the path as written, so a second daemon
    whose buffer.path is a symlink to the first one's buffer ran on it too."""
    first = make_gateway("first")
    first.start()
    link = tmp_path / "elsewhere" / "link.sqlite"
    link.parent.mkdir()
    link.symlink_to(first.buffer_path)
    second = make_gateway("second", buffer={"path": str(link)},
                          mqtt={**first.config["mqtt"], "client_id": "second-client"})
    second.start(wait_connected=False)
    deadline = time.monotonic() + 20
    while second.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not second.alive(), "the second daemon must not run on a buffer in use"
    assert "is in use by another edge-gateway" in second.log_text()
    assert first.alive()
    assert first.terminate() == 0


def test_a_dangling_symlink_at_buffer_path_is_a_one_line_config_error(tmp_path: Path) -> None:
    """Review of item 1: a dangling symlink made `run` die with a FileNotFoundError traceback."""
    link = tmp_path / "buffer.sqlite"
    link.symlink_to(tmp_path / "unmounted" / "buffer.sqlite")
    config = write_config(tmp_path / "edge.yaml", gateway_config(free_port(), link))
    for command in ("run", "status", "check-config"):
        result = run_cli(command, "--config", str(config), timeout_s=30)
        assert result.returncode == 2, f"{command}: exit {result.returncode}\n{result.stderr}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "buffer.path" in lines[0] and "symlink" in lines[0], lines
    assert not (tmp_path / "unmounted").exists(), "nothing was created through the link"
