"""Alerts as human text: titles, bodies, digests, durations (plain function calls)."""

from __future__ import annotations

import pytest

from meshmon.alerts import messages
from meshmon.alerts.model import Alert, LinkRef

T0 = 1_714_564_980.0  # 2024-05-01 12:03:00 UTC


def outage(**kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": "outage-node-b-1",
        "status": "firing",
        "kind": "outage",
        "severity": "critical",
        "summary": "node-b down since 12:03 UTC, 10 nodes cut off",
        "started_at": T0,
        "cause_nodes": ["node-b"],
        "affected": [f"node-{i:02d}" for i in range(10)],
        "sent_at": T0 + 30,
    }
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (60, "1m"),
        (723, "12m 3s"),
        (3600, "1h"),
        (3 * 3600 + 5 * 60 + 59, "3h 5m"),
        (2 * 86400 + 4 * 3600 + 59, "2d 4h"),
        (7 * 86400, "7d"),
        (-5, "0s"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert messages.human_duration(seconds) == text


def test_title_firing_names_cause_and_cut_off_count() -> None:
    assert messages.title(outage()) == "[meshmon] FIRING outage: node-b down, 10 nodes cut off"


def test_title_resolved_says_how_long() -> None:
    alert = outage(status="resolved", ended_at=T0 + 723)
    assert messages.title(alert) == "[meshmon] RESOLVED outage: node-b back after 12m 3s"


def test_title_reminder_says_for_how_long() -> None:
    alert = outage(reminder=True, sent_at=T0 + 2 * 3600 + 300)
    assert messages.title(alert) == (
        "[meshmon] FIRING outage: node-b down for 2h 5m, 10 nodes cut off (reminder)"
    )


def test_title_for_a_link_and_for_many_causes() -> None:
    link = outage(kind="degraded", severity="warning", cause_nodes=[], affected=[],
                  cause_links=[LinkRef.of("n2", "n1", "wifi")])  # fmt: skip
    assert messages.title(link) == "[meshmon] FIRING degraded: link n1–n2 degraded"
    many = outage(kind="silent", cause_nodes=["a", "b", "c", "d", "e"], affected=["x"])
    assert (
        messages.title(many) == "[meshmon] FIRING silent: a, b, c and 2 more silent, 1 node cut off"
    )


def test_title_without_cause_falls_back_to_summary() -> None:
    alert = outage(cause_nodes=[], affected=[], summary="something odd")
    assert messages.title(alert) == "[meshmon] FIRING outage: something odd"


def test_title_is_one_line_even_with_hostile_node_ids() -> None:
    alert = outage(cause_nodes=["evil\r\nBcc: someone@example.org", "rtl\u202egnp.exe"])
    text = messages.title(alert)
    assert "\n" not in text and "\r" not in text and "\u202e" not in text
    assert "evil Bcc: someone@example.org" in text


def test_title_is_clipped() -> None:
    text = messages.title(outage(cause_nodes=["n" * 500]))
    assert len(text) == messages.MAX_TITLE_CHARS and text.endswith("…")


def test_body_has_what_where_when_who_and_link() -> None:
    alert = outage(
        affected=[f"node-{i:02d}" for i in range(25)],
        cause_links=[LinkRef.of("node-a", "node-b", "wifi")],
        url="https://mesh.example.org/admin/incidents/outage-node-b-1",
        details={"last_seen_s": 42, "gateway": "gw-1"},
    )
    text = messages.body(alert)
    lines = text.splitlines()
    assert lines[0] == alert.summary
    assert "Status:   firing" in lines
    assert "Kind:     outage (critical)" in lines
    assert "Cause:    node-b" in lines
    assert "Link:     node-a–node-b (wifi)" in lines
    assert "Since:    2024-05-01 12:03:00 UTC" in lines
    assert "For:      30s so far" in lines
    assert "Affected: 25 nodes cut off from every gateway" in lines
    listed = [f"node-{i:02d}" for i in range(20)]
    assert "  " + ", ".join(listed) + " and 5 more" in lines
    assert "node-20" not in text
    assert "  gateway: gw-1" in lines and "  last_seen_s: 42" in lines
    assert lines[-1] == "More:     https://mesh.example.org/admin/incidents/outage-node-b-1"


def test_body_resolved_has_end_and_duration() -> None:
    lines = messages.body(outage(status="resolved", ended_at=T0 + 723)).splitlines()
    assert "Ended:    2024-05-01 12:15:03 UTC" in lines
    assert "Lasted:   12m 3s" in lines
    assert not any(line.startswith("For:") for line in lines)
    assert not any(line.startswith("More:") for line in lines)  # no url: no link line


def test_body_holds_nothing_but_the_alert() -> None:
    alert = outage(affected=["x"], summary="s", details={})
    text = messages.body(alert)
    # every token is a label, a value from the alert, or derived from its times
    allowed = {"s", "Status:", "firing", "Kind:", "outage", "(critical)", "Cause:", "node-b",
               "Since:", "2024-05-01", "12:03:00", "UTC", "For:", "30s", "so", "far",
               "Affected:", "1", "node", "cut", "off", "from", "every", "gateway", "x"}  # fmt: skip
    assert set(text.split()) <= allowed


def test_digest() -> None:
    alerts = [
        outage(status="resolved", ended_at=T0 + 60, id="r1", cause_nodes=["node-r"]),
        outage(id="f1"),
        outage(id="f2", cause_nodes=["node-c"], affected=[], url="https://x.example/i/f2"),
    ]
    assert messages.digest_summary(alerts) == "3 alerts: 2 firing, 1 resolved"
    assert messages.digest_title(alerts) == "[meshmon] 3 alerts: 2 firing, 1 resolved"
    assert messages.digest_summary(alerts[1:]) == "2 alerts: 2 firing"
    text = messages.digest_body(alerts)
    heads = [line for line in text.splitlines() if line.startswith(("FIRING", "RESOLVED"))]
    assert heads == [
        "FIRING outage: node-b down, 10 nodes cut off",
        "FIRING outage: node-c down",
        "RESOLVED outage: node-r back after 1m",
    ]
    assert "  https://x.example/i/f2" in text.splitlines()


def test_digest_body_is_bounded() -> None:
    alerts = [outage(id=f"a{i}", cause_nodes=[f"n{i}"]) for i in range(80)]
    text = messages.digest_body(alerts)
    assert "n49 down" in text and "n50 down" not in text
    assert "and 30 more" in text.splitlines()


def test_a_silent_bridge_counts_unmonitored_devices_not_nodes_cut_off() -> None:
    alert = outage(id="bridge_silent-1", kind="bridge_silent", severity="warning",
                   cause_nodes=["bridge-1"], affected=["ap-1", "ap-2"], summary="…")
    assert messages.title(alert) == (
        "[meshmon] FIRING bridge_silent: bridge-1 silent, 2 devices unmonitored")
    assert "Affected: 2 devices unmonitored (its bridge is silent)" in messages.body(alert)
    back = outage(id="bridge_silent-1", kind="bridge_silent", status="resolved",
                  cause_nodes=["bridge-1"], affected=["ap-1"], ended_at=T0 + 60)
    assert messages.title(back) == "[meshmon] RESOLVED bridge_silent: bridge-1 back after 1m"
