"""The HTTP API's boundary, in-process (the app as the daemon serves it, over a fake
GatewayApi): what it refuses and how it says so. End to end: tests/integration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from edge.errors import TemporarilyUnavailable
from edge.http.app import create_app
from edge.http.backend import Page
from edge.maintenance.decisions import DecisionParams, DecisionRequest, DecisionResult, decision_record
from edge.settings import HttpSettings

OPERATOR = {"authorization": "Bearer operator-token-0123456789"}
INGEST = {"authorization": "Bearer ingest-token-0123456789"}
READ = {"authorization": "Bearer read-token-0123456789"}


class FakeApi:
    """Just what the routes under test call; records the states asked for."""

    def __init__(self) -> None:
        self.decided: list[DecisionRequest] = []
        self.states: list[Any] = []
        self.status_of = "applied"
        self.rejected: list[tuple[str, str]] = []
        self.unavailable = False

    def request_rejected(self, reason: str, path: str) -> None:
        self.rejected.append((reason, path))

    async def decide(self, request: DecisionRequest) -> DecisionResult:
        if self.unavailable:
            raise TemporarilyUnavailable("the detection worker is not running")
        self.decided.append(request)
        now = datetime.now(UTC)
        return DecisionResult(self.status_of,  # type: ignore[arg-type]
                              decision_record(request, now, "applied", "done"))

    async def alerts(self, states: Any, limit: int, cursor: str | None) -> Page[Any]:
        self.states.append(states)
        return Page([], None)

    async def tasks(self, states: Any, limit: int, cursor: str | None) -> Page[Any]:
        self.states.append(states)
        return Page([], None)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[httpx.AsyncClient]:
    settings = HttpSettings(token=SecretStr("ingest-token-0123456789"),
                            operator_token=SecretStr("operator-token-0123456789"),
                            read_token=SecretStr("read-token-0123456789"))
    transport = httpx.ASGITransport(create_app(api, settings))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


async def test_a_snooze_until_without_offset_is_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, api: FakeApi,
) -> None:
    response = await client.post("/api/v1/alerts/a1/decisions", headers=OPERATOR, json={
        "action": "snooze", "actor": "jane", "params": {"until": "2026-11-27T08:00:00"}})
    assert response.status_code == 422
    assert "until" in response.text and "UTC offset" in response.text
    assert api.decided == [], "never reaches the agents"
    applied = await client.post("/api/v1/alerts/a1/decisions", headers=OPERATOR, json={
        "action": "snooze", "actor": "jane", "params": {"until": "2026-11-27T08:00:00Z"}})
    assert applied.status_code == 200
    assert api.decided[0].params.until == datetime(2026, 11, 27, 8, tzinfo=UTC)


def test_every_way_in_refuses_a_naive_snooze_time() -> None:
    with pytest.raises(ValidationError) as caught:
        DecisionRequest(target_kind="alert", target_id="a1", action="snooze", actor="hmi",
                        params={"until": "2026-11-27T08:00:00"})  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"] == ("params", "until")
    assert DecisionParams(until="2026-11-27T08:00:00+01:00").until is not None  # type: ignore[arg-type]


def test_the_cli_refuses_a_naive_until_before_calling_the_daemon() -> None:
    import argparse

    from edge.operator.cli import _aware_time

    with pytest.raises(argparse.ArgumentTypeError, match="needs a UTC offset"):
        _aware_time("2026-11-27T08:00")
    assert _aware_time("2026-11-27T08:00Z") == "2026-11-27T08:00:00+00:00"


TASK_STATES = ["open", "acknowledged", "in_progress", "done", "cancelled"]


@pytest.mark.parametrize("state", [*TASK_STATES, "active"])
async def test_the_task_list_takes_every_state_and_active(
    client: httpx.AsyncClient, api: FakeApi, state: str,
) -> None:
    response = await client.get(f"/api/v1/tasks?state={state}", headers=READ)
    assert response.status_code == 200, response.text
    expected = ("open", "acknowledged", "in_progress") if state == "active" else (state,)
    assert api.states == [expected]


@pytest.mark.parametrize("state", ["open", "resolved", "closed", "active"])
async def test_the_alert_list_takes_every_state_and_active(
    client: httpx.AsyncClient, api: FakeApi, state: str,
) -> None:
    response = await client.get(f"/api/v1/alerts?state={state}", headers=READ)
    assert response.status_code == 200, response.text
    # acknowledged and snoozed alerts stay open: active is every open one
    assert api.states == [("open",) if state == "active" else (state,)]


async def test_an_unknown_state_is_a_422_that_lists_the_valid_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tasks?state=closed", headers=READ)
    assert response.status_code == 422 and "in_progress" in response.text


def test_the_filters_the_api_documents_are_the_ones_the_rules_define() -> None:
    from typing import get_args

    from edge.http.backend import AlertState, TaskState
    from edge.maintenance.alerts import ALERT_FILTERS
    from edge.maintenance.tasks import TASK_FILTERS

    assert set(get_args(AlertState)) == set(ALERT_FILTERS)
    assert set(get_args(TaskState)) == set(TASK_FILTERS) == {*TASK_STATES, "active"}


@pytest.mark.parametrize(("kind", "state"), [("tasks", "in_progress"), ("tasks", "active"),
                                             ("alerts", "closed"), ("alerts", "active")])
def test_the_cli_list_takes_the_same_filters(kind: str, state: str) -> None:
    from edge.cli import build_parser

    args = build_parser().parse_args([kind, "list", "--state", state])
    assert args.state == state
    with pytest.raises(SystemExit):
        build_parser().parse_args([kind, "list", "--state", "bogus"])


async def test_the_favicon_is_served_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/favicon.ico")  # browsers ask for it unasked, tokenless
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")


async def test_whoami_names_the_role_of_the_token(client: httpx.AsyncClient) -> None:
    for headers, role, may_decide in ((OPERATOR, "operator", True), (INGEST, "ingest", False),
                                      (READ, "read", False)):
        response = await client.get("/api/v1/whoami", headers=headers)
        assert response.json() == {"role": role, "may_decide": may_decide}
    assert (await client.get("/api/v1/whoami")).status_code == 401


@pytest.mark.parametrize("body", [
    {"action": "assign", "actor": "x", "note": "a\u0000b", "params": {"assignee": "bob"}},
    {"action": "assign", "actor": "x\u0000", "params": {"assignee": "bob"}},
    {"action": "assign", "actor": "x", "params": {"assignee": "b\u0000ob"}},
    {"action": "complete", "actor": "x", "params": {"parts": ["seal\u0000"]}},
])
async def test_text_with_nul_is_refused_with_422_and_never_applied(
    client: httpx.AsyncClient, api: FakeApi, body: dict[str, object],
) -> None:
    """PostgreSQL cannot store NUL: one decision note holding it once stopped all central
    sync of the gateway (issue 12 review F0). Refused at every way in, as 422 here."""
    response = await client.post("/api/v1/tasks/t1/decisions", headers=OPERATOR, json=body)
    assert response.status_code == 422 and "NUL" in response.text
    assert api.decided == []


@pytest.mark.parametrize("path", [
    "/api/v1/sensors/pump-3/temperature/readings?until=2026-11-26T16:00:00",
    "/api/v1/alerts?cursor=99999999999999999999999:x",
    "/api/v1/tasks?cursor=99999999999999999999999:x",
    "/api/v1/quarantine?cursor=99999999999999999999999",
])
async def test_odd_read_parameters_are_a_422_not_a_500(client: httpx.AsyncClient, path: str) -> None:
    """A naive chart time and an oversized cursor answered 500 with a traceback (review F10)."""
    response = await client.get(path, headers=OPERATOR)
    assert response.status_code == 422, response.text


async def test_a_malformed_decision_is_counted_and_its_input_not_echoed(
    client: httpx.AsyncClient, api: FakeApi,
) -> None:
    """HTTP 422s were neither counted nor logged, and echoed the whole input (review F5)."""
    note = "x" * 200_000
    response = await client.post("/api/v1/tasks/t1/decisions", headers=OPERATOR,
                                 json={"action": "fly", "actor": "x", "note": note})
    assert response.status_code == 422 and len(response.content) < 2_000
    assert "note" in response.text and api.rejected == [("invalid_request",
                                                        "/api/v1/tasks/t1/decisions")]


async def test_a_part_being_brought_back_is_a_503_with_retry_after_not_a_500(
    client: httpx.AsyncClient, api: FakeApi,
) -> None:
    api.unavailable = True
    response = await client.post("/api/v1/alerts/a1/decisions", headers=OPERATOR,
                                 json={"action": "acknowledge", "actor": "jane"})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "nothing applied" in response.json()["detail"]
    assert api.decided == []
