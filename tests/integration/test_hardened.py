"""Hardened mode (`bosai broker up --hardened`) on a real broker: PLAINTEXT off, the hub's processes as
User:hub with only the grants of topics/access.yaml, admin commands by certificate.

The subset the hub depends on runs here, end to end, through the same code as in the default mode: a replay
exactly-once through a worker, a worker killed and restarted, `bosai tail` of a municipality topic, the feed
reading alerts, `bosai topics apply` and `bosai access apply` as the admin; and the doors stay shut to a
PLAINTEXT client, a client without a credential and another principal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from streams.delivery.atom import ATOM_NS
from streams.hub.processes import WorkerProcess
from streams.hub.replay import ReplaySettings, collect_alerts, run_replay, wait_drained
from streams.hub.worker import WorkerSettings, app_id_for
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand, topic_name
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.access_file import default_access_path, load_access
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.kafka_admin import delete_acls, describe_acls, issue_credential, revoke_credential
from streams.platform.kafka_security import client_security
from streams.platform.tls import client_ssl_context
from streams.platform.topic_catalog import default_catalog_path, load_catalog

pytestmark = pytest.mark.hardened

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


def _reference(pack, topics, records):
    """The alerts the pure core gives for these readings: what the broker must deliver, once each."""
    store = default_store()
    payloads = AvroCodec(store, READING).encode_many(records)
    result = Pipeline(pack, topics, store).process(
        [InMessage(topics.raw, 0, i, None, p) for i, p in enumerate(payloads)], lambda _sid: StationState()
    )
    return {(a.record["alert_id"], a.record["sequence"]) for a in result.alerts}, payloads


def _readings(root, pack, since, until):
    return [
        r
        for r in read_amedas(
            root / CSV, since_ms=parse_jst(since, option="--from"), until_ms=parse_jst(until, option="--to")
        )
        if r["station_id"] in pack.stations
    ]


def _exactly_once(bootstrap, topic_names) -> list:
    """Every message of the topics as a read_committed consumer sees them; fails on any copy."""
    delivered = asyncio.run(kafka.read_range(bootstrap, {}, asyncio.run(kafka.end_offsets(bootstrap, topic_names))))
    copies = Counter((m.topic, m.key, m.value) for m in delivered)
    assert [k for k, n in copies.items() if n > 1] == []
    return delivered


@pytest.fixture(scope="module")
def replayed(hardened_kafka, project_root, tochigi, tmp_path_factory):
    """The heavy rain of 2023-09-04..06 replayed through a worker on the hardened broker, as the hub."""
    prefix = f"replay-h{os.getpid() % 100_000}"
    catalog = load_catalog(default_catalog_path())
    settings = ReplaySettings(
        [tochigi],
        catalog,
        csv_path=project_root / CSV,
        bootstrap=hardened_kafka.bootstrap,
        prefix=prefix,
        since_ms=parse_jst("2023-09-04", option="--from"),
        until_ms=parse_jst("2023-09-07", option="--to"),
        speed=None,
        timeout_s=120,
        log_dir=tmp_path_factory.mktemp("logs"),
        keep_topics=True,
    )
    result = run_replay(settings, default_store(), print)
    topics = HubTopics.for_region(replace(catalog, prefix=prefix), tochigi)
    return {"result": result, "prefix": prefix, "topics": topics}


def test_the_hub_connects_as_user_hub_through_a_0600_client_config_and_no_listener_is_plaintext(hardened_kafka):
    security = client_security(hardened_kafka.bootstrap)
    config = Path(hardened_kafka.hub_config)
    server_properties = Path(hardened_kafka.nodes[0].home, "server.properties").read_text()

    assert (security.protocol, security.username, security.mechanism) == ("SASL_SSL", "hub", "SCRAM-SHA-512")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "password" not in repr(security) and security.password not in repr(security)
    listener_lines = [line for line in server_properties.splitlines() if line.startswith(("listener", "inter.broker"))]
    assert not any("PLAINTEXT" in line for line in listener_lines), listener_lines
    assert "listener.name.internal.ssl.client.auth=required" in server_properties
    assert "listener.name.controller.ssl.client.auth=required" in server_properties


def test_a_replay_runs_exactly_once_through_a_worker_with_only_the_hubs_grants(
    replayed, hardened_kafka, tochigi, project_root
):
    result, topics = replayed["result"], replayed["topics"]
    expected, _ = _reference(tochigi, topics, _readings(project_root, tochigi, "2023-09-04", "2023-09-07"))

    assert result.drained and result.dead_letters == 0
    assert {(a["alert_id"], a["sequence"]) for a in result.alerts} == expected
    assert len(expected) > 20
    _exactly_once(hardened_kafka.bootstrap, [*topics.alert_topics(), topics.enriched])


def test_tail_follows_a_municipality_topic_as_the_hub(replayed, hardened_kafka, project_root):
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=hardened_kafka.bootstrap)
    env.pop("BOSAI_KAFKA_CONFIG", None)
    tail = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "tail",
            "--region",
            str(project_root / "regions/tochigi"),
            "--topic-prefix",
            replayed["prefix"],
            "--municipality",
            "宇都宮市",
            "--from-beginning",
            "--json",
            "--timeout",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )

    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    assert records and {r["topic"] for r in records} == {f"{replayed['prefix']}.tochigi.alerts.09201"}
    assert any(r["value"]["level"] == "very_heavy" for r in records)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, user: str, password: str) -> tuple[int, bytes]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def test_the_feed_reads_the_alerts_as_the_hub_and_serves_them_to_their_municipality(
    replayed, hardened_kafka, project_root, tmp_path
):
    policy = load_access(default_access_path())
    password = asyncio.run(issue_credential(hardened_kafka.admin_bootstrap, policy.principal("muni-09201")))
    port = _free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=hardened_kafka.bootstrap,
        BOSAI_CLIENTS_BOOTSTRAP=hardened_kafka.clients_bootstrap,
        BOSAI_CA_FILE=hardened_kafka.ca_file,
    )
    log = open(tmp_path / "feed.log", "wb")  # noqa: SIM115 - closed below, after the process
    feed = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "feed", "--region", str(project_root / "regions/tochigi")]
        + ["--topic-prefix", replayed["prefix"], "--port", str(port), "--auth-cache", "0"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/feeds/municipality/09201.atom"
    try:
        entries, deadline = [], time.monotonic() + 60
        while not entries and time.monotonic() < deadline:
            assert feed.poll() is None, (tmp_path / "feed.log").read_text()
            status, body = _get(url, "muni-09201", password)
            entries = ET.fromstring(body).findall(f"{{{ATOM_NS}}}entry") if status == 200 else []
            time.sleep(0.5)
        wrong, _ = _get(url, "muni-09201", "not-the-password")
    finally:
        feed.terminate()
        feed.wait(timeout=20)
        log.close()
        asyncio.run(revoke_credential(hardened_kafka.admin_bootstrap, "muni-09201"))

    assert entries, (tmp_path / "feed.log").read_text()
    assert wrong == 401


def _admin_env(hardened_kafka) -> dict:
    """docker-compose's way: the admin listener and the admin certificate through BOSAI_KAFKA_* variables."""
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=hardened_kafka.admin_bootstrap,
        BOSAI_KAFKA_SECURITY_PROTOCOL="SSL",
        BOSAI_KAFKA_CA_FILE=hardened_kafka.ca_file,
        BOSAI_KAFKA_CERT_FILE=str(Path(hardened_kafka.home) / "tls" / "admin.pem"),
    )
    env.pop("BOSAI_KAFKA_CONFIG", None)
    return env


