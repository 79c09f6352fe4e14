"""Review of field trial item 19: replaying the quarantine after a config fix."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
import yaml

from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows, wait_for_rows
from tests.support.publish import publish_all
from tests.support.services import Broker

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}
STRICT = {"accept_unknown_sensors": False}


def _reading(sensor_id: str) -> bytes:
    return orjson.dumps({"sensor_id": sensor_id, "ts": int(time.time()) - 5, "value": 1.0})


def _fix_config(gateway: GatewayProcess, *sensors: str) -> None:
    gateway.config["sensors"] = {sensor: {} for sensor in sensors}
    gateway.config_path.write_text(yaml.safe_dump(gateway.config))


def _replay(gateway: GatewayProcess, **params: object) -> dict[str, object]:
    response = httpx.post(gateway.http_url + "/api/v1/quarantine/replay", headers=AUTH,
                          params=params, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_unfiltered_replay_is_not_stuck_behind_rows_no_config_can_fix(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 19: 10,050 invalid_json rows, then one unknown_sensor row: every
    unfiltered replay examined the same oldest 10,000 rows and replayed nothing."""
    gateway = make_gateway(ingest=STRICT, sensors={"m/known": {}})
    gateway.start()
    publish_all(broker.port, [(f"factory/s/a/t{k % 10}", b"{not json") for k in range(10_050)])
    publish_all(broker.port, [("factory/s/a/t", _reading("m/new"))])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 10_051) == 10_051
    assert gateway.terminate() == 0
    _fix_config(gateway, "m/known", "m/new")
    gateway.start()
    first = _replay(gateway)
    assert first["replayed"] == 1, first
    assert _replay(gateway)["replayed"] == 0, "idempotent"
    assert buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings") == [("m/new",)]
    assert gateway.terminate() == 0


def test_a_replay_walks_the_whole_quarantine_in_pages_with_a_cursor(
    broker: Broker, make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Review of item 19: rows that still fail were never passed, so a replay never got
    past the oldest `limit` rows; `after_seq` and `next_after_seq` walk all of them."""
    gateway = make_gateway(ingest=STRICT, sensors={"m/known": {}})
    gateway.start()
    publish_all(broker.port, [("factory/s/a/t", _reading("m/other")) for _ in range(150)])
    publish_all(broker.port, [("factory/s/a/t", _reading("m/new"))])
    assert wait_for_rows(gateway.buffer_path, "quarantine", 151) == 151
    assert gateway.terminate() == 0
    _fix_config(gateway, "m/known", "m/new")
    gateway.start()
    pages = [_replay(gateway, limit=100)]
    while pages[-1].get("next_after_seq") is not None and len(pages) < 5:
        pages.append(_replay(gateway, limit=100, after_seq=pages[-1]["next_after_seq"]))
    assert [page["examined"] for page in pages] == [100, 51], pages
    assert sum(int(page["replayed"]) for page in pages) == 1  # type: ignore[call-overload]
    assert pages[0]["still_rejected"] == {"unknown_sensor": 100}
    assert buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings") == [("m/new",)]
    assert gateway.terminate() == 0
