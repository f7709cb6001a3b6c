"""Each prefecture sees only its own, on the real broker: the access file generated over two neighbouring packs
built from national data (福岡 and 佐賀, as `bosai region init-all` builds them), applied, and read through the
authenticated listener with their principals' credentials."""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from streams.kernel.topics import expand, topic_name
from streams.packs.national import init_all
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.kafka_admin import apply_access, apply_topics, issue_credential, revoke_credential
from streams.platform.tls import client_ssl_context
from streams.platform.topic_catalog import default_catalog_path, load_catalog

READERS = ("pref-saga", "muni-41201", "muni-40130")  # 佐賀県, 佐賀市, 福岡市 (a designated city: its wards)


@pytest.fixture(scope="module")
def national(kafka_bootstrap, project_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("national")
    (base / "n03").mkdir()
    for code in ("40", "41"):
        name = f"N03-21_{code}.geojson.gz"
        (base / "n03" / name).write_bytes((project_root / "data/n03/japan" / name).read_bytes())
    init_all(base / "n03", None, base / "packs")
    packs = [load_pack(base / "packs" / name) for name in ("fukuoka", "saga")]
    prefix = f"nat{socket.gethostname()[:4].lower()}{id(tmp_path_factory) % 10_000}"
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    access_file = base / "access.yaml"
    access_file.write_text(render(generate(packs, catalog)), encoding="utf-8")
    policy = load_access(access_file)

    def topic(topic_id, region, code=None):
        pack = next(p for p in packs if p.name == region)
        return topic_name(catalog, topic_id, region, prefecture_code=pack.prefecture_code, municipality_code=code)

    seeded = [
        topic("alerts", "saga"),
        topic("alerts", "fukuoka"),
        topic("alerts.municipality", "saga", "41201"),
        topic("alerts.municipality", "fukuoka", "40131"),  # 福岡市東区
        topic("alerts.municipality", "fukuoka", "40202"),  # 大牟田市
    ]
    specs = [s for s in expand(catalog, [p.topics_input() for p in packs]) if s.name in seeded]
    asyncio.run(apply_topics(kafka_bootstrap, specs))
    asyncio.run(apply_access(kafka_bootstrap, policy))
    passwords = {name: asyncio.run(issue_credential(kafka_bootstrap, policy.principal(name))) for name in READERS}

    async def seed():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for name in seeded:
                await producer.send_and_wait(name, f"hello {name}".encode())
        finally:
            await producer.stop()

    asyncio.run(seed())
    yield {"topic": topic, "passwords": passwords}
    for name in passwords:
        asyncio.run(revoke_credential(kafka_bootstrap, name))


async def _read(listener, user, password, topic) -> list[bytes]:
    bootstrap, ca_file = listener
    consumer = AIOKafkaConsumer(
        topic,
        group_id=f"{user}.test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_context=client_ssl_context(ca_file),
    )
    try:
        await consumer.start()
        batches = await consumer.getmany(timeout_ms=8000)
        return [m.value for messages in batches.values() for m in messages]
    finally:
        await consumer.stop()


def test_each_prefecture_and_municipality_reads_its_own_and_not_the_neighbours(kafka_clients_listener, national):
    topic, pw = national["topic"], national["passwords"]
    allowed = [
        ("pref-saga", topic("alerts", "saga")),
        ("muni-41201", topic("alerts.municipality", "saga", "41201")),
        ("muni-40130", topic("alerts.municipality", "fukuoka", "40131")),
    ]
    for user, name in allowed:
        assert asyncio.run(_read(kafka_clients_listener, user, pw[user], name)) == [f"hello {name}".encode()]
    denied = [
        ("pref-saga", topic("alerts", "fukuoka")),
        ("pref-saga", topic("alerts.municipality", "fukuoka", "40131")),
        ("muni-41201", topic("alerts.municipality", "fukuoka", "40202")),
        ("muni-40130", topic("alerts.municipality", "saga", "41201")),
        ("muni-40130", topic("alerts.municipality", "fukuoka", "40202")),
    ]
    for user, name in denied:
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_read(kafka_clients_listener, user, pw[user], name))
