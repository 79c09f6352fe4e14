"""Review of field trial item 19: paged alerts and tasks miss nothing when items change."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from edge.buffer import SqliteBuffer
from edge.buffer.schema import APPLICATION_ID, MIGRATIONS
from edge.settings import BufferSettings
from edge.times import datetime_to_us
from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows

OPERATOR_TOKEN = "operator-token-0123456789"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
INGEST = {"authorization": f"Bearer {TEST_TOKEN}"}


def _page(gateway: GatewayProcess, url: str) -> tuple[list[dict[str, object]], str]:
    response = httpx.get(gateway.http_url + url, headers=OPERATOR, timeout=10)
    assert response.status_code == 200, response.text
    link = response.headers.get("link")
    return response.json(), link[1:link.index(">")] if link else ""


@pytest.mark.parametrize(("kind", "id_field"), [("alert", "alert_id"), ("task", "task_id")])
def test_an_item_updated_between_two_page_reads_is_not_skipped(
    make_gateway: Callable[..., GatewayProcess], kind: str, id_field: str,
) -> None:
    """Review of item 19: pages followed the latest version's seq, so an item updated while
    a client walked the pages moved above the cursor and was never listed."""
    gateway = make_gateway(
        http={**make_gateway().config["http"], "operator_token": OPERATOR_TOKEN},
        sensors={f"m/s{n}": {"asset": f"a{n}", "limits": {"max": 90.0}} for n in range(5)},
        assets={f"a{n}": {"criticality": "high"} for n in range(5)})
    gateway.start()
    now = int(time.time())
    body = [{"sensor_id": f"m/s{n}", "ts": now - 10 + n, "value": 99.0} for n in range(5)]
    assert httpx.post(gateway.http_url + "/api/v1/ingestion/sensor-reading/", headers=INGEST,
                      content=orjson.dumps(body), timeout=10).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_page(gateway, f"/api/v1/{kind}s?limit=100")[0]) < 5:
        time.sleep(0.1)
    everything = [item[id_field] for item in _page(gateway, f"/api/v1/{kind}s?limit=100")[0]]
    assert len(everything) == 5
    first, next_url = _page(gateway, f"/api/v1/{kind}s?limit=2")
    seen = [item[id_field] for item in first]
    not_yet_seen = everything[3]
    decided = httpx.post(f"{gateway.http_url}/api/v1/{kind}s/{not_yet_seen}/decisions",
                         headers=OPERATOR, timeout=10,
                         json={"action": "acknowledge", "actor": "tester"})
    assert decided.status_code == 200, decided.text
    while next_url:
        page, next_url = _page(gateway, next_url)
        seen += [item[id_field] for item in page]
    assert sorted(seen) == sorted(everything), f"{not_yet_seen} updated between pages: {seen}"
    assert gateway.terminate() == 0


async def test_the_migration_gives_old_alert_and_task_rows_their_stable_key(tmp_path: Path) -> None:
    """Review of item 19: buffer migration 6 fills started_us (alert opened_at, task
    created_at, to the microsecond) on the rows written before it."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:5], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("INSERT INTO buffer_meta VALUES ('gateway_id', 'gw')")
    conn.execute("INSERT INTO alerts (alert_id, state, updated_us, body) VALUES "
                 "('a1', 'open', 1, ?)", ('{"opened_at": "2026-11-24T10:00:00.123456Z"}',))
    conn.execute("INSERT INTO tasks (task_id, state, updated_us, body) VALUES "
                 "('t1', 'open', 1, ?)", ('{"created_at": "2026-11-24T11:00:00Z"}',))
    conn.close()
    async with SqliteBuffer(BufferSettings(path=path), "gw"):
        pass
    assert buffer_rows(path, "SELECT started_us FROM alerts") == [
        (datetime_to_us(datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)),)]
    assert buffer_rows(path, "SELECT started_us FROM tasks") == [
        (datetime_to_us(datetime(2026, 11, 24, 11, tzinfo=UTC)),)]
