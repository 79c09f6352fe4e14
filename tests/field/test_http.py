"""Field trial: the HTTP API of a running daemon, as a hostile first user met it."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
import yaml

from tests.support.gateway import TEST_TOKEN, GatewayProcess, buffer_rows

AUTH = {"authorization": f"Bearer {TEST_TOKEN}"}
INGEST = "/api/v1/ingestion/sensor-reading/"


@pytest.fixture
def gateway(make_gateway: Callable[..., GatewayProcess]) -> Iterator[GatewayProcess]:
    started = make_gateway()
    started.start()
    yield started
    if started.alive():
        assert started.terminate() == 0


def metric(gateway: GatewayProcess, line_start: str) -> float:
    text = httpx.get(gateway.http_url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_chunked_body_over_the_limit_gets_413_counted_and_logged(gateway: GatewayProcess) -> None:
    """Item 3: Transfer-Encoding: chunked with 1.1 MB answered 500 and logged nothing."""
    chunk = b"[" + b" " * 65_536

    def body() -> Iterator[bytes]:
        yield chunk
        for _ in range(17):  # 17 x 64 KiB more: about 1.1 MB, over the 1 MiB limit
            yield b" " * 65_536

    response = httpx.post(gateway.http_url + INGEST, headers=AUTH, content=body(), timeout=30)
    assert response.status_code == 413, response.text
    announced = httpx.post(gateway.http_url + INGEST, headers=AUTH, content=b" " * 1_200_000,
                           timeout=30)
    assert announced.status_code == 413
    assert metric(gateway, 'edge_http_requests_rejected_total{reason="body_too_large"}') == 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
            r.get("message") == "http request rejected: body too large" for r in gateway.log_records()):
        time.sleep(0.1)
    records = [r for r in gateway.log_records()
               if r.get("message") == "http request rejected: body too large"]
    assert records and records[0]["limit_bytes"] == 1_048_576
    assert gateway.alive()


def test_http_ingestion_is_counted_as_http_and_the_pipeline_report_moves(
    gateway: GatewayProcess,
) -> None:
    """Item 16: HTTP ingestion counted under subscription="unmatched"; the acquisition agent
    showed events_processed 0 after 400,000 messages."""
    body = b'[{"sensor_id": "m/t1", "value": 1.0}, {"sensor_id": "m/t2", "value": 2.0}]'
    for _ in range(3):
        assert httpx.post(gateway.http_url + INGEST, headers=AUTH, content=body,
                          timeout=10).status_code == 200
    assert metric(gateway, 'edge_messages_received_total{subscription="http"}') == 3
    assert metric(gateway, 'edge_messages_received_total{subscription="unmatched"}') == 0
    pipeline = httpx.get(gateway.http_url + "/api/v1/pipeline", headers=AUTH, timeout=10)
    assert pipeline.status_code == 200, "the pipeline's health is in the API"
    assert pipeline.json()["messages"] == 3 and pipeline.json()["readings"] == 6


def test_the_bearer_scheme_is_case_insensitive(gateway: GatewayProcess) -> None:
    """Item 19: `Authorization: bearer ...` (lowercase scheme) got 401 (RFC 7235)."""
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = httpx.get(gateway.http_url + "/api/v1/status", timeout=10,
                             headers={"authorization": f"{scheme} {TEST_TOKEN}"})
        assert response.status_code == 200, scheme
    assert httpx.get(gateway.http_url + "/api/v1/status", timeout=10,
                     headers={"authorization": f"bearer {TEST_TOKEN}x"}).status_code == 401


def test_lowercase_rfc3339_and_common_unit_spellings_are_accepted(
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 19: a lowercase `z` was rejected; `°C` and `DEGC` were quarantined as unit_mismatch."""
    gateway = make_gateway(sensors={f"m/{name}": {"unit": "degC"} for name in "bcd"})
    gateway.start()
    readings = [{"sensor_id": "m/a", "ts": "2026-11-24t10:00:00z", "value": 1.0},
                {"sensor_id": "m/b", "ts": "2026-11-24T10:00:00Z", "value": 20.0, "unit": "°C"},
                {"sensor_id": "m/c", "ts": "2026-11-24T10:00:00Z", "value": 20.0, "unit": "DEGC"},
                {"sensor_id": "m/d", "ts": "2026-11-24T10:00:00Z", "value": 68.0, "unit": "°F"}]
    response = httpx.post(gateway.http_url + INGEST, headers=AUTH, timeout=10,
                          content=orjson.dumps(readings))
    assert response.status_code == 200 and response.json()["rejected"] == [], response.text
    deadline = time.monotonic() + 5
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and len(rows) < 4:
        rows = buffer_rows(gateway.buffer_path,
                           "SELECT sensor_id, value, unit FROM readings ORDER BY sensor_id")
        time.sleep(0.1)
    assert rows == [("m/a", 1.0, None), ("m/b", 20.0, "degC"), ("m/c", 20.0, "degC"),
                    ("m/d", 20.0, "degC")]
    assert gateway.terminate() == 0


def test_the_api_docs_load_nothing_from_outside_the_gateway(gateway: GatewayProcess) -> None:
    """Item 19: /docs loaded Swagger UI from a CDN: blank on an offline shop floor."""
    page = httpx.get(gateway.http_url + "/docs", timeout=10)
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert httpx.get(gateway.http_url + source, timeout=10).status_code == 200, source
    assert httpx.get(gateway.http_url + "/openapi.json", timeout=10).status_code == 200


