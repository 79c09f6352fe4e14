"""A PostgreSQL 15 cluster of a test's own, optionally with stand-in extensions.

Stand-in extensions need a private copy of the server's install (PostgreSQL finds its
`share/` relative to its binary), so adding a control file never touches the machine's
shared server. Clusters run as the `postgres` user (initdb refuses root) on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_PG_LIB = Path("/usr/lib/postgresql/15")
_PG_SHARE = Path("/usr/share/postgresql/15")


@dataclass
class Cluster:
    base: Path
    bin: Path
    data: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"),
                               "-D", str(self.data), *args], capture_output=True, timeout=60,
                              check=check)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.base / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop", check=False)


@contextlib.contextmanager
def private_postgres(port: int, stub_extensions: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A started cluster; `stub_extensions` maps an extension name to its install script."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        raise RuntimeError("private clusters need root (as in CI), to run initdb as 'postgres'")
    base = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    bin_dir = PG_BIN
    if stub_extensions:
        bin_dir = _relocated_install(base, stub_extensions)
    shutil.chown(base, "postgres", "postgres")
    cluster = Cluster(base, bin_dir, base / "data", port)
    subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D",
                    str(cluster.data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                   f"unix_socket_directories = '{base}'\n")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def _relocated_install(base: Path, stubs: dict[str, str]) -> Path:
    lib = base / "usr/lib/postgresql/15"
    share = base / "usr/share/postgresql/15"
    shutil.copytree(_PG_LIB, lib, symlinks=True)
    shutil.copytree(_PG_SHARE, share, symlinks=True)
    for name, script in stubs.items():
        (share / "extension" / f"{name}.control").write_text(
            f"comment = 'test stand-in for {name}'\ndefault_version = '2.28.0'\n")
        (share / "extension" / f"{name}--2.28.0.sql").write_text(script)
    for path in (base / "usr").rglob("*"):
        if not path.is_symlink():
            shutil.chown(path, "postgres", "postgres")
    return lib / "bin"


# TimescaleDB installed but not in shared_preload_libraries: CREATE EXTENSION fails with a
# FATAL error and the server closes the connection. The stand-in does the same.
TIMESCALE_NOT_PRELOADED = {"timescaledb": "SELECT pg_terminate_backend(pg_backend_pid());\n"}

# A database restored from a TimescaleDB server onto one where the library is not preloaded:
# the extension is installed (CREATE EXTENSION worked elsewhere), and its first function call
# is FATAL, closing the connection, as the real one's is.
TIMESCALE_INSTALLED_NOT_PRELOADED = {"timescaledb": (
    "CREATE FUNCTION create_hypertable(relation regclass, time_column_name name, "
    "chunk_time_interval interval DEFAULT NULL, if_not_exists boolean DEFAULT false) "
    "RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "PERFORM pg_terminate_backend(pg_backend_pid()); END $$;\n")}
