"""`edge-gateway status`: ask the running daemon over HTTP, or read the buffer if it is down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from edge.buffer import SqliteBuffer
from edge.http.backend import buffer_status
from edge.settings import Settings


def gather_status(settings: Settings) -> dict[str, Any]:
    http = settings.http
    if http.enabled:
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
        headers = {"authorization": f"Bearer {http.token.get_secret_value()}"} if http.token else {}
        try:
            response = httpx.get(f"http://{host}:{http.port}/api/v1/status", headers=headers,
                                 timeout=5)
            if response.status_code == 200:
                return {"source": "daemon", **response.json()}
        except httpx.HTTPError:
            pass  # not running (or not reachable): read the buffer instead
    return {"source": "buffer (daemon not reachable)", **asyncio.run(_from_buffer(settings))}


async def _from_buffer(settings: Settings) -> dict[str, Any]:
    async with SqliteBuffer(settings.buffer, settings.gateway.id) as buffer:
        return await buffer_status(buffer, mqtt_connected=None, central=None)


def render(status: dict[str, Any]) -> str:
    lines = [f"source        : {status['source']}"]
    for kind, depth in status["buffer"].items():
        synced = "" if kind == "quarantine" else f" ({depth['unsynced']} not yet synced)"
        lines.append(f"buffer {kind:<11}: {depth['rows']} rows{synced}")
    lines += [
        f"sync lag      : {status['sync_lag_s']} s",
        f"central       : {status['central'] or 'not configured / unknown'}",
        f"mqtt          : {_yes_no(status['mqtt_connected'])}",
        f"open alerts   : {status['open_alerts']}",
        f"open tasks    : {status['open_tasks']}",
    ]
    return "\n".join(lines)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("connected" if value else "disconnected")
