"""TLS to the broker (server verification, client certificate, password) and to PostgreSQL
(sslmode=verify-full), against a test-owned Mosquitto and a test-owned PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud_sync import migrate
from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import readings
from tests.support.certs import ThrowawayCA
from tests.support.gateway import GatewayProcess, gateway_config, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MQTT_PASSWORD = "s3cret-broker-pass"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, ThrowawayCA, int]]:
    """Mosquitto with a TLS listener (client certificate + password) and a plain one."""
    ca = ThrowawayCA(tmp_path / "pki")
    server = ca.issue("broker", server=True)
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "edge", MQTT_PASSWORD],
                   check=True, capture_output=True)
    tls_port, plain_port = free_port(), free_port()
    listener = (f"per_listener_settings false\nallow_anonymous false\npassword_file {passwords}\n"
                f"listener {tls_port} 127.0.0.1\ncafile {ca.cert}\ncertfile {server.cert}\n"
                f"keyfile {server.key}\nrequire_certificate true\n"
                f"listener {plain_port} 127.0.0.1\n")
    broker = Broker(workdir=tmp_path / "broker", port=plain_port, listener_config=listener)
    broker.start()
    try:
        yield broker, ca, tls_port
    finally:
        broker.stop()


_STARTED: list[GatewayProcess] = []


@pytest.fixture(autouse=True)
def _kill_leftover_gateways() -> Iterator[None]:
    yield
    while _STARTED:
        gateway = _STARTED.pop()
        if gateway.alive():
            gateway.kill()


def _tls_gateway(tmp_path: Path, name: str, port: int, tls: dict[str, object],
                 password: str) -> GatewayProcess:
    secret = tmp_path / f"{name}-password"
    secret.write_text(password)
    config = gateway_config(port, tmp_path / f"{name}.sqlite")
    config["mqtt"].update({"tls": tls, "username": "edge", "password_file": str(secret)})
    gateway = GatewayProcess(tmp_path / name, config)
    _STARTED.append(gateway)  # killed after the test even if it fails half way
    return gateway


def test_mqtt_over_tls_with_client_certificate_and_password(
    tmp_path: Path, tls_broker: tuple[Broker, ThrowawayCA, int]
) -> None:
    broker, ca, tls_port = tls_broker
    client = ca.issue("edge-gateway", server=False)
    gateway = _tls_gateway(tmp_path, "good", tls_port, {
        "enabled": True, "ca_file": str(ca.cert), "cert_file": str(client.cert),
        "key_file": str(client.key)}, MQTT_PASSWORD)
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", str(k).encode()) for k in range(200)],
                client_id="plain-pub", username="edge", password=MQTT_PASSWORD)
    assert wait_for_rows(gateway.buffer_path, "readings", 200) == 200
    assert gateway.terminate() == 0
    assert MQTT_PASSWORD not in gateway.log_text()


@pytest.mark.parametrize("case", ["unknown CA", "no client certificate", "wrong password"])
def test_mqtt_tls_refuses_what_it_must(tmp_path: Path, tls_broker: tuple[Broker, ThrowawayCA, int],
                                       case: str) -> None:
    _, ca, tls_port = tls_broker
    other_ca = ThrowawayCA(tmp_path / "other-pki", name="someone else")
    client = ca.issue("edge-gateway", server=False)
    tls: dict[str, object] = {"enabled": True, "ca_file": str(ca.cert),
                              "cert_file": str(client.cert), "key_file": str(client.key)}
    password = MQTT_PASSWORD
    if case == "unknown CA":
        tls["ca_file"] = str(other_ca.cert)
    elif case == "no client certificate":
        tls = {"enabled": True, "ca_file": str(ca.cert)}
    else:
        password = "not-the-password"
    gateway = _tls_gateway(tmp_path, "bad", tls_port, tls, password)
    gateway.start(wait_connected=False)
    gateway.wait_for_log("mqtt unavailable; reconnecting with backoff")
    time.sleep(0.5)
    assert not any(r.get("message") == "mqtt connected" for r in gateway.log_records())
    assert gateway.terminate() == 0
    assert password not in gateway.log_text()


@pytest.fixture
def tls_postgres(tmp_path: Path) -> Iterator[tuple[int, ThrowawayCA]]:
    """A PostgreSQL 15 cluster of our own that only accepts TLS on 127.0.0.1."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.fail("this test runs as root (as CI does), to start a cluster as 'postgres'")
    base = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    shutil.chown(base, "postgres", "postgres")
    ca = ThrowawayCA(tmp_path / "pg-pki")
    server = ca.issue("localhost", server=True, with_ip=False)  # valid for "localhost" only
    for source, target in ((server.cert, "server.crt"), (server.key, "server.key")):
        shutil.copy(source, base / target)
        shutil.chown(base / target, "postgres", "postgres")
    data, port = base / "data", free_port()

    def as_postgres(*command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True,
                       capture_output=True, timeout=60)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\n"
                                      "host all all 127.0.0.1/32 reject\n")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                   f"ssl = on\nssl_cert_file = '{base}/server.crt'\nssl_key_file = '{base}/server.key'\n")
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start")
    try:
        yield port, ca
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data),
                        "-m", "immediate", "stop"], capture_output=True, check=False, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _central(port: int, ca: Path, sslmode: str, host: str = "localhost") -> CentralSettings:
    return CentralSettings(dsn=f"postgresql://postgres@{host}:{port}/postgres",  # type: ignore[arg-type]
                           sslmode=sslmode, sslrootcert=ca, idle_interval_s=0.05,  # type: ignore[arg-type]
                           connect_timeout_s=3, reconnect={"initial_delay_s": 0.1, "max_delay_s": 0.5})


