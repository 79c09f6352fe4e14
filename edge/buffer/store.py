"""SqliteBuffer: the gateway's durable store, one file shared by small per-client stores.

- `readings`: the pipeline's writer (readings + quarantine, group commits), and the agents'
  warm-up and catch-up reads;
- `alerts`, `tasks`: the versioned logs the agents append to and the API lists;
- `sync`: what the central syncer drains;
- `status`: depths per kind;
- `quarantine`: rejected messages, listed and replayed;
- `decisions`: operator decisions (written with their effect by `alerts`/`tasks`);
- `meta`: small named positions that survive restarts (e.g. detection's judged seq).
All of them go through one `BufferConnection` (one writer thread, one reader thread).
`read_only=True` (the `status` command) opens an existing buffer without touching it;
`exclusive=False` (the `buffer salvage` command) writes without the daemon's lock.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from edge.buffer.connection import BufferConnection
from edge.buffer.decisions import DecisionLog
from edge.buffer.meta import MetaStore
from edge.buffer.quarantine import QuarantineLog
from edge.buffer.readings import ReadingsStore
from edge.buffer.salvage import SalvageReport, salvage
from edge.buffer.status import StatusReader
from edge.buffer.sync import SyncStore
from edge.buffer.versions import VersionLog
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, TaskRecord
from edge.settings import BufferSettings


class SqliteBuffer:
    """The open buffer file and its stores; an async context manager."""

    def __init__(self, settings: BufferSettings, gateway_id: str,
                 metrics: GatewayMetrics | None = None, read_only: bool = False,
                 exclusive: bool = True) -> None:
        self.connection = BufferConnection(settings, gateway_id, metrics, read_only, exclusive)
        self.readings = ReadingsStore(self.connection)
        self.alerts: VersionLog[AlertRecord] = VersionLog(self.connection, "alerts", AlertRecord)
        self.tasks: VersionLog[TaskRecord] = VersionLog(self.connection, "tasks", TaskRecord)
        self.sync = SyncStore(self.connection)
        self.status = StatusReader(self.connection)
        self.meta = MetaStore(self.connection)
        self.quarantine = QuarantineLog(self.connection)
        self.decisions = DecisionLog(self.connection)
        self.path = settings.path

    async def __aenter__(self) -> SqliteBuffer:
        await self.connection.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.connection.close()

    @property
    def writable(self) -> bool:
        return self.connection.writable

    @property
    def last_error(self) -> str | None:
        return self.connection.last_error

    @property
    def moved_aside(self) -> tuple[Path, str] | None:
        return self.connection.moved_aside

    async def salvage_from(self, old: Path) -> SalvageReport:
        """Copy every readable row of an old (moved-aside) buffer file into this one."""
        return await self.connection.write(salvage, old)
