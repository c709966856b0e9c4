"""What the per-user ACL costs the embedded broker (a benchmark, not a test).

    python bench/broker_acl.py [--clients 20] [--messages 20000]

Runs meshmon's embedded broker (amqtt) in a child process twice: open (anonymous, no
ACL) and with a password file (every client logged in, each publish and delivery
checked by the ACL plugin). CLIENTS node clients publish MESSAGES reports of ~400 bytes
in all (QoS 1, as agents do) to their own topics; one collector client subscribed to
`meshmon/v1/node/+/report` receives them. Figures: the broker process's CPU time per
report (what the ACL adds; steady on a shared machine) and reports/s from the first
publish to the last one received (wall clock: varies with whatever else runs).
Last line: RESULT open_cpu_us=… acl_cpu_us=… open_per_s=… acl_per_s=…
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meshmon.config import MqttConfig  # noqa: E402
from meshmon.ingest.broker import EmbeddedBroker  # noqa: E402
from meshmon.ingest.mqtt_users import MqttUser, generate_password, write_lines  # noqa: E402
from tests.servers import free_port, wait_for_port  # noqa: E402

PAYLOAD = {"v": 1, "ts": 0.0, "seq": 0, "interval_s": 30, "sys": {"uptime_s": 1000},
           "links": [{"peer_mac": f"02:00:00:00:00:{i:02x}", "iface": "wlan0", "kind": "wifi",
                      "signal_dbm": -60 - i, "tx_rate_mbps": 130.0} for i in range(3)]}


def run_broker(config: dict[str, Any]) -> None:
    """The child process: the embedded broker until it is terminated."""
    async def main() -> None:
        broker = EmbeddedBroker(MqttConfig.model_validate(config))
        await broker.start()
        # amqtt logs every PUBACK timeout of a subscriber that falls behind: not the point
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        await asyncio.Event().wait()

    asyncio.run(main())


def client(port: int, user: str | None, password: str, name: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv311)
    if user:
        c.username_pw_set(user, password)
    c.max_inflight_messages_set(100)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, pid: int, logins: dict[str, str], clients: int,
            messages: int) -> tuple[float, float]:
    """(reports/s, broker CPU µs per report) through the broker on `port` (logins: user →
    password, empty = open)."""
    got = 0
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal got
        got += 1
        if got >= messages:
            done.set()

    subscribed = threading.Event()
    collector = client(port, "collector" if logins else None, logins.get("collector", ""),
                       "bench-collector")
    collector.on_message = on_message
    collector.on_subscribe = lambda *_a: subscribed.set()
    collector.subscribe("meshmon/v1/node/+/report", 1)
    subscribed.wait(10)
    names = [f"node-{i}" for i in range(clients)]
    publishers = [client(port, n if logins else None, logins.get(n, ""), n) for n in names]
    deadline = time.monotonic() + 60  # every login checked (argon2) before the clock starts
    while not all(c.is_connected() for c in publishers) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    per_client = messages // clients
    started = time.perf_counter()
    cpu_before = cpu_s(pid)

    def publish_all(c: paho.Client, node: str) -> None:
        for seq in range(per_client):
            body = json.dumps({**PAYLOAD, "node": node, "seq": seq, "ts": time.time()})
            while c.publish(f"meshmon/v1/node/{node}/report", body, 1).rc != 0:
                time.sleep(0.001)

    threads = [threading.Thread(target=publish_all, args=(c, n))
               for c, n in zip(publishers, names, strict=True)]
    for t in threads:
        t.start()
    finished = done.wait(120)
    took = time.perf_counter() - started
    cpu = cpu_s(pid) - cpu_before
    for t in threads:
        t.join()
    for c in [*publishers, collector]:
        c.disconnect()
        c.loop_stop()
    if not finished:
        print(f"  only {got} of {messages} arrived within 120 s")
    return got / took, cpu / max(got, 1) * 1e6


def run(mode: str, args: argparse.Namespace) -> tuple[float, float]:
    port = free_port()
    embedded: dict[str, Any] = {"host": "127.0.0.1", "port": port}
    config: dict[str, Any] = {"embedded": embedded}
    logins: dict[str, str] = {}
    if mode == "acl":
        logins = {"collector": generate_password(),
                  **{f"node-{i}": generate_password() for i in range(args.clients)}}
        from pwdlib import PasswordHash
        from pwdlib.hashers.argon2 import Argon2Hasher

        hasher = PasswordHash((Argon2Hasher(),))
        path = Path(tempfile.mkdtemp(prefix="bench-acl-")) / "passwd"
        write_lines(path, [], [MqttUser(u, hasher.hash(p), "node" if u != "collector"
                                        else "collector") for u, p in logins.items()])
        embedded["password_file"] = str(path)
        config.update(username="collector", password=logins["collector"])
    broker = multiprocessing.get_context("spawn").Process(target=run_broker, args=(config,))
    broker.start()
    try:
        wait_for_port(port, 30)
        assert broker.pid is not None
        rate, cpu_us = measure(port, broker.pid, logins, args.clients, args.messages)
    finally:
        broker.terminate()
        broker.join(10)
    print(f"  {mode:4s}: broker CPU {cpu_us:5.0f} µs/report, {rate:6.0f} reports/s wall "
          f"({args.clients} clients, {args.messages} reports, QoS 1)")
    return rate, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    print("embedded broker (amqtt) throughput, open vs per-user ACL:")
    open_rate, open_cpu = run("open", args)
    acl_rate, acl_cpu = run("acl", args)
    extra = acl_cpu / open_cpu - 1
    print(f"  the ACL adds {acl_cpu - open_cpu:.0f} µs of broker CPU per report ({extra:+.0%}; "
          "target: ≤ +25 %)")
    print(f"RESULT open_cpu_us={open_cpu:.0f} acl_cpu_us={acl_cpu:.0f} "
          f"open_per_s={open_rate:.0f} acl_per_s={acl_rate:.0f}")


if __name__ == "__main__":
    main()
