"""Run the central schema's Alembic migrations (`edge-gateway db upgrade`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

import migrations
from cloud_sync.connect import asyncpg_dsn, connect_args
from cloud_sync.timescale import TimescaleUnavailable
from edge.errors import EdgeError
from edge.settings import CentralSettings

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


class MigrationError(EdgeError):
    """The central database could not be reached or migrated; the message says why."""


def alembic_config(settings: CentralSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dsn"] = asyncpg_dsn(settings)
    config.attributes["connect_args"] = connect_args(settings)
    config.attributes["timescale"] = settings.timescale
    return config


@lru_cache(maxsize=1)
def known_revisions() -> tuple[str, frozenset[str]]:
    """(head, every revision) of the migrations this gateway ships."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if head is None:
        raise MigrationError("no migration revisions found")
    return head, frozenset(rev.revision for rev in script.walk_revisions())


def upgrade(settings: CentralSettings, revision: str = "head") -> None:
    with _explained("upgrade"):
        command.upgrade(alembic_config(settings), revision)


def downgrade(settings: CentralSettings, revision: str) -> None:
    with _explained("downgrade"):
        command.downgrade(alembic_config(settings), revision)


def current(settings: CentralSettings) -> None:
    with _explained("current"):
        command.current(alembic_config(settings))


@contextmanager
def _explained(action: str) -> Iterator[None]:
    try:
        yield
    except TimescaleUnavailable as exc:
        raise MigrationError(f"db {action} failed: {exc}") from exc
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        detail = " ".join(str(exc).split())
        raise MigrationError(f"db {action} failed: {type(exc).__name__}: {detail}") from exc
