"""A municipality reads and decodes its alerts with tools no one here wrote, from another address, with nothing but
the config `bosai access issue` writes: confluent-kafka's Consumer + SchemaRegistryClient + AvroDeserializer.

The session broker advertises its CLIENTS listener as 127.0.0.2 (a second loopback address, standing for the
hub's public name) with a certificate for it, and its schema registry (`bosai registry serve`, started by
`EmbeddedBroker.up`) is reached there too. The alert topic is written by the hub's own pipeline from the real
heavy rain of 2023-09-04 in Tochigi, in the Confluent wire format the catalog gives the client topics.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

from streams.kernel.messages import OutRecord
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.avro import ALERT, AvroCodec, default_store
from streams.platform.settings import ENV_BOOTSTRAP, ENV_CA_FILE, ENV_CLIENTS_BOOTSTRAP
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.conftest import CLIENTS_HOST
from tests.support.web_data import heavy_rain

UTSUNOMIYA = "bosai.tochigi.alerts.09201"


def _bosai(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def _write(bootstrap: str, records: list[OutRecord]) -> None:
    producer = kafka.producer(bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send(record.topic, record.value, key=record.key)
        await producer.flush()
    finally:
        await producer.stop()


def _consume(config: dict, topic: str, start: int, count: int) -> tuple[list, list]:
    """``count`` messages of the (one-partition) topic from offset ``start`` on, and the brokers' advertised hosts."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**config["kafka"], "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, start)])  # other tests share the topic: only what this one wrote
    messages = []
    try:
        for _ in range(90):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                messages.append(message)
            if len(messages) >= count:
                break
        brokers = [b.host for b in consumer.list_topics(topic, timeout=10).brokers.values()]
    finally:
        consumer.close()
    return messages, brokers


def test_a_municipality_decodes_its_alert_topic_with_confluent_kafka_and_the_issued_config_alone(
    kafka_bootstrap, kafka_clients_listener, schema_registry_url, project_root, tmp_path
):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    clients, ca_file = kafka_clients_listener
    env = dict(
        os.environ, **{ENV_BOOTSTRAP: kafka_bootstrap, ENV_CLIENTS_BOOTSTRAP: clients, ENV_CA_FILE: str(ca_file)}
    )
    env["BOSAI_CLIENTS_SCHEMA_REGISTRY_URL"] = schema_registry_url
    for args in (("topics", "apply"), ("access", "apply")):
        done = _bosai(*args, env=env)
        assert done.returncode == 0, done.stderr
    pack = load_pack(project_root / "regions" / "tochigi")
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    records, _enriched, _alerts = heavy_rain(project_root, pack, topics, "2023-09-04T00:00", "2023-09-04T20:00")
    own = [r for r in records if r.topic == UTSUNOMIYA]
    assert own, "the heavy rain of 2023-09-04 raises alerts for 宇都宮市"
    (start,) = asyncio.run(kafka.end_offsets(kafka_bootstrap, [UTSUNOMIYA])).values()
    asyncio.run(_write(kafka_bootstrap, [r for r in records if r.topic.startswith("bosai.tochigi.alerts")]))

    issued = _bosai("access", "issue", "宇都宮市", "--format", "json", "--output", str(tmp_path / "m.json"), env=env)
    assert issued.returncode == 0, issued.stderr
    config = json.loads((tmp_path / "m.json").read_text())
    assert config["kafka"]["bootstrap.servers"].startswith(f"{CLIENTS_HOST}:"), config["kafka"]["bootstrap.servers"]
    assert "BEGIN CERTIFICATE" in config["kafka"]["ssl.ca.pem"] and "ssl.ca.location" not in config["kafka"]
    assert config["schema_registry"] == {"url": schema_registry_url} and CLIENTS_HOST in schema_registry_url

    messages, brokers = _consume(config, UTSUNOMIYA, start, len(own))
    deserialize = AvroDeserializer(SchemaRegistryClient(config["schema_registry"]))
    decoded = [deserialize(m.value(), SerializationContext(UTSUNOMIYA, MessageField.VALUE)) for m in messages]

    hub = AvroCodec(default_store(), ALERT)
    expected = [hub.decode(r.value) for r in own]
    assert set(brokers) == {CLIENTS_HOST}, "the broker advertises the public address, not its loopback one"
    assert [m.value()[0] for m in messages] == [0] * len(own), "the Confluent wire format, one copy per topic"
    assert {struct.unpack(">I", m.value()[1:5])[0] for m in messages} == {hub.schema.registry_id}
    assert [(d["alert_id"], d["sequence"], d["headline"]) for d in decoded] == [
        (e["alert_id"], e["sequence"], e["headline"]) for e in expected
    ]
    assert decoded[0]["observed_at"].timestamp() * 1000 == expected[0]["observed_at"]  # timestamp-millis → datetime
    subjects = json.loads(urllib.request.urlopen(f"{schema_registry_url}/subjects", timeout=10).read())
    assert f"{UTSUNOMIYA}-value" in subjects and "jp.bosai.hub.Alert" in subjects


def test_the_java_client_reads_the_topic_with_the_issued_properties_alone(
    kafka_bootstrap, kafka_clients_listener, schema_registry_url, project_root, tmp_path
):
    """Apache Kafka's own Java client, the properties form (CA inline as ssl.truststore.certificates, PEM),
    from 127.0.0.2."""
    from streams.platform.kafka_dist import kafka_version
    from streams.platform.settings import cache_dir

    clients, ca_file = kafka_clients_listener
    env = dict(
        os.environ, **{ENV_BOOTSTRAP: kafka_bootstrap, ENV_CLIENTS_BOOTSTRAP: clients, ENV_CA_FILE: str(ca_file)}
    )
    env["BOSAI_CLIENTS_SCHEMA_REGISTRY_URL"] = schema_registry_url
    for args in (("topics", "apply"), ("access", "apply")):
        assert _bosai(*args, env=env).returncode == 0
    pack = load_pack(project_root / "regions" / "tochigi")
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    records, _enriched, _alerts = heavy_rain(project_root, pack, topics, "2023-09-04T00:00", "2023-09-04T20:00")
    own = [r for r in records if r.topic == UTSUNOMIYA]
    (start,) = asyncio.run(kafka.end_offsets(kafka_bootstrap, [UTSUNOMIYA])).values()
    asyncio.run(_write(kafka_bootstrap, own))
    issued = _bosai("access", "issue", "宇都宮市", "--output-dir", str(tmp_path / "handover"), env=env)
    assert issued.returncode == 0, issued.stderr
    properties = (tmp_path / "handover" / "muni-09201.properties").read_text()
    assert "ssl.truststore.certificates=-----BEGIN CERTIFICATE-----\\n" in properties
    assert f"bootstrap.servers={CLIENTS_HOST}:" in properties and "ssl.truststore.location" not in properties
    assert f"schema.registry.url={schema_registry_url}" in properties

    libs = cache_dir() / f"kafka-{kafka_version()}" / "libs"
    java = subprocess.run(
        ["java", "-cp", f"{libs}/*", str(Path(__file__).parent / "java" / "ReadTopic.java"),
         str(tmp_path / "handover" / "muni-09201.properties"), UTSUNOMIYA, str(start), str(len(own))],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert java.returncode == 0, java.stderr[-3000:]
    lines = java.stdout.split()
    assert lines[1::2] == ["0"] * len(own), "every record in the Confluent wire format (first byte 0)"
