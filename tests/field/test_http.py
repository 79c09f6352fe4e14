"""Field trial: the HTTP API of a running daemon, as a hostile first user met it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.gateway import TEST_TOKEN, GatewayProcess

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
