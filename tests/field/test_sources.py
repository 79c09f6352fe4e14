"""Review of field trial items 16 and 19: where a message came from (MQTT topic, HTTP,
the buffer itself) is not the same namespace as MQTT topic names."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import yaml

from edge.buffer import SqliteBuffer
from edge.buffer.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from edge.settings import BufferSettings
from tests.field.test_http import metric
from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}


def _catch_all(port: int) -> dict[str, object]:
    return {"port": port, "client_id": "gw-sources",
            "reconnect": {"initial_delay_s": 0.1, "max_delay_s": 1.0},
            "subscriptions": [{"topic": "#", "qos": 1}]}


def test_an_mqtt_topic_named_http_is_counted_under_its_subscription(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 16: a message on the MQTT topic `http` was counted (and decoded) as
    HTTP ingestion, subscription="http"."""
    gateway = make_gateway(mqtt=_catch_all(broker.port))
    gateway.start()
    publish_all(broker.port, [("http", orjson.dumps({"sensor_id": "m/x", "value": 1.0}))])
    assert wait_for_rows(gateway.buffer_path, "readings", 1) == 1
    assert metric(gateway, 'edge_messages_received_total{subscription="#"}') == 1
    assert metric(gateway, 'edge_messages_received_total{subscription="http"}') == 0
    assert gateway.terminate() == 0


def test_a_quarantined_mqtt_message_on_topic_buffer_can_be_replayed(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 19: a quarantined MQTT message on the topic `buffer` was taken for a
    conflict row of the buffer and could never be replayed."""
    gateway = make_gateway(mqtt=_catch_all(broker.port), ingest={"accept_unknown_sensors": False},
                           sensors={"m/known": {}})
    gateway.start()
    reading = {"sensor_id": "m/new", "ts": int(time.time()) - 5, "value": 1.0}
    publish_all(broker.port, [("buffer", orjson.dumps(reading))])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 1) == 1
    assert gateway.terminate() == 0
    gateway.config["sensors"] = {"m/known": {}, "m/new": {}}
    gateway.config_path.write_text(yaml.safe_dump(gateway.config))
    gateway.start()
    outcome = httpx.post(gateway.http_url + "/api/v1/quarantine/replay", headers=AUTH,
                         timeout=30).json()
    assert outcome["replayed"] == 1, outcome
    assert buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings") == [("m/new",)]
    listed = httpx.get(gateway.http_url + "/api/v1/quarantine", headers=AUTH, timeout=10).json()
    assert [(r["source"], r["transport"]) for r in listed] == [("buffer", "mqtt")], listed
    assert gateway.terminate() == 0


async def test_the_migration_gives_old_quarantine_rows_their_transport(tmp_path: Path) -> None:
    """Review of items 16/19: the buffer migration that separates the namespaces sorts the
    rows written before it: 'http' was HTTP ingestion, a 'buffer' conflicting_duplicate the
    buffer's own row, anything else an MQTT topic."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:4], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("INSERT INTO buffer_meta VALUES ('gateway_id', 'gw')")
    rows = [("http", "unknown_sensor"), ("buffer", "conflicting_duplicate"),
            ("buffer", "unknown_sensor"), ("factory/a/b", "invalid_json")]
    conn.executemany("INSERT INTO quarantine (received_us, source, payload, reason, detail) "
                     "VALUES (1, ?, x'7b7d', ?, '')", rows)
    conn.close()
    async with SqliteBuffer(BufferSettings(path=path), "gw") as buffer:
        entries = await buffer.quarantine.page(None, 10, None)
    assert SCHEMA_VERSION > 4
    assert [(e.source, e.transport) for e in reversed(entries)] == [
        ("http", "http"), ("buffer", "buffer"), ("buffer", "mqtt"), ("factory/a/b", "mqtt")]


async def test_salvage_from_an_older_buffer_gives_its_quarantine_rows_their_transport(
    tmp_path: Path,
) -> None:
    """Review of items 16/19: salvage copies an older file's quarantine rows with the
    migration's rule for the transport they lack."""
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:4], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    conn.execute("INSERT INTO quarantine (received_us, source, payload, reason, detail) "
                 "VALUES (1, 'http', x'7b7d', 'unknown_sensor', '')")
    conn.close()
    async with SqliteBuffer(BufferSettings(path=tmp_path / "live.sqlite"), "gw") as buffer:
        report = await buffer.salvage_from(old)
        entries = await buffer.quarantine.page(None, 10, None)
    assert report.recovered["quarantine"] == 1, report
    assert [(e.source, e.transport) for e in entries] == [("http", "http")]
