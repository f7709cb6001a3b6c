"""Bad input and crashes on the real broker: nothing crashes the hub, nothing is lost or changed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer

from streams.hub.processes import WorkerProcess
from streams.hub.replay import collect_alerts, wait_drained
from streams.hub.worker import WorkerSettings, app_id_for
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform.avro import ALERT, DEAD_LETTER, ENRICHED, READING, AvroCodec, default_store
from streams.platform.kafka import end_offsets, read_range
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


def _namespace(bootstrap, pack, prefix):
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    asyncio.run(apply_topics(bootstrap, expand(catalog, [pack.topics_input()])))
    return HubTopics.for_region(catalog, pack)


async def _produce(bootstrap, topic, items):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _drain(bootstrap, prefix, pack, topics, worker, timeout_s=120):
    ends = asyncio.run(end_offsets(bootstrap, [topics.raw]))
    assert asyncio.run(
        wait_drained(
            bootstrap, app_id_for(prefix, pack.name), ends, timeout_s=timeout_s, progress=print, workers=[worker]
        )
    )


def test_each_kind_of_bad_input_is_dead_lettered_and_the_good_readings_around_it_are_processed(
    kafka_bootstrap, tochigi, unique, tmp_path
):
    prefix = f"bad{unique}"
    topics = _namespace(kafka_bootstrap, tochigi, prefix)
    store = default_store()
    codec = AvroCodec(store, READING)

    def reading(station_id="41277", value=3.0, unit="mm", location=None, hour=0, measurements=None):
        return codec.encode(
            {
                "station_id": station_id,
                "sensor_kind": "RAIN_GAUGE",
                "observed_at": parse_jst("2023-09-04T10:00", option="t") + hour * 3_600_000,
                "location": location,
                "measurements": measurements
                if measurements is not None
                else [{"quantity": "precipitation_1h", "value": value, "unit": unit}],
                "quality": "OK",
                "source": "test",
                "produced_at": None,
            }
        )

    bad = {
        "undecodable": b"garbage\xff\x00",  # no Avro single-object header, no Confluent magic byte
        "unknown_schema": b"\xc3\x01" + bytes(8) + b"\x02",
        "missing_field": reading(station_id=""),
        "impossible_value": reading(value=-1.0),
        "outside_japan": reading(location={"lat": 51.5, "lon": -0.12, "alt_m": None}),
        "unknown_station": reading(station_id="00000"),
    }
    items = []
    for hour, (_reason, payload) in enumerate(bad.items()):
        items.append((b"41277", reading(hour=hour)))
        items.append((b"41277", payload))
    items.append((b"41277", reading(hour=len(bad), value=60.0)))
    asyncio.run(_produce(kafka_bootstrap, topics.raw, items))
    worker = WorkerProcess(tochigi.path, prefix, kafka_bootstrap, tmp_path / "worker.log")
    worker.start()
    try:
        _drain(kafka_bootstrap, prefix, tochigi, topics, worker)
        assert worker.alive()
    finally:
        worker.stop()

    ends = asyncio.run(end_offsets(kafka_bootstrap, [topics.deadletter, topics.enriched, topics.alerts]))
    by_topic = {}
    for message in asyncio.run(read_range(kafka_bootstrap, {}, ends)):
        by_topic.setdefault(message.topic, []).append(message)
    dead = [AvroCodec(store, DEAD_LETTER).decode(m.value) for m in by_topic[topics.deadletter]]
    assert sorted(d["reason"] for d in dead) == sorted(bad)
    assert {d["reason"]: d["original_value"] for d in dead} == bad
    enriched = [AvroCodec(store, ENRICHED).decode(m.value) for m in by_topic[topics.enriched]]
    assert len(enriched) == len(bad) + 1
    alerts = [AvroCodec(store, ALERT).decode(m.value) for m in by_topic[topics.alerts]]
    assert [(a["station_id"], a["level"], a["msg_type"]) for a in alerts] == [("41277", "very_heavy", "ALERT")]


def test_a_worker_killed_mid_replay_and_restarted_produces_every_output_exactly_once(
    kafka_bootstrap, tochigi, project_root, unique, tmp_path
):
    prefix = f"crash{unique}"
    topics = _namespace(kafka_bootstrap, tochigi, prefix)
    store = default_store()
    records = [
        r
        for r in read_amedas(
            project_root / CSV,
            since_ms=parse_jst("2023-08-01", option="--from"),
            until_ms=parse_jst("2023-10-01", option="--to"),
        )
        if r["station_id"] in tochigi.stations
    ]
    payloads = AvroCodec(store, READING).encode_many(records)
    asyncio.run(
        _produce(
            kafka_bootstrap,
            topics.raw,
            [(r["station_id"].encode(), p) for r, p in zip(records, payloads, strict=False)],
        )
    )
    raw_ends = asyncio.run(end_offsets(kafka_bootstrap, [topics.raw]))
    total = sum(raw_ends.values())
    group = app_id_for(prefix, tochigi.name)

    first = WorkerProcess(
        tochigi.path,
        prefix,
        kafka_bootstrap,
        tmp_path / "first.log",
        settings=WorkerSettings(pack_dir="", batch_max=25),
    )
    first.start()
    try:
        committed_at_kill = asyncio.run(_wait_for_progress(kafka_bootstrap, group, raw_ends, first))
    finally:
        first.kill()
    assert 0 < committed_at_kill < total, "the worker should be killed mid-way"

    second = WorkerProcess(
        tochigi.path,
        prefix,
        kafka_bootstrap,
        tmp_path / "second.log",
        settings=WorkerSettings(pack_dir="", loglevel="info"),
    )
    second.start()
    try:
        _drain(kafka_bootstrap, prefix, tochigi, topics, second, timeout_s=180)
    finally:
        second.stop()

    ends = asyncio.run(end_offsets(kafka_bootstrap, topics.alert_topics()))
    emitted = asyncio.run(collect_alerts(kafka_bootstrap, store, {}, ends))  # raises on changed content
    reference = Pipeline(tochigi, topics, store).process(
        [InMessage(topics.raw, 0, i, None, p) for i, p in enumerate(payloads)], lambda sid: StationState()
    )
    expected = {(a.record["alert_id"], a.record["sequence"]) for a in reference.alerts}
    got = {(a["alert_id"], a["sequence"]) for a in emitted}
    assert got == expected, f"missing {sorted(expected - got)[:5]}, unexpected {sorted(got - expected)[:5]}"
    assert len(expected) > 50
    # exactly once, as a read_committed consumer sees it: no alert message and no enriched reading twice
    delivered = asyncio.run(
        read_range(
            kafka_bootstrap, {}, asyncio.run(end_offsets(kafka_bootstrap, [*topics.alert_topics(), topics.enriched]))
        )
    )
    copies = Counter((m.topic, m.key, m.value) for m in delivered)
    assert [k for k, n in copies.items() if n > 1] == []
    assert sum(1 for m in delivered if m.topic == topics.enriched) == total


async def _wait_for_progress(bootstrap, group, raw_ends, worker) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert worker.alive(), worker.log_tail()
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except Exception:
                committed = {}
            done = sum(committed[tp].offset for tp in raw_ends if tp in committed)
            if done > 0:
                return done
            await asyncio.sleep(0.02)
        raise AssertionError("the worker committed nothing within 120 s")
    finally:
        await admin.close()
