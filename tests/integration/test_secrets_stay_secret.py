"""No password, key or token in any log, error, metric or exception: a full flow with every kind of secret
issued and used, right and wrong, with logging at DEBUG captured to files, then every byte searched.

The flow: a SCRAM credential issued (printed once to stdout) and rotated into a 0600 file
(``bosai access issue``); the feed logged into right, wrong, with the password typed as the user name, and
with the broker out of reach; a gateway token issued (``bosai gateway token issue``) and used right,
wrong and at the wrong door; an Orion behind a PEP proxy (its credential from a 0600 file) subscribed to
the gateway with a token of its own, notifying a reading through it, and refusing a wrong credential;
webhooks signed with a secret from a 0600 file, to URLs carrying secrets in their user, path and query,
delivered, refused and unreachable; e-mail and chat channels with the SMTP password from a 0600 file (over
STARTTLS and AUTH), recipients' addresses (kept like secrets) accepted and refused, and a chat webhook URL from a
0600 file, delivered and refused. Searched: the DEBUG logs of this process and of each command, the
broker's log, every HTTP answer (body and headers), every exception (text, repr, traceback), the
dead letters' details, and the Prometheus exposition — for each secret and its base64 forms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client import REGISTRY, generate_latest

from streams.delivery import cap
from streams.delivery.atom import CurrentAlerts
from streams.delivery.feed_server import CredentialChecker
from streams.delivery.feed_server import build_app as feed_app
from streams.delivery.sink import routes_for, run_sink
from streams.delivery.subscriptions import load_subscriptions
from streams.delivery.webhooks import verify
from streams.fiware.bridge_file import OrionAuth, load_bridge_config
from streams.fiware.orion import OrionClient, OrionError
from streams.fiware.orion_table import load_orion_table
from streams.fiware.subscribe import subscribe
from streams.gateway.owners import load_owners
from streams.gateway.server import Doors, Gateway
from streams.gateway.server import build_app as gateway_app
from streams.kernel.messages import InMessage
from streams.kernel.redact import forms
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand, topic_name
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.access_file import default_access_path, load_access
from streams.platform.avro import ALERT, DEAD_LETTER, READING, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics, revoke_credential
from streams.platform.settings import ENV_BOOTSTRAP, ENV_CA_FILE, ENV_CLIENTS_BOOTSTRAP
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.token_store import TokenStore
from tests.support.orion_standin import RIVER_ENTITY, RIVER_GAUGE, OrionStandIn, make_nasushiobara_pack

CSV = Path("data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
STORE = default_store()
SCRAM_USER = "muni-09204"
BOOT = (  # a `bosai` command with every logger at DEBUG into a file (the first argument)
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, filename=sys.argv.pop(1),"
    " format='%(asctime)s %(levelname)s %(name)s: %(message)s')\n"
    "from streams.cli import cli\n"
    "cli(prog_name='bosai')\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Evidence:
    """Everything the flow said: command outputs and logs on disk, answers and exceptions in memory."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.secrets: dict[str, str] = {}  # what -> value
        self.texts: list[tuple[str, str]] = []  # (where, text)
        self.allowed_once: dict[Path, str] = {}  # a file that must hold this secret exactly once

    def secret(self, what: str, value: str) -> str:
        assert value and len(value) >= 8, f"{what} is not a secret worth looking for"
        self.secrets[what] = value
        return value

    def answer(self, where: str, status: int, headers: dict, body: bytes) -> None:
        self.texts.append((where, f"{status} {json.dumps(headers)} {body.decode('utf-8', 'replace')}"))

    def exception(self, where: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        self.texts.append((where, f"{exc}\n{exc!r}\n{text}"))

    def bosai(self, name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-c", BOOT, str(self.logs / f"{name}.debug.log"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        (self.logs / f"{name}.stdout").write_text(done.stdout)
        (self.logs / f"{name}.stderr").write_text(done.stderr)
        assert done.returncode == 0, done.stderr
        return done

    def needles(self) -> dict[str, str]:
        out = {}
        for what, value in self.secrets.items():
            for form in forms(value):
                out[form] = what
        user_password = [(SCRAM_USER, v) for k, v in self.secrets.items() if k.startswith("SCRAM password")]
        for user, password in user_password:  # HTTP Basic carries user:password in base64
            out[base64.b64encode(f"{user}:{password}".encode()).decode()] = "Basic credentials"
        return out

    def hits(self) -> list[str]:
        needles = self.needles()
        found = []
        for path in sorted(p for p in self.logs.rglob("*") if p.is_file()):
            data = path.read_bytes().decode("utf-8", "replace")
            for needle, what in needles.items():
                count = data.count(needle)
                if path in self.allowed_once and needle == self.allowed_once[path]:
                    count -= 1
                if count:
                    found.append(f"{path.name}: {what} ({count}x)")
        for where, text in self.texts:
            found += [f"{where}: {what}" for needle, what in needles.items() if needle in text]
        return found


@pytest.fixture()
def debug_log(tmp_path):
    """Every logger of this process at DEBUG into a file for the test's duration."""
    logs = tmp_path / "logs"
    logs.mkdir()
    handler = logging.FileHandler(logs / "hub.debug.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield logs
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def _scram(evidence: Evidence, env: dict) -> str:
    """Issue a SCRAM credential (shown once, on stdout), then rotate it into a 0600 file that was 0644."""
    printed = evidence.bosai("access-issue", "access", "issue", SCRAM_USER, "--format", "json", env=env)
    first = evidence.secret("SCRAM password (printed)", json.loads(printed.stdout)["kafka"]["sasl.password"])
    evidence.allowed_once[evidence.logs / "access-issue.stdout"] = first
    config = evidence.logs.parent / "muni-09204.properties"
    config.write_text("# an old config\n")
    config.chmod(0o644)
    evidence.bosai("access-rotate", "access", "issue", SCRAM_USER, "--output", str(config), env=env)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    jaas = next(line for line in config.read_text().splitlines() if line.startswith("sasl.jaas.config="))
    return evidence.secret("SCRAM password (rotated)", jaas.split('password="')[1].split('"')[0])


async def _feed(evidence: Evidence, listener: tuple[str, Path], password: str) -> None:
    evidence.secret("a wrong feed password", "Tr0ub4dor&3-but-wrong")
    checker = CredentialChecker(*listener, cache_s=0)
    runner = web.AppRunner(
        feed_app(CurrentAlerts(), load_access(default_access_path()), checker, sender_names={}, zone_polygons={})
    )
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/feeds/municipality/09204.atom"
    attempts = [
        (SCRAM_USER, password, 200),
        (SCRAM_USER, evidence.secrets["a wrong feed password"], 401),
        (password, password, 401),  # the password typed into the user-name field too
        (SCRAM_USER, evidence.secrets["SCRAM password (printed)"], 401),  # the rotated-away one
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for user, secret, expected in attempts:
                basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
                async with http.get(url, headers={"Authorization": f"Basic {basic}"}) as answer:
                    evidence.answer("feed", answer.status, dict(answer.headers), await answer.read())
                    assert answer.status == expected
    finally:
        await runner.cleanup()
    unreachable = CredentialChecker(f"127.0.0.1:{_free_port()}", listener[1])
    with pytest.raises(kafka.LoginUnavailable) as caught:
        await unreachable.check(SCRAM_USER, password)
    evidence.exception("feed, broker out of reach", caught.value)


def _gateway_files(evidence: Evidence, root: Path, pack, orion_url: str, notify: str, env: dict) -> tuple:
    owners = root / "owners.yaml"
    owners.write_text(
        yaml.safe_dump(
            {"version": 1, "owners": [{"id": "ns-kensetsu", "region": "tochigi", "stations": [RIVER_GAUGE]}]}
        )
    )
    tokens = root / "tokens.json"
    token_file = root / "ns.token"
    evidence.bosai(
        "gateway-token-issue",
        *("gateway", "token", "issue", "ns-kensetsu", "--owners", str(owners), "--tokens", str(tokens)),
        *("--region", str(pack.path), "--output", str(token_file)),
        env=env,
    )
    token = evidence.secret("gateway token", token_file.read_text().strip())
    evidence.secret("gateway token's secret part", token.split(".")[2])
    credential = root / "keystone.token"
    credential.write_text(evidence.secret("Orion credential (PEP proxy)", f"gAAAAAB{uuid.uuid4().hex}"))
    credential.chmod(0o600)
    bridge = root / "bridge.yaml"
    orion = {"id": "nasushiobara", "url": orion_url, "service": "nasushiobara", "sensor_service_path": "/sensors"}
    orion |= {"region": "tochigi", "municipalities": ["09213"], "notify_url": notify}
    orion |= {"auth": {"header": "X-Auth-Token", "file": str(credential)}}
    bridge.write_text(yaml.safe_dump({"version": 1, "orions": [orion]}))
    return owners, TokenStore(tokens), token, bridge


async def _gateway_and_orion(evidence: Evidence, bootstrap: str, root: Path, pack, catalog, env: dict) -> None:
    standin = OrionStandIn(require_header=None)
    orion_url = await standin.start()
    port = _free_port()
    notify = f"http://127.0.0.1:{port}/v1/orion/nasushiobara/notifications"
    owners, tokens, token, bridge_file = _gateway_files(evidence, root, pack, orion_url, notify, env)
    standin.require_header = ("X-Auth-Token", evidence.secrets["Orion credential (PEP proxy)"])
    bridge = load_bridge_config(bridge_file, [pack], load_access(default_access_path()), environ={})
    gateway = Gateway(
        packs=[pack],
        owners=load_owners(owners, [pack]),
        bridge=bridge,
        tables=load_orion_table(pack, {"nasushiobara"}),
        topics={"tochigi": HubTopics.for_region(catalog, pack)},
        sender=kafka.BatchSender(bootstrap),
        store=STORE,
        doors=Doors(tokens, refresh_s=0.0),
    )
    await gateway.sender.start()
    runner = web.AppRunner(gateway_app(gateway))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    target = bridge.orions[0]
    try:
        async with aiohttp.ClientSession() as http:
            reading = {
                "station_id": RIVER_GAUGE,
                "observed_at": "2026-07-01T10:00:00+09:00",
                "measurements": [{"quantity": "water_level", "value": 1.2, "unit": "m"}],
            }
            wrong = f"bst.{token.split('.')[1]}.{evidence.secret('a wrong gateway token secret', 'x' * 20 + 'Wr0ng')}"
            for bearer, path, expected in [
                (token, "/v1/readings", 202),
                (wrong, "/v1/readings", 401),
                (token, "/v1/orion/nasushiobara/notifications", 403),
            ]:
                headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
                async with http.post(f"http://127.0.0.1:{port}{path}", json=reading, headers=headers) as answer:
                    evidence.answer("gateway", answer.status, dict(answer.headers), await answer.read())
                    assert answer.status == expected
            await subscribe(target, load_orion_table(pack, {"nasushiobara"}).values(), tokens)
            body = next(iter(standin.subscriptions.values()))["body"]
            orion_token = body["notification"]["httpCustom"]["headers"]["Authorization"].removeprefix("Bearer ")
            evidence.secret("the Orion's gateway token", orion_token)
            sensors = OrionClient(http, replace(target, service_path="/sensors"))
            await sensors.append([_sensor_entity()])
            for _ in range(50):
                if standin.notifications:
                    break
                await asyncio.sleep(0.1)
            assert standin.notifications and standin.notifications[-1][1] == 202, standin.notifications
            intruder = OrionAuth(
                "X-Auth-Token", evidence.secret("a wrong Orion credential", f"gAAAAAB{uuid.uuid4().hex}")
            )
            with pytest.raises(OrionError) as refused:
                await OrionClient(http, replace(target, auth=intruder)).append([_sensor_entity()])
            evidence.exception("Orion refusing a wrong credential", refused.value)
            wrong_orion = {"Authorization": f"Bearer {orion_token[:-4]}AAAA", "Content-Type": "application/json"}
            wrong_orion |= {"Fiware-Service": "nasushiobara", "Fiware-ServicePath": "/sensors"}
            async with http.post(notify, json={"subscriptionId": "x", "data": []}, headers=wrong_orion) as answer:
                evidence.answer("orion door", answer.status, dict(answer.headers), await answer.read())
                assert answer.status == 401
    finally:
        await runner.cleanup()
        await gateway.sender.stop()
        await standin.stop()


def _sensor_entity() -> dict:
    return {
        "id": RIVER_ENTITY,
        "type": "WaterObserved",
        "waterLevel": {"type": "Number", "value": 1.5},
        "dateObserved": {"type": "DateTime", "value": "2026-07-01T11:00:00+09:00"},
        "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [140.06, 36.975]}},
    }


def _alerts_of_utsunomiya(project_root: Path, pack) -> list[dict]:
    records = [
        r
        for r in read_amedas(
            project_root / CSV,
            since_ms=parse_jst("2023-09-04", option="--from"),
            until_ms=parse_jst("2023-09-05", option="--to"),
        )
        if r["station_id"] in pack.stations
    ]
    result = Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE).process(
        [InMessage("raw", 0, i, None, p) for i, p in enumerate(AvroCodec(STORE, READING).encode_many(records))],
        lambda s: StationState(),
    )
    return [a.record for a in result.alerts if "09201" in a.record["municipality_codes"]]


async def _webhooks(evidence: Evidence, bootstrap: str, root: Path, pack, catalog, alerts: list[dict]) -> None:
    secret = evidence.secret("webhook signing secret", f"whsec-{uuid.uuid4().hex}")
    secret_file = root / "utsunomiya.secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    path_secret = evidence.secret("webhook URL path secret", f"T0{uuid.uuid4().hex[:10]}B0{uuid.uuid4().hex[:12]}")
    query_secret = evidence.secret("webhook URL query secret", f"q{uuid.uuid4().hex}")
    user_secret = evidence.secret("webhook URL password", f"u{uuid.uuid4().hex}")
    seen: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(secret, request.headers["X-Bosai-Timestamp"], body, request.headers["X-Bosai-Signature"])
        seen.append(request.headers["X-Bosai-Alert-Id"])
        return web.Response(status=204 if len(seen) <= 2 else 401)

    app = web.Application()
    app.router.add_post("/hook/{secret}", receive)
    runner = web.AppRunner(app, access_log=None)  # the municipality's server: its log is not the hub's
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    retry = {"max_attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1, "timeout_s": 2}
    subscriptions = root / "subscriptions.yaml"
    subscriptions.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"retry": retry},
                "subscriptions": [
                    {
                        "id": "utsunomiya",
                        "municipality": "09201",
                        "url": f"http://127.0.0.1:{port}/hook/{path_secret}?token={query_secret}",
                        "secret_file": str(secret_file),
                    },
                    {
                        "id": "utsunomiya-backup",
                        "municipality": "09201",
                        "url": f"http://ops:{user_secret}@127.0.0.1:{_free_port()}/hook/{path_secret}",
                        "secret_env": "BOSAI_TEST_WEBHOOK_SECRET",
                    },
                ],
            }
        )
    )
    routes = routes_for(
        load_subscriptions(subscriptions, [pack], environ={"BOSAI_TEST_WEBHOOK_SECRET": secret}), [pack], catalog
    )
    codec = AvroCodec(STORE, ALERT)
    topic = topic_name(catalog, "alerts.municipality", "tochigi", municipality_code="09201")
    async with kafka.started_producer(bootstrap) as producer:
        for alert in alerts:
            await producer.send_and_wait(topic, codec.encode(alert), key=alert["alert_id"].encode())
    deadletters = routes[0].deadletter_topic
    before = await kafka.end_offsets(bootstrap, [deadletters])
    wanted = (len(alerts) - 2) + len(alerts)  # refused by the receiver; every one to the unreachable URL
    stop = asyncio.Event()
    render = lambda a: cap.render(a, sender_name="栃木県", zone_polygons=None)  # noqa: E731
    sink = asyncio.create_task(run_sink(routes, bootstrap, STORE, render, stop))
    try:
        for _ in range(200):
            after = await kafka.end_offsets(bootstrap, [deadletters])
            if sum(after.values()) - sum(before.values()) >= wanted:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await sink
        await runner.cleanup()
    dead = await kafka.read_range(bootstrap, before, after)
    assert len(dead) == wanted and len(seen) == len(alerts)
    for record in dead:
        detail = AvroCodec(STORE, DEAD_LETTER).decode(record.value)["error_detail"]
        evidence.texts.append(("a webhook dead letter", detail))
        assert detail.startswith(f"{1 if 'permanent' in detail else 2} attempt(s) to http://127.0.0.1:")


