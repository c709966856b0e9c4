"""`meshmon-bridge`: publish the v1 contract for devices and networks that run no agent.

`meshmon-bridge -c FILE` runs until SIGTERM/SIGINT; `--once` polls every source once,
publishes and exits; `--once --print` prints every message it would publish as JSON lines
`{"topic": …, "payload": …}` instead, without connecting to any broker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections import defaultdict

from meshmon_bridge import __version__
from meshmon_bridge.config import BridgeConfig, ConfigError, load
from meshmon_bridge.publisher import MqttPublisher, PrintSink
from meshmon_bridge.runtime import Bridge
from meshmon_bridge.source import BridgeContext, Source

log = logging.getLogger("meshmon_bridge")

ONCE_ACK_TIMEOUT_S = 30.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshmon-bridge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="TOML config file")
    p.add_argument("--once", action="store_true", help="poll every source once, publish, exit")
    p.add_argument("--print", action="store_true",
                   help="with --once: print the messages as JSON lines, connect to no broker")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"meshmon-bridge {__version__}")
    return p


def build_sources(cfg: BridgeConfig) -> list[Source]:
    """Every configured source, built by its kind's factory (tables of a kind together)."""
    from meshmon_bridge.sources import KINDS

    context = BridgeContext(cfg.bridge.id, cfg.base_dir)
    by_kind = defaultdict(list)
    for table in cfg.sources:
        by_kind[table.kind].append(table.config)
    sources: list[Source] = []
    for kind, tables in by_kind.items():
        sources += KINDS[kind].create(tables, context)
    return sources


async def run_print(cfg: BridgeConfig) -> bool:
    """`--once --print`: poll once, print every message; True if no source failed."""
    sink = PrintSink()
    bridge = Bridge(cfg.bridge.id, cfg.mqtt.topic_prefix, build_sources(cfg), sink)
    try:
        bridge.announce()
        return await bridge.run_once()
    finally:
        await bridge.close()
        sys.stdout.flush()


async def run_mqtt(cfg: BridgeConfig, once: bool) -> bool:
    """Publish over MQTT: one round (`once`) or until SIGTERM/SIGINT."""
    publisher = MqttPublisher(cfg.mqtt, cfg.bridge.id, cfg.mqtt.topic_prefix)
    bridge = Bridge(cfg.bridge.id, cfg.mqtt.topic_prefix, build_sources(cfg), publisher)
    loop = asyncio.get_running_loop()
    publisher.start()
    try:
        if once:
            ok = await bridge.run_once()
            acked = await loop.run_in_executor(None, publisher.wait_idle, ONCE_ACK_TIMEOUT_S)
            if not acked:
                why = "not acknowledged by" if publisher.connected else "cannot connect to"
                log.error("messages %s %s:%s within %.0f s", why, cfg.mqtt.host,
                          cfg.mqtt.port, ONCE_ACK_TIMEOUT_S)
            return ok and acked
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info("bridge %s: %d source(s)", cfg.bridge.id, len(bridge.sources))
        await bridge.run(stop)
        log.info("stopping")
        return True
    finally:
        await bridge.close()
        await loop.run_in_executor(None, publisher.stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `meshmon-bridge` command."""
    args = _parser().parse_args(argv)
    if args.print and not args.once:
        print("meshmon-bridge: --print works with --once only", file=sys.stderr)
        return 2
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"meshmon-bridge: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else getattr(logging, cfg.bridge.log_level.upper())
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runner = run_print(cfg) if args.print else run_mqtt(cfg, args.once)
    ok = asyncio.run(runner)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
