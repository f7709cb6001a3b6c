"""Avro single-object-encoded readings survive a trip through a real topic."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.kernel.topics import RegionTopics, expand
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog


async def test_readings_produced_as_avro_are_consumed_and_decoded(kafka_bootstrap, unique):
    specs = expand(load_catalog(default_catalog_path()), [RegionTopics(f"a{unique}", "09", ("09201",))])
    await apply_topics(kafka_bootstrap, specs)
    topic = f"bosai.a{unique}.readings.raw"
    codec = AvroCodec(default_store(), READING)
    readings = [
        {
            "station_id": "41277",
            "sensor_kind": "RAIN_GAUGE",
            "observed_at": 1693807200000 + i * 3_600_000,
            "location": None,
            "measurements": [{"quantity": "precipitation_1h", "value": float(i), "unit": "mm"}],
            "quality": "OK",
            "source": "test",
            "produced_at": None,
        }
        for i in range(20)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for payload in codec.encode_many(readings):
            await producer.send(topic, payload, key=b"41277")
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g{unique}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received = []
    try:
        while len(received) < len(readings):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no messages within 5 s"
            for messages in batch.values():
                received.extend(codec.decode(m.value) for m in messages)
    finally:
        await consumer.stop()

    assert received == readings  # one key -> one partition -> order kept
