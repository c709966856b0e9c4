"""Notifiers against real receivers on loopback: an aiohttp server, aiosmtpd, apprise's json://.

Nothing under test is mocked: the webhook and apprise POST to a real HTTP server, email
goes through a real SMTP server (plain, AUTH, STARTTLS and SMTPS with a throwaway CA).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from meshmon.alerts import messages
from meshmon.alerts.model import Alert, LinkRef
from meshmon.alerts.notifiers import (
    AppriseNotifier,
    DeliveryError,
    EmailNotifier,
    WebhookNotifier,
    build_notifiers,
)
from meshmon.config import ConfigError, NotifierConfig, parse
from tests.integration.test_mqtt_security import make_ca, make_server_cert
from tests.servers import free_port

T0 = 1_714_564_980.0
TOKEN = "s3cret-token-123"


def alert(**kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "outage-node-b-1",
        "status": "firing",
        "kind": "outage",
        "severity": "critical",
        "summary": "node-b down, 2 nodes cut off",
        "started_at": T0,
        "cause_nodes": ["node-b"],
        "cause_links": [LinkRef.of("node-b", "node-a", "wifi")],
        "affected": ["node-c", "node-d"],
        "sent_at": T0 + 30,
        "url": "https://mesh.example.org/admin/incidents/outage-node-b-1",
    }
    fields.update(kw)
    return Alert(**fields)


# --- an HTTP receiver ---------------------------------------------------------------------


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 that records every POST and answers `status`."""

    port: int
    runner: web.AppRunner
    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        self.release.set()
        if self.runner.server is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async def record(request: web.Request) -> web.Response:
        rec.posts.append((request.path, dict(request.headers), await request.json()))
        if rec.delay_s:
            # held until the test ends, so a slow receiver is really slow
            await asyncio.wait_for(rec.release.wait(), rec.delay_s)
        return web.Response(status=rec.status, text="recorded")

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec = Receiver(port, runner)
    yield rec
    await rec.stop()


def webhook_config(url: str, **kw: Any) -> NotifierConfig:
    return NotifierConfig(name="hook", type="webhook", url=url, **kw)


# --- webhook ------------------------------------------------------------------------------


async def test_webhook_posts_the_alert_payload(receiver: Receiver) -> None:
    notifier = WebhookNotifier(
        webhook_config(receiver.url(), headers={"Authorization": f"Bearer {TOKEN}"})
    )
    one = alert()
    try:
        await notifier.send([one])
        await notifier.send([alert(status="resolved", ended_at=T0 + 723)])
    finally:
        await notifier.close()
    assert len(receiver.posts) == 2
    path, headers, body = receiver.posts[0]
    assert path == "/hook"
    assert body == one.to_payload()
    assert body["status"] == "firing" and body["affected_count"] == 2
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "meshmon"
    resolved = receiver.posts[1][2]
    assert resolved["status"] == "resolved" and resolved["duration_s"] == 723
    assert Alert.from_payload(resolved).ended_at == T0 + 723


async def test_webhook_sends_several_alerts_as_one_digest(receiver: Receiver) -> None:
    notifier = WebhookNotifier(webhook_config(receiver.url()))
    burst = [alert(id=f"a{i}", cause_nodes=[f"n{i}"]) for i in range(3)]
    burst.append(alert(id="r", status="resolved", ended_at=T0 + 5))
    try:
        await notifier.send(burst)
        await notifier.send([burst[-1], burst[-1]])
    finally:
        await notifier.close()
    assert len(receiver.posts) == 2
    digest = receiver.posts[0][2]
    assert digest["version"] == 1 and digest["kind"] == "digest"
    assert digest["status"] == "firing"
    assert digest["summary"] == "4 alerts: 3 firing, 1 resolved"
    assert digest["alerts"] == [a.to_payload() for a in burst]
    assert receiver.posts[1][2]["status"] == "resolved"


async def test_webhook_error_status_is_a_delivery_error(receiver: Receiver) -> None:
    receiver.status = 500
    notifier = WebhookNotifier(webhook_config(receiver.url(f"/hook/{TOKEN}")))
    try:
        with pytest.raises(DeliveryError, match="HTTP 500") as info:
            await notifier.send([alert()])
    finally:
        await notifier.close()
    assert TOKEN not in str(info.value)
    assert len(receiver.posts) == 1


