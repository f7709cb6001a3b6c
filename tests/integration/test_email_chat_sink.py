"""E-mail and chat channels of the sink on the real broker, against a real SMTP server (aiosmtpd: STARTTLS and
AUTH required, a self-signed certificate made here) and a real HTTP receiver (aiohttp) that fail as servers do:
down, 4xx, 5xx, slow, 429 with Retry-After. What cannot be delivered is dead-lettered (key = channel id, no
address in the reason) and redriven successfully once the servers are back; the e-mails thread per episode."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.delivery.channels import ChatChannel, EmailChannel, SmtpSettings
from streams.delivery.chat_payloads import template_for
from streams.delivery.email_message import MailIdentity, message_id
from streams.delivery.sink import channel_targets, redrive_target, run_sink
from streams.delivery.webhooks import RetryPolicy
from streams.kernel.topics import expand, topic_name
from streams.packs.region_pack import load_pack
from streams.platform.avro import ALERT, DEAD_LETTER, AvroCodec, default_store
from streams.platform.kafka import end_offsets, read_range
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.unit.delivery.test_wording import relayed_alerts

pytestmark = pytest.mark.integration

USER, PASSWORD = "bosai-hub", "smtp-password-not-a-real-one"
DOMAIN = "example.city.utsunomiya.lg.jp"
IDENTITY = MailIdentity("bosai-tochigi@example.pref.tochigi.lg.jp", "unsubscribe@example.pref.tochigi.lg.jp")
FAST = RetryPolicy(max_attempts=2, initial_backoff_s=0.05, max_backoff_s=0.1, timeout_s=0.5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _self_signed(folder):
    """A self-signed certificate for 127.0.0.1 (the server's) and its file (what the client trusts)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


class Mailbox:
    """The municipality's mail server: refuses or stalls by recipient until healed; keeps what it accepted."""

    def __init__(self):
        self.received: dict[str, list[email.message.EmailMessage]] = defaultdict(list)
        self.healed = False
        self.logins: Counter = Counter()
        self.sessions: Counter = Counter()  # (authenticated, over TLS) of every message accepted

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.healed and address.startswith("tempfail@"):
            return "451 4.3.0 mailbox busy, try later"
        if not self.healed and address.startswith("reject@"):
            return f"550 5.1.1 <{address}>: recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if not self.healed and any(a.startswith("slow@") for a in envelope.rcpt_tos):
            await asyncio.sleep(2)  # past the sink's 0.5 s timeout: it has given up on this session
            return "451 4.4.2 too late"
        self.sessions[(session.authenticated, session.ssl is not None)] += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for recipient in envelope.rcpt_tos:
            self.received[recipient].append(message)
        return "250 OK queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        self.logins["ok" if ok else "refused"] += 1
        return AuthResult(success=ok)


class ChatReceiver:
    """Teams/Slack/LINE WORKS/an operator's endpoint: 429 first, then per path 500, 404 or a stall until healed."""

    def __init__(self):
        self.accepted: dict[str, list[dict]] = defaultdict(list)
        self.requests: Counter = Counter()
        self.healed = False

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.requests[path] += 1
        body = json.loads(await request.read())
        if path == "ok" and self.requests[path] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if not self.healed and path == "flaky":
            return web.Response(status=500)
        if not self.healed and path == "gone":
            return web.Response(status=404, text="no_service")
        if not self.healed and path == "slow":
            await asyncio.sleep(1.5)
        self.accepted[path].append(body)
        return web.Response(status=200, text="ok")


# the test's own servers log what they receive (addresses, paths): only the hub's side is checked
SERVER_LOGGERS = ("mail.log", "aiohttp.access", "aiohttp.server", "aiohttp.web")


def test_email_and_chat_channels_deliver_dead_letter_and_redrive(
    kafka_bootstrap, project_root, unique, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    store = default_store()
    packs = [load_pack(project_root / "regions" / name) for name in ("tochigi", "kanagawa")]
    kanagawa = packs[1]
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"channels{unique}")
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [kanagawa.topics_input()])))
    topic = topic_name(catalog, "alerts.municipality", "kanagawa", municipality_code="14206")  # 小田原市
    alerts = [a for a in relayed_alerts(project_root) if "14206" in a["municipality_codes"]][:4]
    assert len(alerts) >= 2
    n = len(alerts)

    server_tls, cert_file = _self_signed(tmp_path)
    smtp_port, down_port = _free_port(), _free_port()
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=smtp_port,
        tls="starttls",
        identity=IDENTITY,
        username=USER,
        password=PASSWORD,
        ca_file=cert_file,
        suppression_file=tmp_path / "suppressed.txt",
    )

    def mail(channel_id, local, *, port=smtp_port):
        recipients = (f"{local}@{DOMAIN}",)
        return EmailChannel(channel_id, "kanagawa", "14206", "小田原市", recipients, replace(smtp, port=port), FAST)

    http_port = _free_port()

    def chat(channel_id, kind, path, source=None):
        url = f"http://127.0.0.1:{http_port}/hook/{path}/T0SECRETPATH"
        return ChatChannel(channel_id, "kanagawa", "14206", "小田原市", kind, url, template_for(kind, source), FAST)

    own = '{"title": {{ subject | tojson }}, "credit": {{ credit | tojson }}}'
    channels = [
        mail(f"mail-ok-{unique}", "staff"),
        mail(f"mail-down-{unique}", "staff", port=down_port),
        mail(f"mail-4xx-{unique}", "tempfail"),
        mail(f"mail-5xx-{unique}", "reject"),
        mail(f"mail-slow-{unique}", "slow"),
        chat(f"chat-ok-{unique}", "slack", "ok"),
        chat(f"chat-5xx-{unique}", "teams", "flaky"),
        chat(f"chat-4xx-{unique}", "lineworks", "gone"),
        chat(f"chat-slow-{unique}", "template", "slow", own),
    ]
    faulty = [c.id for c in channels if "-ok-" not in c.id]
    targets = channel_targets(channels, packs, catalog, store)
    dlq = targets[0].deadletter_topic
    mailbox, receiver = Mailbox(), ChatReceiver()

    async def scenario():
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        codec = AvroCodec(store, ALERT)
        for alert in alerts:
            await producer.send(topic, codec.encode(alert), key=alert["alert_id"].encode())
        await producer.stop()

        smtp_kwargs = dict(
            tls_context=server_tls, require_starttls=True, auth_required=True, authenticator=mailbox.authenticate
        )
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port, **smtp_kwargs)
        controller.start()
        app = web.Application()
        app.router.add_post("/hook/{path}/{secret}", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", http_port).start()
        revived = None
        stop = asyncio.Event()
        sink = asyncio.create_task(run_sink([], kafka_bootstrap, store, lambda a: b"", stop, targets=targets))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            dead: dict[str, list] = {}
            while (
                len(mailbox.received[f"staff@{DOMAIN}"]) < n
                or len(receiver.accepted["ok"]) < n
                or any(len(dead.get(c, [])) < n for c in faulty)
            ):
                assert loop.time() < deadline, (dict(mailbox.received), dict(receiver.accepted), dead.keys())
                assert not sink.done(), sink
                await asyncio.sleep(0.3)
                ends = await end_offsets(kafka_bootstrap, [dlq])
                dead = defaultdict(list)
                for m in await read_range(kafka_bootstrap, {}, ends):
                    dead[m.key.decode()].append(AvroCodec(store, DEAD_LETTER).decode(m.value))
            stop.set()
            await asyncio.wait_for(sink, 20)

            # what was delivered: the JMA report as JMA's, threaded, through STARTTLS and AUTH
            inbox = mailbox.received[f"staff@{DOMAIN}"]
            assert [m["X-Bosai-Alert-Id"] for m in inbox] == [a["alert_id"] for a in alerts]
            for alert, message in zip(alerts, inbox, strict=True):
                ok_id = f"mail-ok-{unique}"
                assert message["Message-ID"] == message_id(alert["alert_id"], alert["sequence"], ok_id, IDENTITY.domain)
                if alert["sequence"]:
                    assert message["In-Reply-To"] == message_id(alert["alert_id"], 0, ok_id, IDENTITY.domain)
                assert message["Subject"].startswith("【気象庁発表・出典：気象庁】小田原市 ")
                assert "出典：気象庁" in message.get_body(("plain",)).get_content()
                assert message["List-Unsubscribe"].startswith("<mailto:unsubscribe@")
                assert DOMAIN not in str(message["To"])
            assert mailbox.logins["ok"] >= n and not mailbox.logins["refused"]
            assert set(mailbox.sessions) == {(True, True)}  # every message after STARTTLS and AUTH
            assert receiver.requests["ok"] == n + 1  # the 429 was retried after its Retry-After
            assert all("出典：気象庁" in body["text"] for body in receiver.accepted["ok"])

            # what was not: dead-lettered with the reason, never an address or the webhook's secret path
            assert len(dead[f"mail-5xx-{unique}"]) == n and receiver.requests["gone"] == n  # permanent: no retry
            for channel_id in faulty:
                for record in dead[channel_id]:
                    detail = record["error_detail"]
                    assert "@" not in detail and DOMAIN not in detail and "SECRETPATH" not in detail, detail
                    assert PASSWORD not in detail
            assert "permanent" in dead[f"mail-5xx-{unique}"][0]["error_detail"]
            assert "451" in dead[f"mail-4xx-{unique}"][0]["error_detail"]
            assert "no answer within" in dead[f"mail-slow-{unique}"][0]["error_detail"]
            assert "HTTP 404" in dead[f"chat-4xx-{unique}"][0]["error_detail"]
            assert "HTTP 500" in dead[f"chat-5xx-{unique}"][0]["error_detail"]

            # the servers are back: every dead letter is redriven once, successfully
            mailbox.healed = receiver.healed = True
            revived = Controller(mailbox, hostname="127.0.0.1", port=down_port, **smtp_kwargs)
            revived.start()
            for target in targets:
                if target.id in faulty:
                    assert await redrive_target(target, kafka_bootstrap, store) == (n, 0), target.id
            assert await redrive_target(targets[1], kafka_bootstrap, store) == (0, 0)  # each dead letter once
            for local in ("tempfail", "reject", "slow"):
                assert len(mailbox.received[f"{local}@{DOMAIN}"]) == n, local
            assert len(mailbox.received[f"staff@{DOMAIN}"]) == 2 * n  # mail-ok and the revived mail-down
            assert len(receiver.accepted["flaky"]) == n and len(receiver.accepted["gone"]) == n
            assert len(receiver.accepted["slow"]) >= n  # stalled answers may have been applied late too
            assert all(body["credit"] == "出典：気象庁" for body in receiver.accepted["slow"])
        finally:
            stop.set()
            controller.stop()
            if revived is not None:
                revived.stop()
            await runner.cleanup()

    asyncio.run(scenario())

    ours = [r for r in caplog.records if not r.name.startswith(SERVER_LOGGERS)]
    assert any(r.name.startswith("bosai") and "dead-lettered" in r.getMessage() for r in ours)
    for record in ours:
        text = record.getMessage() + (record.exc_text or "")
        assert DOMAIN not in text and "SECRETPATH" not in text and PASSWORD not in text, (record.name, text)
