"""The `meshmon` command: the only place that wires objects together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from meshmon import __version__
from meshmon.config import Config, ConfigError, load
from meshmon.errors import ServiceFailed, StartupError
from meshmon.runtime import lower_cpu_priority, run_freezing_survivors, tune_runtime

log = logging.getLogger("meshmon")

USAGE = """\
meshmon monitors a community mesh network: routers report link quality over MQTT, the
collector keeps the topology, finds outages and their cause, alerts maintainers and serves
the public map, the installer view and the maintainer page.

Run a collector with `meshmon serve -c meshmon.toml`, or try everything on one machine
with `meshmon demo`. The other commands check a config, or ask a running collector."""

EPILOG = """\
config:
  A TOML file given with -c; every key, with its default and a comment, is in
  config.example.toml. Without -c, `serve` and `demo` use the built-in defaults (embedded
  broker, meshmon.sqlite here, HTTP on 127.0.0.1:8080), and the client commands (outages,
  weak-points, silence, silences) read ./meshmon.toml or /etc/meshmon/meshmon.toml when one
  exists, for the collector's URL ([http] host, port, public_url) and token.

`meshmon COMMAND --help` shows a command's options."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def _load_or_exit(path: str | None) -> Config:
    try:
        return load(path)
    except ConfigError as exc:
        print(f"meshmon: invalid config {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _run_until_signal(main: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({main, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not main.done():
        main.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main


async def _serve(config: Config, role: str) -> None:
    from meshmon.service import Service
    from meshmon.writer import Writer, share_filter

    if role != "all" and config.mqtt.broker == "embedded":
        raise StartupError(
            f"--role {role} needs an external MQTT 5 broker with shared subscriptions "
            "(Mosquitto 2, EMQX, VerneMQ, HiveMQ; [mqtt] broker = \"external\"): the "
            "embedded broker (amqtt, MQTT 3.1.1) runs only --role all")
    if role == "writer":
        niceness = lower_cpu_priority(config.roles.writer_nice)
        writer = Writer(config)
        await writer.start()
        print(f"meshmon {__version__} writer: {share_filter(config)} from MQTT broker "
              f"{config.mqtt.host}:{config.mqtt.port} to InfluxDB {config.influxdb.url} "
              f"({config.influxdb.api}); /healthz and /metrics on {writer.http_url}; "
              f"CPU priority nice {niceness} ([roles] writer_nice)", flush=True)
        try:
            await _until_failed(writer.tasks.failed)
        finally:
            await writer.stop()
        if writer.tasks.failure:
            raise ServiceFailed(writer.tasks.failure)
        return
    service = Service(config, role=role)
    await service.start()
    broker = "embedded" if service.broker else "external"
    series = ("time series left to the writers of share group "
              f"{config.roles.share_group!r}; " if role == "core" else "")
    print(
        f"meshmon {__version__} ({role}): collecting from MQTT {broker} broker "
        f"{service.mqtt_address.host}:{service.mqtt_address.port}; {series}"
        f"open {service.http_url}/",
        flush=True,
    )
    try:
        await _until_failed(service.failed)
    finally:
        await service.stop()
    if service.failure:  # logged when it happened; exit non-zero so a supervisor restarts
        raise ServiceFailed(service.failure)


async def _until_failed(failed: asyncio.Event) -> None:
    """Run the GC's survivor freezing until a task of the process failed (or cancelled)."""
    freezer = asyncio.create_task(run_freezing_survivors())
    waiter = asyncio.create_task(failed.wait())
    try:
        await asyncio.wait({freezer, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        freezer.cancel()
        waiter.cancel()


def _run_main(job: Coroutine[Any, Any, None]) -> int:
    """Run `job` until it ends or SIGINT/SIGTERM; turn start-up failures into messages."""

    async def main() -> None:
        await _run_until_signal(asyncio.create_task(job))

    try:
        asyncio.run(main())
    except ConfigError as exc:  # found only when starting, e.g. an unusable password file
        print(f"meshmon: invalid config {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"meshmon: cannot start: {exc}", file=sys.stderr)
        return 1
    except ServiceFailed as exc:
        print(f"meshmon: stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.config)
    _setup_logging(config.log_level)
    tune_runtime()
    return _run_main(_serve(config, args.role))


def cmd_demo(args: argparse.Namespace) -> int:
    from meshmon.demo.runner import run_demo

    config = _load_or_exit(args.config)
    _setup_logging(config.log_level)
    tune_runtime()
    if args.config is None:
        config.storage.path = args.storage

    snapshot = Path(args.snapshot) if args.snapshot else None
    if snapshot is not None:
        from meshmon.demo.snapshot import SnapshotError, read_snapshot

        try:  # a wrong file is a usage error, before anything starts
            read_snapshot(snapshot)
        except SnapshotError as exc:
            print(f"meshmon demo: {exc}", file=sys.stderr)
            return 2
    if args.history_days < 0 or args.history_days > 366:
        print("meshmon demo: --history-days must be between 0 and 366", file=sys.stderr)
        return 2
    return _run_main(run_demo(config, args.port, args.nodes, args.interval, args.duration,
                              snapshot, history_days=args.history_days))


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        load(args.file)
    except ConfigError as exc:
        for problem in exc.errors:
            where = f"{exc.source}:{problem.line}" if problem.line else exc.source
            print(f"{where}: {problem.path}: {problem.message}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshmon", description=USAGE, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"meshmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands",
                                metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the collector: MQTT in; alerts, map, API and /admin out")
    serve.add_argument("-c", "--config", metavar="FILE",
                       help="TOML config (default: the built-in defaults)")
    serve.add_argument(
        "--role", choices=("all", "core", "writer"), default="all",
        help="all: everything in one process (default); core: everything but the time "
             "series; writer: the time series of a share of the reports (MQTT 5 shared "
             "subscription; any number of them). docs/scaling.md")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo", help="try it: broker, collector and a simulated community network")
    demo.add_argument("-c", "--config", metavar="FILE",
                      help="TOML config, e.g. to add an InfluxDB sink or notifiers")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    demo.add_argument("--nodes", type=int, default=None, help="limit the network to N nodes")
    demo.add_argument("--interval", type=float, default=10.0, help="report interval, s")
    demo.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    demo.add_argument("--snapshot", metavar="FILE",
                      help="play a community's meshviewer.json or hopglass nodes.json "
                           "(with graph.json beside it) instead of the built-in Bremen one")
    demo.add_argument("--history-days", type=float, default=0.0, metavar="N",
                      help="first write N days of simulated history (node and link pages "
                           "show charts at once; default 0)")
    demo.add_argument("--storage", default="meshmon-demo.sqlite",
                      help="SQLite file when no config is given")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser(
        "check-config", help="validate a config file: each error with its line and key")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    from meshmon import passwd_cli
    from meshmon.admin_cli import add_commands

    passwd_cli.add_command(sub)

    add_commands(sub)
    for name in ("silence", "silences", "weak-points", "outages"):
        sub.choices[name].set_defaults(func=cmd_client)
    return parser


def cmd_client(args: argparse.Namespace) -> int:
    """Run a maintainer command against the running collector."""
    from meshmon.admin_cli import ClientError, default_config

    path = args.config or default_config()
    config = _load_or_exit(path)
    try:
        return int(args.client(args, config))
    except ClientError as exc:  # may quote the collector: one line, no control characters
        from meshmon.model.plaintext import one_line

        hint = ""
        if exc.status == 0 and not args.url:  # no answer: say where the address came from
            source = f"[http] of {path}" if path else "the built-in defaults"
            hint = f" (address from {source}; give -c FILE or --url)"
        print(f"meshmon {args.command}: {one_line(str(exc))}{hint}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `meshmon weak-points | head`: the reader had enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `meshmon` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