def _bosai(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def _transaction(bootstrap: str, transactional_id: str, topic: str) -> None:
    producer = kafka.transactional_producer(bootstrap, transactional_id)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"x", key=b"k")
    finally:
        await producer.stop()


def test_admin_commands_apply_topics_and_acls_and_the_hub_needs_its_transactional_id_grant(replayed, hardened_kafka):
    env = _admin_env(hardened_kafka)
    topics_applied = _bosai("topics", "apply", env=env)
    assert topics_applied.returncode == 0, topics_applied.stderr
    assert "the cluster now matches the catalog" in topics_applied.stdout
    topic, tx_id = replayed["topics"].deadletter, f"{replayed['prefix']}-hardened-test.0"
    asyncio.run(_transaction(hardened_kafka.bootstrap, tx_id, topic))  # granted: replay- transactional ids

    async def revoke_tx_grants() -> int:
        async with kafka.started_admin(hardened_kafka.admin_bootstrap) as client:
            doomed = [b for b in await describe_acls(client) if b.resource_type == "transactional_id"]
            await delete_acls(client, doomed)
            return len(doomed)

    removed = asyncio.run(revoke_tx_grants())
    try:
        with pytest.raises(TransactionalIdAuthorizationFailed):
            deadline = time.monotonic() + 15  # ACLs reach the authorizer through the metadata log
            while time.monotonic() < deadline:
                asyncio.run(_transaction(hardened_kafka.bootstrap, tx_id, topic))
                time.sleep(0.2)
    finally:
        access_applied = _bosai("access", "apply", env=env)
    planned = _bosai("access", "plan", env=env)

    assert access_applied.returncode == 0, access_applied.stderr
    assert f"applied: {removed} added, 0 removed" in access_applied.stdout
    assert "no changes" in planned.stdout, planned.stdout + planned.stderr
    asyncio.run(_transaction(hardened_kafka.bootstrap, tx_id, topic))


