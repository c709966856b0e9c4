"""`meshmon-agent`: run forever with `-c FILE`, or print one report with `--once --print`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from types import FrameType

from meshmon_agent import __version__
from meshmon_agent.agent import Agent
from meshmon_agent.collect import Collector
from meshmon_agent.config import AgentConfig, ConfigError, from_dict, load
from meshmon_agent.mqtt_link import connect_problem
from meshmon_agent.publisher import Publisher
from meshmon_agent.runner import CannedRunner, Runner, SubprocessRunner

log = logging.getLogger("meshmon_agent")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshmon-agent", description=__doc__)
    p.add_argument("-c", "--config", help="TOML config file (default: built-in defaults)")
    p.add_argument("--once", action="store_true", help="collect one report, send it, exit")
    p.add_argument("--print", action="store_true", help="with --once: print the report, no MQTT")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"meshmon-agent {__version__}")
    return p


def make_runner(cfg: AgentConfig) -> Runner:
    """Canned outputs when `collect.canned_dir` is set (tests, demo), real tools otherwise."""
    if cfg.collect.canned_dir:
        return CannedRunner(cfg.collect.canned_dir)
    return SubprocessRunner(cfg.collect.command_timeout_s)


def run_forever(cfg: AgentConfig, collector: Collector) -> None:
    """Connect, report every interval, stop cleanly on SIGTERM/SIGINT."""
    publisher = Publisher(cfg.mqtt, cfg.node, cfg.prefix)
    agent = Agent(cfg, collector, publisher)
    publisher.on_command(agent.handle_command)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    publisher.start()
    try:
        agent.run()
    finally:
        publisher.stop()


def send_once(cfg: AgentConfig, collector: Collector) -> int:
    """Send info and one report; fail fast, naming host and port, when the broker is away."""
    problem = connect_problem(cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.keepalive_s)
    if problem is not None:
        print(f"meshmon-agent: cannot connect to {cfg.mqtt.host}:{cfg.mqtt.port}: {problem}",
              file=sys.stderr)
        return 1
    publisher = Publisher(cfg.mqtt, cfg.node, cfg.prefix)
    publisher.start()
    agent = Agent(cfg, collector, publisher)
    agent.maybe_publish_info(force=True)
    agent.tick()
    ok = publisher.wait_idle(30, give_up_on_error=True)
    publisher.stop()
    if not ok:
        why = publisher.last_error or "report not acknowledged by the broker within 30 s"
        print(f"meshmon-agent: {why}", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `meshmon-agent` command."""
    args = _parser().parse_args(argv)
    try:
        cfg = load(args.config) if args.config else from_dict({}, "defaults")
    except ConfigError as exc:
        print(f"meshmon-agent: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else getattr(logging, cfg.log_level.upper(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # MESHMON_AGENT_ROOT: a fake root (proc/, sys/) for tests and benchmarks, as in the sh agent
    root = os.environ.get("MESHMON_AGENT_ROOT") or "/"
    collector = Collector(cfg.collect, make_runner(cfg), root)
    if args.once:
        if args.print:
            agent = Agent(cfg, collector, _PrintSink())
            print(json.dumps(agent.build_report(cfg.interval_s), indent=2))
            return 0
        return send_once(cfg, collector)
    run_forever(cfg, collector)
    return 0


class _PrintSink:
    def publish_info(self, info: dict[str, object]) -> None:
        """Unused with --print."""

    def publish_report(self, report: dict[str, object]) -> None:
        """Unused with --print."""


if __name__ == "__main__":
    sys.exit(main())