async def test_webhook_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.status = 307
    notifier = WebhookNotifier(webhook_config(receiver.url()))
    try:
        with pytest.raises(DeliveryError, match="HTTP 307"):
            await notifier.send([alert()])
    finally:
        await notifier.close()


async def test_webhook_stopped_receiver_fails_within_the_timeout(receiver: Receiver) -> None:
    notifier = WebhookNotifier(webhook_config(receiver.url(f"/hook/{TOKEN}"), timeout_s=2))
    await receiver.stop()
    start = time.monotonic()
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send([alert()])
    finally:
        await notifier.close()
    assert time.monotonic() - start < 2
    assert "refused" in str(info.value).lower()
    assert TOKEN not in str(info.value)


async def test_webhook_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay_s = 30
    notifier = WebhookNotifier(webhook_config(receiver.url(), timeout_s=0.5))
    start = time.monotonic()
    try:
        with pytest.raises(DeliveryError, match=r"no answer within 0\.5s"):
            await notifier.send([alert()])
    finally:
        await notifier.close()
    assert time.monotonic() - start < 2


async def test_webhook_session_is_reopened_after_close(receiver: Receiver) -> None:
    notifier = WebhookNotifier(webhook_config(receiver.url()))
    await notifier.send([alert()])
    await notifier.close()
    await notifier.send([alert()])
    await notifier.close()
    await notifier.close()
    assert len(receiver.posts) == 2


# --- email --------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def message(self, index: int = -1) -> EmailMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        # the wire's CRLF line ends stay in the parsed text: back to the \n of messages.py
        parsed = email.message_from_bytes(
            content.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        return parsed


def check_password(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"meshmon", b"mail-pw")
    # handled=False: aiosmtpd's default (True) means "I already sent the reply myself"
    return AuthResult(success=ok, handled=False)


@dataclass
class Smtp:
    inbox: Inbox
    port: int


def start_smtp(request: pytest.FixtureRequest, **kw: Any) -> Smtp:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
    controller.start()
    request.addfinalizer(controller.stop)
    return Smtp(inbox, port)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("smtp-pki")
    ca = make_ca(d, "meshmon-mail-test-ca")
    cert, key = make_server_cert(d, ca)
    return {"ca": ca[0], "cert": cert, "key": key}


def server_tls(pki: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["cert"], pki["key"])
    return context


def client_tls(pki: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki["ca"]))


def email_config(port: int, **kw: Any) -> NotifierConfig:
    defaults: dict[str, Any] = {
        "name": "mail",
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "security": "none",
        "sender": "meshmon@mesh.example.org",
        "to": ["noc@mesh.example.org", "ops@mesh.example.org"],
        "timeout_s": 5,
    }
    return NotifierConfig(**{**defaults, **kw})


@pytest.fixture
def plain_smtp(request: pytest.FixtureRequest) -> Smtp:
    return start_smtp(request)


async def test_email_plain_arrives_with_subject_body_and_to(plain_smtp: Smtp) -> None:
    notifier = EmailNotifier(email_config(plain_smtp.port))
    one = alert()
    await notifier.send([one])
    await notifier.close()
    envelope = plain_smtp.inbox.envelopes[0]
    assert envelope.mail_from == "meshmon@mesh.example.org"
    assert envelope.rcpt_tos == ["noc@mesh.example.org", "ops@mesh.example.org"]
    message = plain_smtp.inbox.message()
    assert message["Subject"] == "[meshmon] FIRING outage: node-b down, 2 nodes cut off"
    assert message["To"] == "noc@mesh.example.org, ops@mesh.example.org"
    assert message["From"] == "meshmon@mesh.example.org"
    assert message["Message-ID"].endswith("@mesh.example.org>")
    text = message.get_content()
    assert text == messages.body(one) + "\n"
    assert "Link:     node-a–node-b (wifi)" in text  # non-ASCII survives the trip


async def test_email_recipient_override(plain_smtp: Smtp) -> None:
    notifier = EmailNotifier(email_config(plain_smtp.port))
    await notifier.send([alert()], recipient="owner@example.net")
    assert plain_smtp.inbox.envelopes[0].rcpt_tos == ["owner@example.net"]
    assert plain_smtp.inbox.message()["To"] == "owner@example.net"