def test_a_worker_killed_mid_stream_and_restarted_produces_every_output_exactly_once(
    hardened_kafka, tochigi, project_root, tmp_path
):
    bootstrap, prefix = hardened_kafka.bootstrap, f"replay-k{os.getpid() % 100_000}"
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    from streams.platform.kafka_admin import apply_topics

    asyncio.run(apply_topics(bootstrap, expand(catalog, [tochigi.topics_input()])))  # the hub's own namespace
    topics = HubTopics.for_region(catalog, tochigi)
    records = _readings(project_root, tochigi, "2023-09-01", "2023-09-16")
    expected, payloads = _reference(tochigi, topics, records)

    async def produce() -> None:
        async with kafka.started_producer(bootstrap) as producer:
            keyed = zip(records, payloads, strict=True)
            sent = [await producer.send(topics.raw, p, key=r["station_id"].encode()) for r, p in keyed]
            await asyncio.gather(*sent)

    asyncio.run(produce())
    raw_ends = asyncio.run(kafka.end_offsets(bootstrap, [topics.raw]))
    group = app_id_for(prefix, tochigi.name)
    first = WorkerProcess(
        tochigi.path, prefix, bootstrap, tmp_path / "first.log", settings=WorkerSettings(pack_dir="", batch_max=25)
    )
    first.start()
    try:
        deadline = time.monotonic() + 90
        while not (committed_at_kill := sum(asyncio.run(kafka.committed_offsets(bootstrap, group)).values())):
            assert first.alive() and time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
    finally:
        first.kill()
    assert 0 < committed_at_kill < sum(raw_ends.values()), "the worker should be killed mid-stream"
    second = WorkerProcess(tochigi.path, prefix, bootstrap, tmp_path / "second.log")
    second.start()
    try:
        assert asyncio.run(wait_drained(bootstrap, group, raw_ends, timeout_s=120, progress=print, workers=[second])), (
            second.log_tail()
        )
    finally:
        second.stop()

    emitted = asyncio.run(
        collect_alerts(bootstrap, default_store(), {}, asyncio.run(kafka.end_offsets(bootstrap, topics.alert_topics())))
    )
    assert {(a["alert_id"], a["sequence"]) for a in emitted} == expected
    delivered = _exactly_once(bootstrap, [*topics.alert_topics(), topics.enriched])
    assert sum(1 for m in delivered if m.topic == topics.enriched) == len(records)