def test_alerts_are_paged_with_limit_and_cursor(make_gateway: Callable[..., GatewayProcess]) -> None:
    """Item 19: /api/v1/alerts had no paging (?limit ignored; 705 alerts = 322 KB)."""
    gateway = make_gateway(sensors={f"m/s{n}": {"limits": {"max": 90.0}} for n in range(5)})
    gateway.start()
    now = int(time.time())
    body = [{"sensor_id": f"m/s{n}", "ts": now - 10 + n, "value": 99.0} for n in range(5)]
    assert httpx.post(gateway.http_url + INGEST, headers=AUTH, content=orjson.dumps(body),
                      timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(httpx.get(
            gateway.http_url + "/api/v1/alerts?limit=1000", headers=AUTH, timeout=10).json()) < 5:
        time.sleep(0.1)
    seen: list[str] = []
    url = gateway.http_url + "/api/v1/alerts?limit=2"
    pages = 0
    while url:
        response = httpx.get(url, headers=AUTH, timeout=10)
        assert response.status_code == 200
        page = response.json()
        assert len(page) <= 2
        seen += [alert["alert_id"] for alert in page]
        pages += 1
        link = response.headers.get("link")
        url = gateway.http_url + link[1:link.index(">")] if link else ""
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    assert gateway.terminate() == 0


def test_quarantine_is_listed_by_reason_and_replayed_once_after_a_config_fix(
    make_gateway: Callable[..., GatewayProcess],
) -> None:
    """Item 19: no endpoint listed the quarantine; nothing replayed rows that pass now."""
    strict = {"accept_unknown_sensors": False}
    gateway = make_gateway(ingest=strict, sensors={"m/known": {"unit": "degC"}})
    gateway.start()
    body = [{"sensor_id": "m/known", "value": 1.0},
            {"sensor_id": "m/new", "ts": int(time.time()) - 5, "value": 2.0}, {"value": "x"}]
    httpx.post(gateway.http_url + INGEST, headers=AUTH, content=orjson.dumps(body), timeout=10)
    listed = httpx.get(gateway.http_url + "/api/v1/quarantine?reason=unknown_sensor",
                       headers=AUTH, timeout=10)
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["reason"], r["source"]) for r in rows] == [("unknown_sensor", "http")]
    assert '"m/new"' in rows[0]["payload_preview"] and rows[0]["replayed_at"] is None
    assert gateway.terminate() == 0
    gateway.config["sensors"] = {"m/known": {"unit": "degC"}, "m/new": {"unit": "degC"}}
    gateway.config_path.write_text(yaml.safe_dump(gateway.config))  # the config fix
    gateway.start()
    replay = gateway.http_url + "/api/v1/quarantine/replay"
    first = httpx.post(replay, headers=AUTH, timeout=30).json()
    assert first["replayed"] == 1 and first["still_rejected"] == {"invalid_value": 1}, first
    again = httpx.post(replay, headers=AUTH, timeout=30).json()
    assert again["replayed"] == 0 and again["examined"] == 1, "idempotent"
    readings = buffer_rows(gateway.buffer_path, "SELECT sensor_id FROM readings ORDER BY sensor_id")
    assert readings == [("m/known",), ("m/new",)]
    assert gateway.terminate() == 0


def test_a_conflicting_duplicate_is_answered_as_rejected_not_accepted(
    gateway: GatewayProcess,
) -> None:
    """Review of item 12: the answer came from a preview before the commit, so a reading the
    commit quarantined as conflicting_duplicate was answered as accepted."""
    ts = int(time.time()) - 30

    def post(*values: float) -> httpx.Response:
        body = [{"sensor_id": "m/c", "ts": ts, "value": value} for value in values]
        return httpx.post(gateway.http_url + INGEST, headers=AUTH, content=orjson.dumps(body),
                          timeout=10)

    in_one_batch = post(1.0, 2.0)
    assert in_one_batch.status_code == 200, in_one_batch.text
    answer = in_one_batch.json()
    assert answer["accepted"] == 1, answer
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(1, "conflicting_duplicate")]
    with_stored = post(3.0)
    assert with_stored.status_code == 422, with_stored.text
    assert [(r["index"], r["reason"]) for r in with_stored.json()["rejected"]] == [
        (0, "conflicting_duplicate")]
    repeat = post(1.0)  # an exact repeat is durable, not a conflict
    assert repeat.status_code == 200 and repeat.json()["rejected"] == [], repeat.text
    assert buffer_rows(gateway.buffer_path, "SELECT value FROM readings") == [(1.0,)]
    assert buffer_rows(gateway.buffer_path, "SELECT count(*) FROM quarantine WHERE "
                       "reason = 'conflicting_duplicate'") == [(2,)]


def test_an_unauthenticated_request_is_refused_before_its_body_is_read(
    gateway: GatewayProcess,
) -> None:
    """Review of item 3: the body-size guard sat outside the token check, so the gateway
    read up to 1 MiB of an unauthenticated body before answering 401."""
    port = int(gateway.http_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST {INGEST} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 1000000\r\n\r\n".encode())  # and no body (yet)
        sock.settimeout(3)
        try:
            answer = sock.recv(1024)
        except TimeoutError:
            answer = b""
    assert answer.startswith(b"HTTP/1.1 401"), f"no answer before the body was sent: {answer!r}"
    assert metric(gateway, 'edge_http_requests_rejected_total{reason="unauthorized"}') == 1
