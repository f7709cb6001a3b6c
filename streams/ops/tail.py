"""Following a topic as an operator: decode every message (any of the hub's schemas) into a line or JSON.

Messages carry their schema's fingerprint (single-object encoding) or its registry id (the Confluent wire
format of the topics clients read), so one decoder reads every hub topic; a municipality's IT staff use this
to check their subscription.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack
from typing import Any

from streams.kernel.errors import ClusterUnavailable
from streams.kernel.messages import AvroRecord
from streams.kernel.times import jst
from streams.platform import kafka
from streams.platform.avro import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, AvroCodec, AvroSchema, CodecError, SchemaStore
from streams.platform.kafka_errors import Kind, Outage, classify
from streams.platform.kafka_retry import client_quiet, patience_from_env

log = logging.getLogger("bosai.tail")


class AnyDecoder:
    """Decodes messages of any schema in the store, in either framing."""

    def __init__(self, store: SchemaStore):
        self.store = store
        self._codecs: dict[str, AvroCodec] = {}

    def _schema(self, payload: bytes) -> AvroSchema | None:
        if payload[:2] == SINGLE_OBJECT_MAGIC and len(payload) >= 10:
            return self.store.by_fingerprint(payload[2:10])
        if payload[:1] == CONFLUENT_MAGIC and len(payload) >= 5:
            return self.store.by_registry_id(int.from_bytes(payload[1:5], "big"))
        raise CodecError("bad_magic", "neither Avro single-object encoding nor the Confluent wire format")

    def decode(self, payload: bytes | None) -> tuple[str, AvroRecord]:
        if payload is None:
            raise CodecError("truncated", "message has no value (null)")
        schema = self._schema(payload)
        if schema is None:
            raise CodecError("unknown_schema", f"no known schema for the header {payload[:10].hex()}")
        codec = self._codecs.setdefault(schema.name, AvroCodec(self.store, schema.name))
        return schema.name.rsplit(".", 1)[-1], codec.decode(payload)


def _time(ms: int | None) -> str:
    return jst(ms).strftime("%Y-%m-%dT%H:%M%z") if ms is not None else "-"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def as_json(topic: str, partition: int, offset: int, kind: str, record: AvroRecord) -> str:
    return json.dumps(
        {"topic": topic, "partition": partition, "offset": offset, "schema": kind, "value": _jsonable(record)},
        ensure_ascii=False,
    )


def as_line(kind: str, record: AvroRecord) -> str:
    """One readable line per message."""
    if kind == "Alert":
        status = "" if record.get("status", "Actual") == "Actual" else f"[{record['status']}] "
        return (
            f"{_time(record['observed_at'])} {status}{record['msg_type']:<6} {record['rule']:<10} "
            f"{record['level']:<10} "
            f"{record['severity']:<8} {record['sharing_level'].lower():<9} {record['headline']}  "
            f"[{record['alert_id']}/{record['sequence']} → {','.join(record['municipality_codes'])}]"
        )
    if kind == "SensorReading":
        values = " ".join(f"{m['quantity']}={m['value']}{m['unit']}" for m in record["measurements"])
        return f"{_time(record['observed_at'])} {record['station_id']} {record['quality']} {values}"
    if kind == "EnrichedReading":
        reading = record["reading"]
        values = " ".join(f"{m['quantity']}={m['value']}{m['unit']}" for m in reading["measurements"])
        zones = ",".join(z["zone_id"] for z in record["hazard_zones"]) or "-"
        return (
            f"{_time(reading['observed_at'])} {reading['station_id']} {record['municipality_code']} "
            f"({record['geofence_method']}) zones={zones} {values}"
        )
    if kind == "OfficialReport":
        return (
            f"{_time(record['fetched_at'])} {record['entry_title'] or '-'} {record['entry_id']} "
            f"({len(record['xml']):,} bytes of XML, {record['source']})"
        )
    if kind == "DeadLetter":
        return (
            f"{_time(record['failed_at'])} {record['reason']:<16} {record['source_topic']}"
            f"[{record['source_partition']}]@{record['source_offset']}: {record['error_detail']}"
        )
    return json.dumps(_jsonable(record), ensure_ascii=False)


async def follow(
    bootstrap: str,
    topics: Sequence[str],
    *,
    from_beginning: bool,
    idle_timeout_s: float | None,
    max_messages: int | None,
    consumer_config: dict[str, Any] | None = None,  # aiokafka consumer options
) -> AsyncIterator[kafka.Record]:
    """Yield messages of the topics; stop after max_messages, or idle_timeout_s without a message.

    Through a cluster outage it keeps following: a retriable error reopens the consumer where it was (each
    partition's next offset), within the patience (:mod:`streams.platform.kafka_retry`); one notice when the
    outage begins and one when it ends."""
    positions: dict[kafka.TopicPartition, int] = {}  # the next offset of each partition, once known
    outage = Outage("following " + ", ".join(topics), bootstrap, patience_from_env(), random.Random())
    seen = 0
    with ExitStack() as quiet:  # aiokafka's own connection errors, while an outage lasts
        while True:
            try:
                async with kafka.started_consumer(bootstrap, **(consumer_config or {})) as consumer:
                    partitions = []
                    for topic in topics:
                        found = await kafka.partitions_of(consumer, topic)
                        if not found:
                            raise LookupError(
                                f"topic {topic} does not exist (is the catalog applied? `bosai topics apply`)"
                            )
                        partitions += [kafka.TopicPartition(topic, p) for p in found]
                    consumer.assign(partitions)
                    fresh = [tp for tp in partitions if tp not in positions]
                    if fresh and from_beginning:
                        await consumer.seek_to_beginning(*fresh)
                    elif fresh:
                        await consumer.seek_to_end(*fresh)
                    for tp in fresh:
                        positions[tp] = await consumer.position(tp)
                    for tp in partitions:
                        consumer.seek(tp, positions[tp])
                    if (ended := outage.recovered(asyncio.get_running_loop().time())) is not None:
                        log.warning("%s", ended)
                        outage = Outage(outage.what, bootstrap, outage.patience, outage.rng)
                        quiet.close()
                    idle_since = asyncio.get_running_loop().time()
                    while True:
                        batch = await consumer.getmany(timeout_ms=500)
                        now = asyncio.get_running_loop().time()
                        if not batch:
                            if idle_timeout_s is not None and now - idle_since >= idle_timeout_s:
                                return
                            continue
                        idle_since = now
                        for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
                            for message in batch[tp]:
                                positions[tp] = message.offset + 1
                                yield message
                                seen += 1
                                if max_messages is not None and seen >= max_messages:
                                    return
            except Exception as exc:
                if classify(exc) is not Kind.RETRIABLE:
                    raise
                step = outage.failed(exc, asyncio.get_running_loop().time())
                if step.give_up:
                    quiet.close()
                    raise ClusterUnavailable(outage.gave_up(asyncio.get_running_loop().time())) from None
                if step.notice:
                    log.warning("%s", step.notice)
                    quiet.enter_context(client_quiet())
                await asyncio.sleep(step.delay_s)


async def tail(
    bootstrap: str,
    topics: Sequence[str],
    store: SchemaStore,
    emit: Callable[[str], None],
    *,
    as_json_lines: bool,
    from_beginning: bool,
    idle_timeout_s: float | None,
    max_messages: int | None,
) -> int:
    decoder = AnyDecoder(store)
    count = 0
    async for message in follow(
        bootstrap, topics, from_beginning=from_beginning, idle_timeout_s=idle_timeout_s, max_messages=max_messages
    ):
        count += 1
        try:
            kind, record = decoder.decode(message.value)
        except CodecError as exc:
            emit(f"{message.topic}[{message.partition}]@{message.offset}: undecodable ({exc})")
            continue
        emit(
            as_json(message.topic, message.partition, message.offset, kind, record)
            if as_json_lines
            else as_line(kind, record)
        )
    return count
