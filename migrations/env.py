"""Alembic environment for the central schema.

The DSN comes from `edge-gateway db upgrade` (our settings or `--dsn`), passed in as
`config.attributes["dsn"]`, or from `alembic -x dsn=postgresql://...` when Alembic is run
by hand. Migrations run on asyncpg, the driver the syncer uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cloud_sync.connect import sqlalchemy_url
from cloud_sync.models import Base

config = context.config
target_metadata = Base.metadata


def _dsn() -> str:
    dsn = config.attributes.get("dsn") or context.get_x_argument(as_dictionary=True).get("dsn")
    if not dsn:
        raise SystemExit("no DSN: use `edge-gateway db upgrade --dsn ...` or `alembic -x dsn=...`")
    return str(dsn)


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    connect_args: dict[str, Any] = config.attributes.get("connect_args", {})
    engine = create_async_engine(sqlalchemy_url(_dsn(), config.attributes.get("password")),
                                 connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_dsn(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
