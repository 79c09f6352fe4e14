"""The HTTP API (FastAPI): health, readiness, metrics, ingestion, alerts, tasks, agents."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge import __version__
from edge.http.auth import BearerTokenMiddleware, BodySizeLimitMiddleware
from edge.http.backend import GatewayBackend

AlertState = Literal["open", "resolved"]
TaskState = Literal["open", "done", "cancelled"]


def create_app(backend: GatewayBackend) -> Any:
    """The ASGI app, wrapped in the token and body-size guards."""
    app = FastAPI(title="edge-gateway", version=__version__,
                  description="Smart Maintenance Edge Gateway: health, metrics and API.")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process and its event loop are alive (this answer comes from the loop)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """MQTT is connected and the buffer takes commits; 503 with the reasons otherwise."""
        reasons = backend.not_ready_reasons()
        return JSONResponse({"ready": not reasons, "reasons": reasons},
                            status_code=503 if reasons else 200)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(backend.metrics.registry),
                                 media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/v1/ingestion/sensor-reading/", tags=["ingestion"])
    async def ingest(request: Request) -> JSONResponse:
        """One reading or a JSON array of them; 2xx only after the durable commit.

        Rejected readings are quarantined (as over MQTT) and listed in the answer.
        """
        outcome = await backend.ingest(await request.body())
        body = {"committed": outcome.committed, "accepted": outcome.accepted,
                "rejected": outcome.rejected}
        if not outcome.committed:
            return JSONResponse(body, status_code=503)
        return JSONResponse(body, status_code=200 if outcome.accepted else 422)

    @app.get("/api/v1/alerts", tags=["maintenance"])
    async def alerts(state: AlertState | None = None) -> list[dict[str, Any]]:
        return await backend.alerts(state)

    @app.get("/api/v1/tasks", tags=["maintenance"])
    async def tasks(state: TaskState | None = None) -> list[dict[str, Any]]:
        return await backend.tasks(state)

    @app.get("/api/v1/agents", tags=["operations"])
    async def agents() -> list[dict[str, Any]]:
        return backend.agents()

    @app.get("/api/v1/status", tags=["operations"])
    async def status() -> dict[str, Any]:
        """Buffer depth per kind, sync lag, central up/down, open alerts and tasks."""
        return await backend.status()

    token = backend.settings.http.token
    guarded = BearerTokenMiddleware(app, token.get_secret_value() if token else None)
    return BodySizeLimitMiddleware(guarded, backend.settings.http.max_body_bytes)
