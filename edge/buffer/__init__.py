"""The durable SQLite buffer between ingest and the central sync."""

from edge.buffer.store import CommitResult, KindDepth, SqliteBuffer

__all__ = ["CommitResult", "KindDepth", "SqliteBuffer"]
