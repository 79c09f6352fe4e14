"""The HTTP API: health, readiness, metrics, ingestion, alerts, tasks, agents, pipeline.

`app` builds the FastAPI app from one typed port, `GatewayApi` (`backend`); `auth` holds the
token and body-size guards; `server` runs uvicorn inside the daemon's event loop.
"""
