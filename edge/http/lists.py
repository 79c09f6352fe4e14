"""The API's lists: alerts, tasks and quarantine, paged with `limit` and `cursor`.

A page is the newest items first; when there are more, the response carries the cursor of
the next page in `X-Next-Cursor` and a `Link: <...>; rel="next"` header (RFC 8288), and
the body stays a plain JSON list. Alerts and tasks are ordered by when they opened / were
created (then id), which an update does not change, so an item updated while a client
walks the pages is neither skipped nor listed twice; the quarantine by its seq.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request, Response

from edge.http.backend import AlertState, GatewayApi, Page, QuarantineItem, TaskState
from edge.ingest.replay import ReplayOutcome
from edge.maintenance.alerts import ALERT_FILTERS
from edge.maintenance.tasks import TASK_FILTERS
from edge.records import AlertRecord, TaskRecord

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[int | None, Query(ge=0, le=2**63 - 1,
                                     description="X-Next-Cursor of the previous page.")]
# <time in microseconds>:<id>; at most 18 digits, so it fits SQLite's 64-bit integers.
ItemCursor = Annotated[str | None, Query(pattern=r"^\d{1,18}:.+$", max_length=300,
                                         description="X-Next-Cursor of the previous page.")]


def _paged(page: Page[T], request: Request, response: Response) -> list[T]:
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["X-Next-Cursor"] = str(page.next_cursor)
        response.headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
    return page.items


def list_routes(api: GatewayApi) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/alerts", tags=["maintenance"])
    async def alerts(request: Request, response: Response, state: AlertState | None = None,
                     limit: Limit = 100, cursor: ItemCursor = None) -> list[AlertRecord]:
        """The latest version of each alert, the most recently opened first.

        `state`: open, resolved, closed, or active (open; acknowledged and snoozed alerts
        stay open)."""
        states = ALERT_FILTERS[state] if state else None
        return _paged(await api.alerts(states, limit, cursor), request, response)

    @router.get("/api/v1/tasks", tags=["maintenance"])
    async def tasks(request: Request, response: Response, state: TaskState | None = None,
                    limit: Limit = 100, cursor: ItemCursor = None) -> list[TaskRecord]:
        """The latest version of each maintenance task, the most recently created first.

        `state`: open, acknowledged, in_progress, done, cancelled, or active (open,
        acknowledged and in_progress)."""
        states = TASK_FILTERS[state] if state else None
        return _paged(await api.tasks(states, limit, cursor), request, response)

    @router.get("/api/v1/quarantine", tags=["operations"])
    async def quarantine(request: Request, response: Response, reason: str | None = None,
                         limit: Limit = 100, cursor: Cursor = None) -> list[QuarantineItem]:
        """Rejected messages, newest first, optionally of one reason."""
        return _paged(await api.quarantine(reason, limit, cursor), request, response)

    @router.post("/api/v1/quarantine/replay", tags=["operations"])
    async def replay(reason: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
                     after_seq: Annotated[int, Query(ge=0)] = 0) -> ReplayOutcome:
        """Send again, through the pipeline, the quarantined messages that pass now.

        For after a config fix (a sensor or unit added). Idempotent: a row is replayed once.
        Walks the quarantine oldest first, `limit` rows at a time: give the answer's
        `next_after_seq` as `after_seq` until it is null.
        """
        return await api.replay_quarantine(reason, limit, after_seq)

    return router
