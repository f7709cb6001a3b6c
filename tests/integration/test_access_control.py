"""Authentication and authorization on the real broker: SCRAM-SHA-512 over TLS, ACLs from the access file,
and the Atom/CAP feed behind the same credentials."""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from streams.delivery import cap
from streams.delivery.atom import ATOM_NS, CurrentAlerts
from streams.delivery.cap_schema import cap_validation_errors
from streams.delivery.feed_server import CredentialChecker, build_app, follow_alerts
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand, topic_name
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.avro import ALERT, READING, AvroCodec, default_store
from streams.platform.kafka_admin import apply_access, apply_topics, issue_credential, plan_access, revoke_credential
from streams.platform.tls import client_ssl_context
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = Path("data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
DENIED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)


@pytest.fixture(scope="module")
def secured(kafka_bootstrap, kafka_clients_listener, project_root, tmp_path_factory):
    """A namespace with every catalog topic, its access file applied, and credentials issued."""
    prefix = f"auth{socket.gethostname()[:4].lower()}{id(tmp_path_factory) % 10_000}"
    packs = [load_pack(project_root / "regions" / name) for name in ("tochigi", "kanagawa")]
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [p.topics_input() for p in packs])))
    access_file = tmp_path_factory.mktemp("access") / "access.yaml"
    access_file.write_text(render(generate(packs, catalog)), encoding="utf-8")
    policy = load_access(access_file)
    before, after = asyncio.run(apply_access(kafka_bootstrap, policy))
    passwords = {
        name: asyncio.run(issue_credential(kafka_bootstrap, policy.principal(name)))
        for name in ("muni-09201", "muni-14100", "public", "pref-tochigi", "hub")
    }

    def topic(topic_id, region="tochigi", code=None):
        pack = next(p for p in packs if p.name == region)
        return topic_name(catalog, topic_id, region, prefecture_code=pack.prefecture_code, municipality_code=code)

    hub_writes = [
        topic("alerts.municipality", code="09201"),
        topic("alerts.municipality", code="09202"),
        topic("readings.raw"),
        topic("alerts.public"),
        topic("alerts.municipality", "kanagawa", "14101"),
        topic("alerts.municipality", "kanagawa", "14104"),
    ]

    async def seed():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for name in hub_writes:
                await producer.send_and_wait(name, f"hello {name}".encode())
        finally:
            await producer.stop()

    asyncio.run(seed())
    yield {
        "policy": policy,
        "before": before,
        "after": after,
        "passwords": passwords,
        "topic": topic,
        "catalog": catalog,
        "packs": packs,
        "prefix": prefix,
    }
    for name in passwords:
        asyncio.run(revoke_credential(kafka_bootstrap, name))


def _client(listener, user, password) -> dict:
    bootstrap, ca_file = listener
    return dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_context=client_ssl_context(ca_file),
    )


async def _read(listener, user, password, topic, group=None) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group or f"{user}.test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **_client(listener, user, password),
    )
    try:
        await consumer.start()
        batches = await consumer.getmany(timeout_ms=8000)
        return [m.value for messages in batches.values() for m in messages]
    finally:
        await consumer.stop()


async def _write(listener, user, password, topic) -> None:
    producer = AIOKafkaProducer(**_client(listener, user, password))
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"forged alert")
    finally:
        await producer.stop()


def test_apply_is_idempotent_and_plan_after_apply_shows_no_changes(kafka_bootstrap, secured):
    assert secured["before"].changes and not secured["after"].changes
    again = asyncio.run(plan_access(kafka_bootstrap, secured["policy"]))
    assert not again.changes and again.add == () and again.remove == ()


def test_a_municipality_reads_its_own_alerts_and_nothing_else(kafka_clients_listener, secured):
    pw, topic = secured["passwords"]["muni-09201"], secured["topic"]
    own = topic("alerts.municipality", code="09201")
    assert asyncio.run(_read(kafka_clients_listener, "muni-09201", pw, own)) == [f"hello {own}".encode()]
    for forbidden in (topic("alerts.municipality", code="09202"), topic("readings.raw"), topic("alerts")):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_read(kafka_clients_listener, "muni-09201", pw, forbidden))
    with pytest.raises(DENIED):
        asyncio.run(_read(kafka_clients_listener, "muni-09201", pw, own, group="someone-elses-group"))
    for target in (own, topic("alerts"), topic("alerts.public")):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_write(kafka_clients_listener, "muni-09201", pw, target))


def test_a_wrong_password_is_refused(kafka_clients_listener, secured):
    with pytest.raises(KafkaConnectionError):
        asyncio.run(
            _read(
                kafka_clients_listener,
                "muni-09201",
                "not-the-password",
                secured["topic"]("alerts.municipality", code="09201"),
            )
        )


def test_yokohama_reads_its_wards_the_public_reads_only_public_the_prefecture_reads_all(
    kafka_clients_listener, secured
):
    topic, pw = secured["topic"], secured["passwords"]
    for ward in ("14101", "14104"):
        name = topic("alerts.municipality", "kanagawa", ward)
        assert asyncio.run(_read(kafka_clients_listener, "muni-14100", pw["muni-14100"], name)) == [
            f"hello {name}".encode()
        ]
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(
            _read(kafka_clients_listener, "muni-14100", pw["muni-14100"], topic("alerts.municipality", code="09201"))
        )
    public = topic("alerts.public")
    assert asyncio.run(_read(kafka_clients_listener, "public", pw["public"], public)) == [f"hello {public}".encode()]
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_read(kafka_clients_listener, "public", pw["public"], topic("alerts.municipality", code="09201")))
    for name in (topic("alerts.municipality", code="09202"), topic("readings.raw")):
        assert asyncio.run(_read(kafka_clients_listener, "pref-tochigi", pw["pref-tochigi"], name))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_write(kafka_clients_listener, "pref-tochigi", pw["pref-tochigi"], topic("alerts")))
    asyncio.run(_write(kafka_clients_listener, "hub", pw["hub"], topic("alerts")))  # the hub alone writes


