"""Secrets stay secret; hostile sensor ids reach SQL only as bound parameters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from cloud_sync.syncer import CentralSyncer
from edge.buffer import SqliteBuffer
from edge.metrics import GatewayMetrics
from edge.records import Reading
from edge.settings import BufferSettings, CentralSettings
from tests.support.central import central_rows, dsn_for, fresh_database
from tests.support.gateway import GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import REPO_ROOT, Broker, env_without_edge_vars, free_port

SECRETS = {"mqtt": "mqtt-Secret-9f3a1c", "central": "pg-Secret-77d0e2",
           "http": "http-Secret-token-51b8c4aa", "webhook": "hook-Secret-0c4e9d"}


def test_secrets_never_reach_logs_check_config_or_error_messages(
    tmp_path: Path, broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    files = {}
    for name, secret in SECRETS.items():
        files[name] = tmp_path / f"{name}.secret"
        files[name].write_text(secret)
    gateway = make_gateway(
        mqtt={"port": broker.port, "client_id": "gw-sec", "username": "edge",
              "password_file": str(files["mqtt"]),
              "subscriptions": [{"topic": "factory/#", "template": "factory/{site}/{asset}/{sensor}"}]},
        # an unreachable central database, so its errors get logged
        central={"dsn": f"postgresql://edge:{SECRETS['central']}@127.0.0.1:1/x", "sslmode": "disable",
                 "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 0.2}},
        http={"port": free_port(),
              "token_file": str(files["http"])},
        notifications={"webhook": {"url": "http://127.0.0.1:1/hook", "token_file": str(files["webhook"]),
                                   "retries": 0}},
    )
    gateway.start(wait_connected=False)
    gateway.wait_for_log("central database offline; buffering and retrying with backoff")
    assert gateway.terminate() == 0
    outputs = {"log": gateway.log_text()}
    checked = subprocess.run([sys.executable, "-m", "edge", "check-config", "--config",
                              str(gateway.config_path)], capture_output=True, text=True,
                             cwd=REPO_ROOT, env=env_without_edge_vars(), check=False, timeout=60)
    outputs["check-config"] = checked.stdout + checked.stderr
    bad = dict(gateway.config)
    bad["mqtt"] = {**gateway.config["mqtt"], "port": "not-a-port"}
    import yaml
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(bad))
    broken = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(bad_path)],
                            capture_output=True, text=True, cwd=REPO_ROOT,
                            env=env_without_edge_vars(), check=False, timeout=60)
    outputs["config error"] = broken.stdout + broken.stderr
    assert broken.returncode == 2
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} secret leaked into the {where}"
    assert "**********" in outputs["check-config"]


HOSTILE_IDS = ["'); DROP TABLE sensor_readings;--", 'x" OR 1=1 --', "robert'); --",
               "$1::text", "\\\\x00", "sensor\u202eevil", "a" * 300]


def test_hostile_sensor_ids_are_bound_parameters_all_the_way_to_postgresql(tmp_path: Path) -> None:
    with fresh_database() as database:
        asyncio.run(_sync_hostile(tmp_path, database))
        rows = asyncio.run(central_rows(database, "SELECT sensor_id, gateway_id FROM sensor_readings"))
        tables = asyncio.run(central_rows(
            database, "SELECT count(*) FROM pg_tables WHERE tablename = 'sensor_readings'"))
    assert sorted(r[0] for r in rows) == sorted(HOSTILE_IDS)
    assert {r[1] for r in rows} == {"gw';--"}
    assert tables[0][0] == 1


async def _sync_hostile(tmp_path: Path, database: str) -> None:
    settings = CentralSettings(dsn=dsn_for(database), sslmode="disable", idle_interval_s=0.05)  # type: ignore[arg-type]
    async with SqliteBuffer(BufferSettings(path=tmp_path / "b.sqlite"), "gw';--") as buffer:
        # straight into the buffer, past the validator that would quarantine them
        await buffer.readings.commit_batch([Reading(sid, "asset'); --", 1_700_000_000_000_000 + n, 1.0,
                                           "u'--", "q\"", 0, 1) for n, sid in enumerate(HOSTILE_IDS)],
                                  [])
        syncer = CentralSyncer(settings, "gw';--", "1'; --", source=buffer.sync, metrics=GatewayMetrics())
        task = asyncio.create_task(syncer.run())
        async with asyncio.timeout(20):
            while (await buffer.status.depths())["readings"].unsynced:
                await asyncio.sleep(0.05)
        await syncer.close()
        await task


def test_hostile_ids_over_mqtt_are_quarantined_not_executed(
    broker: Broker, make_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway()
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", orjson.dumps({"sensor_id": sid, "value": 1}))
                              for sid in HOSTILE_IDS])
    assert wait_for_rows(gateway.buffer_path, "quarantine", len(HOSTILE_IDS)) == len(HOSTILE_IDS)
    assert gateway.terminate() == 0
    assert {r for (r,) in buffer_rows(gateway.buffer_path, "SELECT reason FROM quarantine")} == {
        "invalid_sensor_id"}
