"""The paho connection both publishers share: how it is set up and how it ends cleanly.

The agent (one node) and the bridge (many nodes) publish different things, but their
connection is the same: a retained `online: false` last will, credentials, TLS, reconnect
backoff, and a stop that leaves the broker a clean `online: false` instead of the will.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from meshmon_agent.config import MqttSettings

STOP_WAIT_S = 2.0


def dumps(payload: dict[str, Any]) -> bytes:
    """Compact JSON (UTF-8, no ASCII escaping) as published on the wire."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def connect_problem(host: str, port: int, timeout_s: float = 5.0) -> str | None:
    """Why a TCP connection to the broker fails (`connection refused`, …), or None if it opens.

    paho does not say why a connection attempt failed, so a failure is explained by trying
    once more with a plain socket."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return "timed out"
    except socket.gaierror:
        return "unknown host"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def paho_client(s: MqttSettings, client_id: str, will_topic: str,
                will: dict[str, Any]) -> mqtt.Client:
    """A paho client (MQTT 3.1.1, clean session) with the retained last will `will`,
    the settings' credentials, TLS and reconnect backoff; `s.client_id` wins over
    `client_id`. The will carries no ts: the broker sends it long after it was set."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=s.client_id or client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.will_set(will_topic, dumps(will), qos=1, retain=True)
    if s.username:
        client.username_pw_set(s.username, s.password)
    if s.tls:
        client.tls_set(ca_certs=s.tls_ca_file or None)
        client.tls_insecure_set(s.tls_insecure)
    client.reconnect_delay_set(max(1, int(s.reconnect_min_s)), max(1, int(s.reconnect_max_s)))
    return client


def stop_cleanly(client: mqtt.Client, status_topic: str, offline: dict[str, Any],
                 disconnected: threading.Event, wait_s: float = STOP_WAIT_S) -> None:
    """Publish the retained `offline` status, send DISCONNECT and end paho's thread.

    PUBLISH and DISCONNECT leave in this order on one TCP stream, so the broker stores the
    status before it closes the session and does not send the will. `disconnected` must be
    set by the caller's on_disconnect callback. `wait_s = 0` for a client without paho's
    thread (its owner writes the packets itself): nothing to wait for."""
    # paho may hold an open connection before on_connect has run: go by the socket
    linked = client.socket() is not None
    disconnected.clear()
    if linked:
        sent = client.publish(status_topic, dumps(offline), qos=1, retain=True)
        if wait_s > 0:
            with contextlib.suppress(ValueError, RuntimeError):
                sent.wait_for_publish(wait_s)
    client.disconnect()
    if linked and wait_s > 0:
        # stopping the thread first could close the socket unsent: the broker would then
        # send the will instead of the clean status
        disconnected.wait(wait_s)
    client.loop_stop()
