"""The `edge-gateway` command line.

Commands: run (the daemon), check-config, status, alerts and tasks (list, show, decide:
through the running daemon), demo, simulate, buffer salvage, db upgrade|downgrade|current.
Exit codes: 0 success, 1 runtime failure, 2 bad configuration (one line per problem).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from edge import __version__
from edge.errors import ConfigError, EdgeError
from edge.logs import configure_logging
from edge.operator.cli import add_commands as add_operator_commands
from edge.operator.cli import run as run_operator_command
from edge.settings import (
    CentralSettings,
    MqttSettings,
    Settings,
    config_warnings,
    load_settings,
    masked_dump,
    resolve_config_path,
)
from edge.settings.environment import environment_overrides
from edge.settings.yaml_file import read_yaml
from edge.status import StatusReport

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
    demo = commands.add_parser("demo", help="embedded broker + simulator + daemon, with a live view")
    demo.add_argument("--central-dsn", default=None, help="also sync to this PostgreSQL")
    demo.add_argument("--duration-s", type=float, default=24 * 3600.0)
    demo.add_argument("--rate", type=float, default=50.0, help="messages per second (default 50)")
    demo.add_argument("--fault-every-s", type=float, default=10.0)
    status = commands.add_parser("status", parents=[common],
                                 help="buffer depth, sync lag, central up/down, open alerts/tasks")
    status.add_argument("--json", action="store_true", help="print JSON")
    sim = commands.add_parser("simulate", parents=[common],
                              help="publish a synthetic factory (with labelled faults) over MQTT")
    sim.add_argument("--host", default=None, help="broker host (default: mqtt.host of the config)")
    sim.add_argument("--port", type=int, default=None, help="broker port (default: mqtt.port)")
    sim.add_argument("--rate", type=float, default=20.0, help="messages per second (default 20)")
    sim.add_argument("--duration-s", type=float, default=3600.0)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--no-faults", action="store_true", help="publish healthy data only")
    sim.add_argument("--fault-every-s", type=float, default=60.0)
    sim.add_argument("--labels", type=Path, default=None, help="append fault labels (JSON lines)")
    sim.add_argument("--topic-prefix", default="factory/plant1")
    sim.add_argument("--print-sensor-config", action="store_true",
                     help="print the assets/sensors config of the simulated factory and exit")
    add_operator_commands(commands, common)
    buffer = commands.add_parser("buffer", help="the local SQLite buffer")
    buffer_commands = buffer.add_subparsers(dest="buffer_command", required=True)
    salvage = buffer_commands.add_parser(
        "salvage", parents=[common],
        help="copy every readable row of an old (moved-aside) buffer file into the live one")
    salvage.add_argument("path", type=Path, help="e.g. var/edge-buffer.sqlite.corrupt-2026...")
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
    try:
        return _main(argv)
    except BrokenPipeError:  # `edge-gateway status --json | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            return _db(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "demo":
            return _demo(args)
        config_path = resolve_config_path(args.config)
        settings = load_settings(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.command == "check-config":
        return _check_config(settings, config_path)
    if args.command == "status":
        return _status(settings, args.json)
    if args.command == "buffer":
        return _salvage(settings, args.path)
    if args.command in ("alerts", "tasks"):
        return run_operator_command(settings, args.command[:-1], args)
    return _run(settings, config_path)


def _check_config(settings: Settings, path: Path) -> int:
    sys.stdout.write(yaml.safe_dump(masked_dump(settings), sort_keys=False))
    for override in environment_overrides(read_yaml(path), Settings):
        print(f"note: {override.describe()}", file=sys.stderr)
    for warning in config_warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        from edge.demo import DemoOptions, run_demo
    except ImportError as exc:
        print(f"demo needs the demo extra (pip install 'edge-gateway[demo]'): {exc}", file=sys.stderr)
        return EXIT_FAILURE
    configure_logging("demo", "WARNING", "text")
    for noisy in ("amqtt", "transitions", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    options = DemoOptions(rate_per_s=args.rate, fault_every_s=args.fault_every_s,
                          duration_s=args.duration_s, central_dsn=args.central_dsn)
    try:
        asyncio.run(run_demo(options))
    except EdgeError as exc:  # e.g. the central database cannot be migrated: say why, once
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _salvage(settings: Settings, old: Path) -> int:
    from edge.buffer import SqliteBuffer

    if not old.exists():
        print(f"buffer salvage: {old} does not exist", file=sys.stderr)
        return EXIT_FAILURE
    if old.resolve() == settings.buffer.path.resolve():
        print("buffer salvage: that is the live buffer; give the moved-aside file", file=sys.stderr)
        return EXIT_FAILURE

    async def run() -> int:
        # Not a daemon: it may write beside the running one (SQLite locks each write), so it
        # does not take the daemon's lock.
        async with SqliteBuffer(settings.buffer, settings.gateway.id, exclusive=False) as buffer:
            report = await buffer.salvage_from(old)
        for problem in report.errors:
            print(f"buffer salvage: {problem}", file=sys.stderr)
        for table, rows in report.recovered.items():
            print(f"{table}: {rows} rows recovered, {report.unreadable.get(table, 0)} unreadable")
        return EXIT_FAILURE if report.errors else 0

    try:
        return asyncio.run(run())
    except EdgeError as exc:
        print(f"buffer salvage: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _status(settings: Settings, as_json: bool) -> int:
    from edge.status import render

    try:
        report = gather_status(settings)
    except EdgeError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(report.model_dump_json(indent=2) if as_json else render(report))
    return 0


def gather_status(settings: Settings) -> StatusReport:
    """Ask the running daemon over HTTP; read the buffer when the daemon is not reachable."""
    import httpx

    http = settings.http
    source = "buffer (daemon not reachable)"
    if http.enabled:
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
        token = http.read_token or http.token or http.operator_token
        headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        try:
            response = httpx.get(f"http://{host}:{http.port}/api/v1/status", headers=headers,
                                 timeout=5)
            if response.status_code == 200:
                return StatusReport.model_validate({**response.json(), "source": "daemon"})
            if response.status_code in (401, 403):
                source = (f"buffer (the daemon refused the request: {response.status_code}; "
                          "give this command the daemon's config, with http.read_token, "
                          "token or operator_token)")
        except httpx.HTTPError:
            pass  # not running (or not reachable): read the buffer instead
    return asyncio.run(_status_from_buffer(settings, source))


async def _status_from_buffer(settings: Settings, source: str) -> StatusReport:
    from edge.buffer import SqliteBuffer
    from edge.status import NOT_CONFIGURED, build_status

    async with SqliteBuffer(settings.buffer, settings.gateway.id, read_only=True) as buffer:
        central = NOT_CONFIGURED if settings.central.dsn is None else "unknown"
        return await build_status(buffer, mqtt_connected=None, central=central, source=source)


def _simulate(args: argparse.Namespace) -> int:
    from edge.simulator.factory import FactoryModel
    from edge.simulator.publisher import SimulationOptions, sensor_config, simulate

    if args.print_sensor_config:
        sys.stdout.write(yaml.safe_dump(sensor_config(FactoryModel()), sort_keys=False))
        return 0
    path = resolve_config_path(args.config)
    mqtt = load_settings(path).mqtt if path.exists() else MqttSettings(subscriptions=[{"topic": "#"}])
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    mqtt = mqtt.model_copy(update=overrides)
    options = SimulationOptions(rate_per_s=args.rate, duration_s=args.duration_s, seed=args.seed,
                                faults=not args.no_faults, fault_every_s=args.fault_every_s,
                                topic_prefix=args.topic_prefix, labels_path=args.labels)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await simulate(mqtt, options, stop)

    try:
        published = asyncio.run(run())
    except OSError as exc:
        print(f"simulate: cannot reach the broker at {mqtt.host}:{mqtt.port}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"published {published} readings", file=sys.stderr)
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
    except migrate.MigrationError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _run(settings: Settings, path: Path) -> int:
    from edge.daemon import run_until_signalled

    configure_logging(settings.gateway.id, settings.logging.level, settings.logging.format)
    overrides = environment_overrides(read_yaml(path), Settings)
    if overrides:  # so that nobody wonders why the file's value is not the one in use
        logging.getLogger("edge").info("settings from the environment", extra={
            "overrides": [override.describe() for override in overrides]})
    for warning in config_warnings(settings):
        logging.getLogger("edge").warning("config warning", extra={"warning": warning})
    try:
        asyncio.run(run_until_signalled(settings))
    except EdgeError as exc:
        logging.getLogger("edge").error("gateway failed", extra={"error": str(exc)})
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