async def _channels(evidence: Evidence, bootstrap: str, root: Path, pack, catalog, alerts: list[dict]) -> None:
    """E-mail and chat channels (read from the topic _webhooks wrote): the SMTP password, the recipients'
    addresses and the chat webhook's URL, through STARTTLS and AUTH, refusals and permanent failures."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from streams.delivery.channels import load_channels
    from streams.delivery.sink import channel_targets
    from tests.integration.test_email_chat_sink import _self_signed

    smtp_password = evidence.secret("SMTP password", f"smtp-{uuid.uuid4().hex}")
    staff = evidence.secret("e-mail recipient", f"staff-{uuid.uuid4().hex[:12]}@example.city.utsunomiya.lg.jp")
    gone = evidence.secret("e-mail recipient refused", f"gone-{uuid.uuid4().hex[:12]}@example.city.utsunomiya.lg.jp")
    chat_path = evidence.secret("chat webhook URL path secret", f"T0{uuid.uuid4().hex[:10]}B0{uuid.uuid4().hex[:12]}")
    accepted: list[str] = []

    class Relay:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address == gone:
                return f"550 5.1.1 <{address}>: user unknown"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            accepted.extend(envelope.rcpt_tos)
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.password == smtp_password.encode())

    files = {"password": smtp_password, "mail": f"{staff}\n{gone}\n", "bounce": gone, "url": ""}
    server_tls, cert_file = _self_signed(root)
    smtp_port, chat_port = _free_port(), _free_port()
    files["url"] = f"http://127.0.0.1:{chat_port}/hook/{chat_path}"
    for name, text in files.items():
        (root / f"{name}.secret").write_text(text)
        (root / f"{name}.secret").chmod(0o600)
    posted: list[int] = []

    async def receive(request: web.Request) -> web.Response:
        posted.append(len(await request.read()))
        return web.Response(status=200 if len(posted) <= 2 else 404)

    app = web.Application()
    app.router.add_post("/hook/{secret}", receive)
    runner = web.AppRunner(app, access_log=None)  # the chat service's log is not the hub's
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", chat_port).start()
    relay_log = logging.getLogger("mail.log")  # the relay's own log names the recipients: not the hub's
    relay_log.disabled = True
    controller = Controller(
        Relay(),
        hostname="127.0.0.1",
        port=smtp_port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    config = root / "channels.yaml"
    mail_entry = {"to_file": str(root / "mail.secret")}
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"retry": {"max_attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1}},
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "username": "bosai-hub",
                    "password_file": str(root / "password.secret"),
                    "ca_file": str(cert_file),
                    "from": "bosai-tochigi@example.pref.tochigi.lg.jp",
                    "unsubscribe": "unsubscribe@example.pref.tochigi.lg.jp",
                },
                "channels": [
                    {"id": "utsunomiya-mail", "municipality": "09201", "email": mail_entry},
                    {"id": "utsunomiya-bounce", "municipality": "09201", "email": {"to": [gone]}},
                    {
                        "id": "utsunomiya-chat",
                        "municipality": "09201",
                        "chat": {"kind": "slack", "url_file": str(root / "url.secret")},
                    },
                ],
            }
        )
    )
    targets = channel_targets(load_channels(config, [pack], environ={}), [pack], catalog, STORE)
    deadletters = targets[0].deadletter_topic
    before = await kafka.end_offsets(bootstrap, [deadletters])
    wanted = len(alerts) + (len(alerts) - 2)  # every one to the refused address; the chat's 404s
    stop = asyncio.Event()
    sink = asyncio.create_task(run_sink([], bootstrap, STORE, lambda a: b"", stop, targets=targets))
    try:
        for _ in range(300):
            after = await kafka.end_offsets(bootstrap, [deadletters])
            if sum(after.values()) - sum(before.values()) >= wanted and len(accepted) >= len(alerts):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await sink
        controller.stop()
        relay_log.disabled = False
        await runner.cleanup()
    dead = await kafka.read_range(bootstrap, before, after)
    assert len(dead) == wanted and accepted == [staff] * len(alerts) and len(posted) == len(alerts)
    for record in dead:
        detail = AvroCodec(STORE, DEAD_LETTER).decode(record.value)["error_detail"]
        evidence.texts.append(("a channel's dead letter", detail))
        assert "permanent" in detail and ("[address]" in detail or "HTTP 404" in detail), detail
    evidence.texts.append(("the channels' repr", repr(targets) + repr([t.channel for t in targets])))


def test_a_full_flow_with_every_kind_of_secret_leaves_none_in_logs_errors_metrics_or_exceptions(
    kafka_bootstrap, kafka_clients_listener, kafka_broker_logs, project_root, debug_log, tmp_path
):
    evidence = Evidence(debug_log)
    clients, ca_file = kafka_clients_listener
    env = dict(
        os.environ, **{ENV_BOOTSTRAP: kafka_bootstrap, ENV_CLIENTS_BOOTSTRAP: clients, ENV_CA_FILE: str(ca_file)}
    )
    key_lines = [line for line in (ca_file.parent / "ca.key").read_text().splitlines() if "PRIVATE KEY" not in line]
    evidence.secret("the CA's private key", key_lines[5])
    pack = load_pack(make_nasushiobara_pack(project_root / "regions" / "tochigi", tmp_path / "tochigi"))
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"sec{uuid.uuid4().hex[:8]}")
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()])))
    broker_from = [log.stat().st_size for log in kafka_broker_logs or []]
    started = time.monotonic()

    try:
        password = _scram(evidence, env)
        asyncio.run(_feed(evidence, kafka_clients_listener, password))
        asyncio.run(_gateway_and_orion(evidence, kafka_bootstrap, tmp_path, pack, catalog, env))
        utsunomiya = _alerts_of_utsunomiya(project_root, pack)
        asyncio.run(_webhooks(evidence, kafka_bootstrap, tmp_path, pack, catalog, utsunomiya))
        asyncio.run(_channels(evidence, kafka_bootstrap, tmp_path, pack, catalog, utsunomiya))
    finally:
        asyncio.run(revoke_credential(kafka_bootstrap, SCRAM_USER))
    (debug_log / "metrics.prom").write_bytes(generate_latest(REGISTRY))
    for log, offset in zip(kafka_broker_logs or [], broker_from, strict=True):
        with open(log, "rb") as whole:
            whole.seek(offset)
            (debug_log / f"broker-{log.parent.name}.log").write_bytes(whole.read())

    print(
        f"\nsecrets flow: {len(evidence.secrets)} secrets, {len(evidence.needles())} forms searched in "
        f"{sum(p.stat().st_size for p in debug_log.iterdir()) // 1024} KiB of logs "
        f"({len(list(debug_log.iterdir()))} files) and {len(evidence.texts)} answers, exceptions and dead letters "
        f"in {time.monotonic() - started:.1f} s"
    )
    hub_log = (debug_log / "hub.debug.log").read_text()
    assert "DEBUG aiokafka" in hub_log, "libraries' DEBUG lines were captured too"
    assert f"Authenticated as {SCRAM_USER}" in hub_log and f"wrong password for {SCRAM_USER}" in hub_log
    assert "refused a token" in hub_log and "dead-lettered" in hub_log, "the failure paths ran and logged"
    assert any("Failed authentication" in p.read_text() for p in debug_log.glob("broker-*.log")) or not (
        kafka_broker_logs
    )
    printed = (debug_log / "access-issue.stdout").read_text()
    assert printed.count(evidence.secrets["SCRAM password (printed)"]) == 1, "shown once, on stdout: its purpose"
    assert evidence.hits() == []
