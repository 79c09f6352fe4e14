"""The gateway's link to the central database: its schema and the syncer that feeds it.

`models` (the central schema's one source of truth), `statements` (SQL derived from it),
`migrate` (Alembic), `writer` and `syncer` (the buffer drained in order, idempotently),
`connect`, `retry`, `timescale`. It runs inside the gateway process and uses the gateway's
shared kernel (settings, records, metrics, backoff) and the buffer's `SyncSource` port; it
never imports agents, transports or the HTTP layer, and only the daemon's composition root
(and the CLI's `db` commands) import it (tests/unit/test_import_contracts.py).
"""
