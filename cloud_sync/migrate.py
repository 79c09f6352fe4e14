"""Run the central schema's Alembic migrations (`edge-gateway db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from cloud_sync.connect import asyncpg_dsn, connect_args
from edge.settings import CentralSettings

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(settings: CentralSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dsn"] = asyncpg_dsn(settings)
    config.attributes["connect_args"] = connect_args(settings)
    config.attributes["timescale"] = settings.timescale
    return config


def upgrade(settings: CentralSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: CentralSettings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def current(settings: CentralSettings) -> None:
    command.current(alembic_config(settings))