def test_rotated_and_revoked_credentials_stop_working(kafka_bootstrap, kafka_clients_listener, secured):
    policy, topic = secured["policy"], secured["topic"]
    own = topic("alerts.municipality", code="09201")
    old = secured["passwords"]["muni-09201"]
    new = asyncio.run(issue_credential(kafka_bootstrap, policy.principal("muni-09201")))
    secured["passwords"]["muni-09201"] = new
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_read(kafka_clients_listener, "muni-09201", old, own))
    assert asyncio.run(_read(kafka_clients_listener, "muni-09201", new, own))
    assert asyncio.run(revoke_credential(kafka_bootstrap, "muni-09201"))
    with pytest.raises(KafkaConnectionError):
        asyncio.run(_read(kafka_clients_listener, "muni-09201", new, own))
    secured["passwords"]["muni-09201"] = asyncio.run(issue_credential(kafka_bootstrap, policy.principal("muni-09201")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_atom_feed_serves_each_principal_its_cap_messages_behind_the_same_credentials(
    kafka_bootstrap, kafka_clients_listener, secured, project_root
):
    tochigi = next(p for p in secured["packs"] if p.name == "tochigi")
    store = default_store()
    records = [
        r
        for r in read_amedas(
            project_root / CSV,
            since_ms=parse_jst("2023-09-04", option="--from"),
            until_ms=parse_jst("2023-09-09", option="--to"),
        )
        if r["station_id"] in tochigi.stations
    ]
    payloads = AvroCodec(store, READING).encode_many(records)
    result = Pipeline(tochigi, HubTopics.for_region(secured["catalog"], tochigi), store).process(
        [InMessage("raw", 0, i, None, p) for i, p in enumerate(payloads)], lambda s: StationState()
    )
    alerts_topic = secured["topic"]("alerts")
    codec = AvroCodec(store, ALERT)
    pw = secured["passwords"]

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        for out in result.alerts:
            await producer.send(alerts_topic, codec.encode(out.record), key=out.record["alert_id"].encode())
        await producer.flush()
        await producer.stop()
        current = CurrentAlerts()
        ready = asyncio.Event()
        follower = asyncio.create_task(follow_alerts(kafka_bootstrap, [alerts_topic], current, store, ready))
        await asyncio.wait_for(ready.wait(), 60)
        checker = CredentialChecker(*kafka_clients_listener, cache_s=0)
        runner = web.AppRunner(build_app(current, secured["policy"], checker, sender_names={}, zone_polygons={}))
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:

                async def get(path, user=None, password=None):
                    headers = (
                        {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
                        if user
                        else {}
                    )
                    async with http.get(base + path, headers=headers) as response:
                        return response.status, await response.read()

                assert (await get("/feeds/municipality/09201.atom"))[0] == 401
                assert (await get("/feeds/municipality/09201.atom", "muni-09201", "wrong"))[0] == 401
                assert (await get("/feeds/municipality/09202.atom", "muni-09201", pw["muni-09201"]))[0] == 403
                assert (await get("/feeds/prefecture/tochigi.atom", "muni-09201", pw["muni-09201"]))[0] == 403
                status, body = await get("/feeds/municipality/09201.atom", "muni-09201", pw["muni-09201"])
                assert status == 200
                links = [
                    e.attrib["href"] for e in ET.fromstring(body).iterfind(f".//{{{ATOM_NS}}}entry/{{{ATOM_NS}}}link")
                ]
                assert links, "Utsunomiya had alerts in the heavy rain of 2023-09-04"
                for link in links:
                    status, document = await get(link.removeprefix(base), "muni-09201", pw["muni-09201"])
                    assert status == 200 and cap_validation_errors(document) == []
                    codes = [
                        g.findtext(f"{{{cap.CAP_NS}}}value")
                        for g in ET.fromstring(document).iterfind(f".//{{{cap.CAP_NS}}}geocode")
                    ]
                    assert "09201" in codes
                status, body = await get("/feeds/prefecture/tochigi.atom", "pref-tochigi", pw["pref-tochigi"])
                prefecture_entries = ET.fromstring(body).findall(f"{{{ATOM_NS}}}entry")
                assert status == 200 and len(prefecture_entries) > len(links)
                other = next(a.record for a in result.alerts if "09201" not in a.record["municipality_codes"])
                status, _ = await get(
                    f"/cap/{other['alert_id']}.{other['sequence']}.xml", "muni-09201", pw["muni-09201"]
                )
                assert status == 404  # another municipality's message is not served to Utsunomiya
                assert await revoke_credential(kafka_bootstrap, "muni-09201")
                assert (await get("/feeds/municipality/09201.atom", "muni-09201", pw["muni-09201"]))[0] == 401
        finally:
            await runner.cleanup()
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    asyncio.run(scenario())
    pw["muni-09201"] = asyncio.run(issue_credential(kafka_bootstrap, secured["policy"].principal("muni-09201")))
