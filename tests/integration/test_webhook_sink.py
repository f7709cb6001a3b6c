"""Webhook sink on the real broker, against a local receiver that refuses or stalls a share of requests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from streams.delivery.sink import redrive, routes_for, run_sink
from streams.delivery.subscriptions import load_subscriptions
from streams.delivery.webhooks import RetryPolicy, Subscription, verify
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand, topic_name
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform.avro import ALERT, DEAD_LETTER, READING, AvroCodec, default_store
from streams.platform.kafka import end_offsets, read_range
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = Path("data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
SECRET = "test-secret-not-a-real-one"


def _bucket(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10


class Receiver:
    """A municipality's disaster system: verifies signatures, applies each (alert id, sequence) once.

    By a stable hash of the message key: 2 in 10 fail their first attempt with 503, 2 in 10 stall past
    the sink's timeout on their first attempt, 1 in 10 always fail with 500 until healed.
    """

    def __init__(self):
        self.applied: Counter = Counter()
        self.attempts: Counter = Counter()
        self.duplicates = 0
        self.bad_signatures = 0
        self.healed = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(SECRET, request.headers["X-Bosai-Timestamp"], body, request.headers["X-Bosai-Signature"]):
            self.bad_signatures += 1
            return web.Response(status=401)
        key = f"{request.headers['X-Bosai-Alert-Id']}#{request.headers['X-Bosai-Sequence']}"
        assert json.loads(body)["alert_id"] == request.headers["X-Bosai-Alert-Id"]
        self.attempts[key] += 1
        bucket = _bucket(key)
        if bucket == 0 and not self.healed:
            return web.Response(status=500)
        if bucket in (1, 2) and self.attempts[key] == 1:
            return web.Response(status=503)
        if bucket in (3, 4) and self.attempts[key] == 1:
            await asyncio.sleep(1.5)
        if key in self.applied:
            self.duplicates += 1  # de-duplicated: acknowledged, not applied again
        else:
            self.applied[key] += 1
        return web.Response(status=204)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def alert_events(project_root):
    """Every alert event of the Tochigi heavy rain (2023-09-04..08), as the hub encodes them."""
    tochigi = load_pack(project_root / "regions" / "tochigi")
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
    catalog = load_catalog(default_catalog_path())
    result = Pipeline(tochigi, HubTopics.for_region(catalog, tochigi), store).process(
        [InMessage("raw", 0, i, None, p) for i, p in enumerate(AvroCodec(store, READING).encode_many(records))],
        lambda s: StationState(),
    )
    return tochigi, [a.record for a in result.alerts]


def test_every_alert_is_delivered_once_failures_past_the_limit_wait_in_the_dead_letter_topic_until_redriven(
    kafka_bootstrap, alert_events, unique
):
    tochigi, alerts = alert_events
    store = default_store()
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"sink{unique}")
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [tochigi.topics_input()])))
    topic = topic_name(catalog, "alerts.municipality", "tochigi", municipality_code="09201")
    keys = [f"{a['alert_id']}#{a['sequence']}" for a in alerts]
    doomed = {k for k in keys if _bucket(k) == 0}
    assert len(alerts) > 30 and doomed and len(doomed) < len(keys)

    receiver = Receiver()
    port, dead_port = _free_port(), _free_port()
    healthy = Subscription(
        id=f"utsunomiya-{unique}",
        region="tochigi",
        municipality_code="09201",
        url=f"http://127.0.0.1:{port}/bosai",
        secret=SECRET,
        format="json",
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2, timeout_s=0.5),
    )
    # A subscriber whose endpoint accepts connections and never answers: it must hold up only itself.
    stalled = Subscription(
        id=f"stalled-{unique}",
        region="tochigi",
        municipality_code="09201",
        url=f"http://127.0.0.1:{dead_port}/never",
        secret=SECRET,
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.5, max_backoff_s=1, timeout_s=2),
    )
    routes = routes_for([healthy, stalled], [tochigi], catalog)
    dlq = routes[0].deadletter_topic

    async def scenario():
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        codec = AvroCodec(store, ALERT)
        for alert in alerts:
            await producer.send(topic, codec.encode(alert), key=alert["alert_id"].encode())
        await producer.flush()
        await producer.stop()

        app = web.Application()
        app.router.add_post("/bosai", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

        async def never_answer(_reader, writer):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                writer.close()

        black_hole = await asyncio.start_server(never_answer, "127.0.0.1", dead_port)

        stop = asyncio.Event()
        sink_task = asyncio.create_task(run_sink(routes, kafka_bootstrap, store, lambda a: b"", stop))
        try:
            deadline = asyncio.get_running_loop().time() + 120
            while len(receiver.applied) < len(keys) - len(doomed):
                assert asyncio.get_running_loop().time() < deadline, "healthy subscriber did not finish"
                assert not sink_task.done(), sink_task
                await asyncio.sleep(0.2)
            dead_letters = []
            while len(dead_letters) < len(doomed):
                assert asyncio.get_running_loop().time() < deadline, "dead letters did not arrive"
                ends = await end_offsets(kafka_bootstrap, [dlq])
                dead_letters = [m for m in await read_range(kafka_bootstrap, {}, ends) if m.key == healthy.id.encode()]
                await asyncio.sleep(0.2)
            stop.set()
            loops = await asyncio.wait_for(sink_task, 30)
        finally:
            stop.set()
            black_hole.close()
        healthy_loop, stalled_loop = loops
        assert healthy_loop.delivered == len(keys) - len(doomed)
        assert healthy_loop.dead_lettered == len(doomed)
        assert stalled_loop.delivered == 0 and stalled_loop.dead_lettered < len(keys), (
            "the stalled subscriber should still be far behind while the healthy one is done"
        )

        decoded = [AvroCodec(store, DEAD_LETTER).decode(m.value) for m in dead_letters]
        in_dlq = {f"{a['alert_id']}#{a['sequence']}" for a in (codec.decode(d["original_value"]) for d in decoded)}
        assert in_dlq == doomed
        assert all(d["reason"] == "sink_delivery_failed" and "HTTP 500" in d["error_detail"] for d in decoded)
        assert not (set(receiver.applied) & doomed), "dead-lettered messages were not applied"

        receiver.healed = True
        delivered, again = await redrive(routes[0], kafka_bootstrap, store, lambda a: b"")
        assert (delivered, again) == (len(doomed), 0)
        assert await redrive(routes[0], kafka_bootstrap, store, lambda a: b"") == (0, 0)  # each once
        await runner.cleanup()

    asyncio.run(scenario())
    assert set(receiver.applied) == set(keys), "every alert event delivered"
    assert all(count == 1 for count in receiver.applied.values()), "none applied twice"
    assert receiver.bad_signatures == 0
    retried = [k for k in keys if _bucket(k) in (1, 2, 3, 4)]
    assert all(receiver.attempts[k] >= 2 for k in retried), "refused and stalled requests were retried"


def test_the_subscriptions_file_names_secrets_never_holds_them(tmp_path, project_root):
    tochigi = load_pack(project_root / "regions" / "tochigi")
    good = tmp_path / "subs.yaml"
    good.write_text(
        "version: 1\nsubscriptions:\n  - id: utsunomiya\n    municipality: 宇都宮市\n"
        "    url: https://bousai.example.jp/hook\n    secret_env: UTSUNOMIYA_SECRET\n    format: cap\n"
    )
    [sub] = load_subscriptions(good, [tochigi], environ={"UTSUNOMIYA_SECRET": "s3cr3t"})
    assert (sub.municipality_code, sub.format, sub.secret) == ("09201", "cap", "s3cr3t")
    assert "s3cr3t" not in repr(sub)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsubscriptions:\n  - id: x\n    municipality: '09201'\n    url: https://a/b\n    secret: inline\n"
    )
    with pytest.raises(Exception, match="secrets do not belong"):
        load_subscriptions(bad, [tochigi], environ={})
    with pytest.raises(Exception, match="UTSUNOMIYA_SECRET"):
        load_subscriptions(good, [tochigi], environ={})