async def _refused(host: str, port: int, **security) -> bool:
    client = AIOKafkaAdminClient(bootstrap_servers=f"{host}:{port}", request_timeout_ms=5000, **security)
    try:
        await asyncio.wait_for(client.start(), 15)
        await asyncio.wait_for(client.describe_cluster(), 15)
    except (TimeoutError, KafkaError, OSError):
        return True
    finally:
        await client.close()
    return False


def test_plaintext_is_refused_on_every_port_and_the_internal_listeners_want_a_certificate(hardened_kafka):
    node = hardened_kafka.nodes[0]
    ports = {"hub": node.port, "clients": node.clients_port, "internal": node.internal_port}
    ports["controller"] = node.controller_port
    tls_alone = {"security_protocol": "SSL", "ssl_context": client_ssl_context(hardened_kafka.ca_file)}

    for name, port in ports.items():
        assert asyncio.run(_refused("127.0.0.1", port)), f"the {name} listener answered a PLAINTEXT client"
        assert asyncio.run(_refused("127.0.0.1", port, **tls_alone)), f"the {name} listener answered TLS alone"
    # and the same probe gets in with the right identity: the hub's credential, the admin's certificate
    assert not asyncio.run(_refused("127.0.0.1", node.port, **kafka.security_options(hardened_kafka.bootstrap)))
    admin = kafka.security_options(hardened_kafka.admin_bootstrap)
    assert not asyncio.run(_refused("127.0.0.1", node.internal_port, **admin))


async def _read(bootstrap: str, topic: str, user: str, password: str, ca_file: str) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{user}.probe",
        auto_offset_reset="earliest",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_context=client_ssl_context(ca_file),
        request_timeout_ms=10_000,
    )
    try:
        await consumer.start()
        return [m for batch in (await consumer.getmany(timeout_ms=5000)).values() for m in batch]
    finally:
        await consumer.stop()


def test_without_the_hubs_credential_no_one_reads_the_hubs_internal_topics(replayed, hardened_kafka, tochigi):
    """The prefecture, the most trusted principal after the hub, reads neither the hub's state nor its dead
    letters, nor anything of a replay; a wrong password gets nowhere, on the hub's listener or the clients'."""
    from streams.platform.kafka_admin import apply_topics

    live = load_catalog(default_catalog_path())
    asyncio.run(apply_topics(hardened_kafka.admin_bootstrap, expand(live, [tochigi.topics_input()])))
    ca = hardened_kafka.ca_file
    internal = [
        topic_name(live, "state.readings", "tochigi", prefecture_code=tochigi.prefecture_code),
        topic_name(live, "state.official", "tochigi", prefecture_code=tochigi.prefecture_code),
        topic_name(live, "deadletter", "tochigi", prefecture_code=tochigi.prefecture_code),
        replayed["topics"].raw,
        replayed["topics"].alerts,
    ]
    policy = load_access(default_access_path())
    password = asyncio.run(issue_credential(hardened_kafka.admin_bootstrap, policy.principal("pref-tochigi")))
    try:
        for bootstrap in (hardened_kafka.bootstrap, hardened_kafka.clients_bootstrap):
            with pytest.raises(KafkaConnectionError):
                asyncio.run(_read(bootstrap, internal[0], "hub", "not-the-password", ca))
            for topic in internal:  # another principal, on either listener: its ACLs name bosai.* only
                with pytest.raises(TopicAuthorizationFailedError):
                    asyncio.run(_read(bootstrap, topic, "pref-tochigi", password, ca))
    finally:
        asyncio.run(revoke_credential(hardened_kafka.admin_bootstrap, "pref-tochigi"))