async def test_email_digest(plain_smtp: Smtp) -> None:
    notifier = EmailNotifier(email_config(plain_smtp.port))
    burst = [alert(id="a"), alert(id="b", status="resolved", ended_at=T0 + 60)]
    await notifier.send(burst)
    message = plain_smtp.inbox.message()
    assert message["Subject"] == "[meshmon] 2 alerts: 1 firing, 1 resolved"
    assert message.get_content() == messages.digest_body(burst) + "\n"


async def test_email_bad_recipient_is_a_delivery_error(plain_smtp: Smtp) -> None:
    notifier = EmailNotifier(email_config(plain_smtp.port))
    with pytest.raises(DeliveryError, match="cannot build"):
        await notifier.send([alert()], recipient="a@example.org\r\nBcc: b@example.org")
    assert plain_smtp.inbox.envelopes == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_email_login_on_a_plain_connection(request: pytest.FixtureRequest) -> None:
    smtp = start_smtp(request, authenticator=check_password, auth_require_tls=False,
                      auth_required=True)  # fmt: skip
    good = EmailNotifier(email_config(smtp.port, username="meshmon", password="mail-pw"))
    await good.send([alert()])
    assert len(smtp.inbox.envelopes) == 1
    bad = EmailNotifier(email_config(smtp.port, username="meshmon", password="wrong"))
    with pytest.raises(DeliveryError, match="SMTP 535") as info:
        await bad.send([alert()])
    assert "wrong" not in str(info.value)
    anonymous = EmailNotifier(email_config(smtp.port))
    with pytest.raises(DeliveryError, match="SMTP 530"):
        await anonymous.send([alert()])
    assert len(smtp.inbox.envelopes) == 1


async def test_email_starttls_with_login(
    request: pytest.FixtureRequest, pki: dict[str, Path]
) -> None:
    smtp = start_smtp(request, tls_context=server_tls(pki), require_starttls=True,
                      authenticator=check_password, auth_required=True)  # fmt: skip
    config = email_config(smtp.port, security="starttls", username="meshmon", password="mail-pw")
    await EmailNotifier(config, ssl_context=client_tls(pki)).send([alert()])
    assert len(smtp.inbox.envelopes) == 1
    assert smtp.inbox.message()["Subject"].startswith("[meshmon] FIRING")
    # the system CAs do not know the throwaway CA: the certificate must be refused
    with pytest.raises(DeliveryError, match=r"(?i)certificate"):
        await EmailNotifier(config).send([alert()])
    # and without STARTTLS the server refuses to go on
    with pytest.raises(DeliveryError):
        await EmailNotifier(email_config(smtp.port)).send([alert()])
    assert len(smtp.inbox.envelopes) == 1


async def test_email_implicit_tls(request: pytest.FixtureRequest, pki: dict[str, Path]) -> None:
    smtp = start_smtp(request, ssl_context=server_tls(pki))
    config = email_config(smtp.port, security="ssl")
    await EmailNotifier(config, ssl_context=client_tls(pki)).send([alert()])
    assert len(smtp.inbox.envelopes) == 1


async def test_email_server_down_fails_within_the_timeout() -> None:
    notifier = EmailNotifier(email_config(free_port(), timeout_s=2))
    start = time.monotonic()
    with pytest.raises(DeliveryError, match=r"(?i)refused"):
        await notifier.send([alert()])
    assert time.monotonic() - start < 2


# --- apprise ------------------------------------------------------------------------------


def apprise_config(*urls: str, **kw: Any) -> NotifierConfig:
    return NotifierConfig(name="chat", type="apprise", url=urls[0], urls=list(urls[1:]), **kw)


async def test_apprise_json_delivers_title_and_body(receiver: Receiver) -> None:
    one = alert()
    notifier = AppriseNotifier(
        apprise_config(f"json://127.0.0.1:{receiver.port}/a", f"json://127.0.0.1:{receiver.port}/b")
    )
    await notifier.send([one])
    await notifier.close()
    assert sorted(path for path, _, _ in receiver.posts) == ["/a", "/b"]
    for _, _, body in receiver.posts:
        assert body["title"] == messages.title(one)
        assert body["message"] == messages.body(one)
        assert body["type"] == "failure"  # critical and firing


