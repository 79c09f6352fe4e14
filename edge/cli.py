"""The `edge-gateway` command line: run, check-config, db upgrade|downgrade|current.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration (one line per problem).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import yaml
from pydantic import ValidationError

from edge import __version__
from edge.errors import ConfigError, EdgeError
from edge.logs import configure_logging
from edge.settings import (
    CentralSettings,
    Settings,
    load_settings,
    masked_dump,
    resolve_config_path,
)

EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", type=Path, default=None,
                        help="YAML config (default config/edge.yaml, then /etc/edge-gateway/edge.yaml)")
    parser = argparse.ArgumentParser(prog="edge-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[common], help="run the gateway daemon")
    commands.add_parser("check-config", parents=[common],
                        help="validate the config and print it resolved, secrets masked")
    db = commands.add_parser("db", help="central database schema (Alembic)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    dsn = argparse.ArgumentParser(add_help=False)
    dsn.add_argument("--dsn", default=None,
                     help="postgresql://... (default: central.dsn from the config)")
    db_commands.add_parser("upgrade", parents=[common, dsn], help="migrate to the latest schema")
    down = db_commands.add_parser("downgrade", parents=[common, dsn], help="migrate down")
    down.add_argument("revision", help="target revision, e.g. base")
    db_commands.add_parser("current", parents=[common, dsn], help="show the schema revision")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            return _db(args)
        settings = load_settings(resolve_config_path(args.config))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.command == "check-config":
        return _check_config(settings)
    return _run(settings)


def _check_config(settings: Settings) -> int:
    sys.stdout.write(yaml.safe_dump(masked_dump(settings), sort_keys=False))
    return 0


def _central_settings(args: argparse.Namespace) -> CentralSettings:
    path = resolve_config_path(args.config)
    if args.dsn is not None and args.config is None and not path.exists():
        central = CentralSettings()
    else:
        central = load_settings(path).central
    if args.dsn is not None:
        try:
            central = CentralSettings(**{**central.model_dump(), "dsn": args.dsn})
        except ValidationError as exc:
            raise ConfigError([f"--dsn: {e['msg']}" for e in exc.errors()]) from None
    if central.dsn is None:
        raise ConfigError([f"central.dsn: not set (in {path}); give it there or with --dsn"])
    return central


def _db(args: argparse.Namespace) -> int:
    from cloud_sync import migrate

    central = _central_settings(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(central)
        elif args.db_command == "downgrade":
            migrate.downgrade(central, args.revision)
        else:
            migrate.current(central)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"db {args.db_command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _run(settings: Settings) -> int:
    from edge.daemon import run_until_signalled

    configure_logging(settings.gateway.id, settings.logging.level, settings.logging.format)
    try:
        asyncio.run(run_until_signalled(settings))
    except EdgeError as exc:
        logging.getLogger("edge").error("gateway failed", extra={"error": str(exc)})
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
