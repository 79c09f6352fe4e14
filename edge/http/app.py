"""The HTTP API (FastAPI): health, readiness, metrics, ingestion, alerts, tasks, agents."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from edge import __version__
from edge.errors import TemporarilyUnavailable
from edge.http.auth import ROLE_KEY, BearerTokenMiddleware, BodySizeLimitMiddleware, required_roles
from edge.http.backend import AgentReport, GatewayApi, Identity, Readiness
from edge.http.decisions import decision_routes
from edge.http.lists import list_routes
from edge.ingest.http_source import IngestOutcome
from edge.ingest.ports import PipelineHealth
from edge.settings import HttpSettings
from edge.status import StatusReport

STATIC_DIR = Path(__file__).parent / "static"
# Documents the scheme; the check itself is BearerTokenMiddleware's (auto_error off).
_A_DECISION = "/api/v1/tasks/{task_id}/decisions"  # who may POST here may decide
_BEARER = HTTPBearer(auto_error=False, description="http.token (or http.token_file)")


def create_app(api: GatewayApi, settings: HttpSettings) -> ASGIApp:
    """The ASGI app, wrapped in the token guard, then the body-size guard."""
    # The docs' scripts come from the gateway itself (fastapi-offline), not a CDN: shop
    # floors are offline. Every /api route declares the bearer scheme, so the docs'
    # Authorize button works.
    app = FastAPIOffline(title="edge-gateway", version=__version__,
                         description="Smart Maintenance Edge Gateway: health, metrics and API.",
                         dependencies=[Security(_BEARER)])

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field and what is wrong, counted and logged (rate-limited); the
        offending input is not echoed back (a 200 KB note would come back whole)."""
        api.request_rejected("invalid_request", request.url.path)
        return JSONResponse({"detail": [{"loc": list(error["loc"]), "msg": error["msg"],
                                         "type": error["type"]} for error in exc.errors()]},
                            status_code=422)

    @app.exception_handler(TemporarilyUnavailable)
    async def unavailable(request: Request, exc: TemporarilyUnavailable) -> JSONResponse:
        """A part being brought back (the detection worker restarting): nothing was applied."""
        return JSONResponse({"detail": f"temporarily unavailable, nothing applied: {exc}"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process and its event loop are alive (this answer comes from the loop)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], response_model=Readiness,
             responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        """MQTT is connected and the buffer takes commits; 503 with the reasons otherwise."""
        readiness = api.readiness()
        return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(api.metrics_registry),
                                 media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/v1/ingestion/sensor-reading/", tags=["ingestion"], response_model=IngestOutcome,
              responses={422: {"model": IngestOutcome}, 503: {"model": IngestOutcome}})
    async def ingest(request: Request) -> JSONResponse:
        """One reading or a JSON array of them; 2xx only after the durable commit.

        Rejected readings are quarantined (as over MQTT) and listed in the answer.
        """
        outcome = await api.ingest(await request.body())
        status = 503 if not outcome.committed else (200 if outcome.accepted else 422)
        return JSONResponse(outcome.model_dump(), status_code=status)

    app.mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui")

    @app.get("/", include_in_schema=False)
    async def operator_page() -> FileResponse:
        """The operator page (it asks for the operator token; nothing in it is secret)."""
        return FileResponse(STATIC_DIR / "operator.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """Browsers ask for it unasked, without a token: served, not refused."""
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @app.get("/api/v1/whoami", tags=["operations"])
    async def whoami(request: Request) -> Identity:
        """The role of the token presented, and whether it may decide (the operator page
        says so at sign-in, and refuses the ingest token)."""
        role = str(request.scope.get(ROLE_KEY, "none"))
        return Identity(role=role, may_decide=role in required_roles("POST", _A_DECISION))

    app.include_router(list_routes(api))
    app.include_router(decision_routes(api))

    @app.get("/api/v1/agents", tags=["operations"])
    async def agents() -> list[AgentReport]:
        """Every bus-driven agent: state, events processed, errors, queue and overflow."""
        return api.agents()

    @app.get("/api/v1/pipeline", tags=["operations"])
    async def pipeline() -> PipelineHealth:
        """The ingest pipeline: messages, batches, commits, errors, pending, overflow."""
        return api.pipeline()

    @app.get("/api/v1/status", tags=["operations"])
    async def status() -> StatusReport:
        """Buffer depth per kind, sync lag, central up/down, open alerts and tasks."""
        return await api.status()

    tokens = {role: secret.get_secret_value() for role, secret in (
        ("ingest", settings.token), ("operator", settings.operator_token),
        ("read", settings.read_token)) if secret is not None}
    # The token first: an unauthenticated request is refused before a byte of its body is
    # read (the size guard reads the body, up to http.max_body_bytes).
    limited = BodySizeLimitMiddleware(app, settings.max_body_bytes, api.request_rejected)
    return BearerTokenMiddleware(limited, tokens, api.request_rejected)