async def test_apprise_digest_and_resolved_type(receiver: Receiver) -> None:
    notifier = AppriseNotifier(apprise_config(f"json://127.0.0.1:{receiver.port}/x"))
    burst = [alert(id="a", status="resolved", ended_at=T0 + 9)] * 2
    await notifier.send(burst)
    body = receiver.posts[0][2]
    assert body["title"] == "[meshmon] 2 alerts: 2 resolved"
    assert body["message"] == messages.digest_body(burst)
    assert body["type"] == "success"


async def test_apprise_failures_are_delivery_errors(receiver: Receiver) -> None:
    receiver.status = 500
    failing = AppriseNotifier(apprise_config(f"json://user:{TOKEN}@127.0.0.1:{receiver.port}/x"))
    with pytest.raises(DeliveryError, match="JSON FAILURE") as info:
        await failing.send([alert()])
    assert TOKEN not in str(info.value)
    refused = AppriseNotifier(apprise_config(f"json://127.0.0.1:{free_port()}/x", timeout_s=5))
    start = time.monotonic()
    with pytest.raises(DeliveryError):
        await refused.send([alert()])
    assert time.monotonic() - start < 5


def test_apprise_unusable_url_fails_at_start_without_showing_it() -> None:
    # the config check catches it (so `meshmon check-config` does), naming where, not what
    with pytest.raises(ConfigError) as info:
        parse(f'[[notifiers]]\nname = "chat"\ntype = "apprise"\n'
              f'urls = ["json://127.0.0.1/x", "nosuchscheme://{TOKEN}"]\n')
    assert "urls[1]" in str(info.value)
    assert TOKEN not in str(info.value)


# --- building -----------------------------------------------------------------------------


def test_build_notifiers_by_name() -> None:
    built = build_notifiers([
        webhook_config("http://127.0.0.1:9/hook"),
        email_config(25),
        apprise_config("json://127.0.0.1:9/x"),
    ])  # fmt: skip
    assert list(built) == ["hook", "mail", "chat"]
    assert isinstance(built["hook"], WebhookNotifier)
    assert isinstance(built["mail"], EmailNotifier)
    assert isinstance(built["chat"], AppriseNotifier)
    assert all(n.name == name for name, n in built.items())


# --- hostile text -------------------------------------------------------------------------

HOSTILE = '<img src=x onerror="alert(1)"> [x](javascript:alert(2)) \x1b[31mred\nX-Injected: 1'
HOSTILE_ONE_LINE = '<img src=x onerror="alert(1)"> [x](javascript:alert(2)) [31mred X-Injected: 1'


async def test_hostile_text_stays_text_in_every_message(
    receiver: Receiver, plain_smtp: Smtp
) -> None:
    """Were free text from the network ever in an alert (today only node ids are, and
    those cannot hold markup), it is data in the webhook JSON, one plain line in email,
    and escaped by apprise for a target that renders HTML."""
    one = alert(summary=HOSTILE, tags=["<script>alert(3)</script>"],
                details={"note": "<b>bold</b>"})
    hook = WebhookNotifier(webhook_config(receiver.url()))
    await hook.send([one])
    await hook.close()
    _, headers, payload = receiver.posts.pop()
    assert headers["Content-Type"] == "application/json"
    assert (payload["summary"], payload["tags"]) == (HOSTILE, ["<script>alert(3)</script>"])

    mail = EmailNotifier(email_config(plain_smtp.port))
    await mail.send([one])
    message = plain_smtp.inbox.message()
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    assert message["X-Injected"] is None and "\x1b" not in message.as_string()
    assert message.get_content().splitlines()[0] == HOSTILE_ONE_LINE

    chat = AppriseNotifier(apprise_config(
        f"mailto://127.0.0.1:{plain_smtp.port}?from=meshmon@mesh.example.org"
        "&to=noc@mesh.example.org&mode=insecure&format=html",
    ))
    await chat.send([one])
    html = plain_smtp.inbox.message().get_body(("html",))
    assert html is not None
    html_text = html.get_content()
    assert "&lt;img" in html_text and "<img" not in html_text and "<b>bold" not in html_text