async def _sync_some(settings: CentralSettings, path: Path) -> CentralSyncer:
    async with SqliteBuffer(BufferSettings(path=path), "gw-tls") as buffer:
        await buffer.readings.commit_batch(readings(500), [])
        syncer = CentralSyncer(settings, "gw-tls", "test", source=buffer.sync, metrics=GatewayMetrics())
        task = asyncio.create_task(syncer.run())
        async with asyncio.timeout(10):
            while (await buffer.status.depths())["readings"].unsynced and syncer.online is not False:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        await syncer.close()
        await task
        return syncer


def test_central_sync_over_tls_with_verify_full(tmp_path: Path,
                                                tls_postgres: tuple[int, ThrowawayCA]) -> None:
    port, ca = tls_postgres
    settings = _central(port, ca.cert, "verify-full")
    migrate.upgrade(settings)
    syncer = asyncio.run(_sync_some(settings, tmp_path / "b.sqlite"))
    assert syncer.online is True and syncer.last_error is None

    wrong_ca = ThrowawayCA(tmp_path / "wrong-pki", name="not the server's CA")
    refused = asyncio.run(_sync_some(_central(port, wrong_ca.cert, "verify-full"),
                                     tmp_path / "c.sqlite"))
    assert refused.online is False and "certificate verify failed" in (refused.last_error or "")
    wrong_name = asyncio.run(_sync_some(_central(port, ca.cert, "verify-full", host="127.0.0.1"),
                                        tmp_path / "d.sqlite"))
    assert wrong_name.online is False, "verify-full checks the host name"
    assert "127.0.0.1" in (wrong_name.last_error or "") or "match" in (wrong_name.last_error or "")
    ca_only = asyncio.run(_sync_some(_central(port, ca.cert, "verify-ca", host="127.0.0.1"),
                                     tmp_path / "e.sqlite"))
    assert ca_only.online is True, "verify-ca checks the chain, not the name"


def test_gateway_config_can_name_tls_files(tmp_path: Path,
                                           make_gateway: Callable[..., GatewayProcess]) -> None:
    ca = ThrowawayCA(tmp_path / "pki")
    gateway = make_gateway(central={"dsn": "postgresql://edge@localhost/x", "sslmode": "verify-full",
                                    "sslrootcert": str(ca.cert)})
    result = subprocess.run([sys.executable, "-m", "edge", "check-config", "--config",
                             str(gateway.config_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "sslmode: verify-full" in result.stdout
