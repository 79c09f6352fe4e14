"""The durable SQLite buffer between ingest and the central sync."""

from edge.buffer.status import KindDepth
from edge.buffer.store import SqliteBuffer

__all__ = ["KindDepth", "SqliteBuffer"]
