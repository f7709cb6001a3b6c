"""`bosai bridge orion`: the hub's alerts and readings out to each configured Orion (NGSI-v2), by consumer group.

Modelled on the webhook sink (:mod:`streams.runtime.sink`): every Orion runs as its own task with its
own consumer group (``bosai-orion-<id>``) on the region's alerts topic (and its enriched readings when
the Orion may see readings), so a slow or dead Orion holds up only itself. Per batch the messages are
read in topic order, filtered to what the Orion's principals may see (``access_policy.visible``),
mapped to Smart Data Models entities (:mod:`streams.core.ngsi`), merged per entity (the latest state
wins, attributes of earlier messages kept), validated against the models' schemas, and sent with
``POST /v2/op/update`` (``append``) in batches, retried with exponential backoff and jitter. A batch
Orion refuses for good (400 …) is split to find the entity it refuses; that one, or every entity of a
batch that failed ``max_attempts`` times, goes to ``<prefix>.<region>.orion.deadletter`` (key = Orion
id) with the last error. Offsets are committed only after the batch is delivered or dead-lettered.
``bosai bridge orion redrive`` re-delivers the dead letters, never over something newer in the Orion.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiokafka import AIOKafkaProducer

from streams.adapters import kafka, metrics
from streams.adapters.avro import ALERT, DEAD_LETTER, ENRICHED, AvroCodec, CodecError, SchemaStore
from streams.adapters.ngsi_schemas import schema_errors
from streams.adapters.orion import OrionClient, OrionError
from streams.config.orion_bridge import BridgeConfig, OrionTarget
from streams.core import ngsi
from streams.core.region import RegionPack
from streams.core.topics import Catalog, topic_name
from streams.runtime.sink import SourceMessage

log = logging.getLogger("bosai.orion")
Progress = Callable[[str], None]
STAGE = "bridge.orion"


@dataclass(frozen=True)
class BridgeRoute:
    """Where one Orion's entities come from and where its failures go."""

    target: OrionTarget
    pack: RegionPack
    alerts_topic: str
    readings_topic: str | None  # None when the Orion sees no readings
    deadletter_topic: str

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.alerts_topic,) + ((self.readings_topic,) if self.readings_topic else ())


def routes_for(config: BridgeConfig, packs: Sequence[RegionPack], catalog: Catalog) -> list[BridgeRoute]:
    by_name = {p.name: p for p in packs}
    out = []
    for target in config.orions:
        pack = by_name[target.region]

        def name(topic_id: str, pack: RegionPack = pack) -> str:
            return topic_name(catalog, topic_id, pack.name, prefecture_code=pack.prefecture_code)

        readings = name("readings.enriched") if target.readings != ngsi.READINGS_NONE else None
        out.append(BridgeRoute(target, pack, name("alerts"), readings, name("orion.deadletter")))
    return out


@dataclass
class Pending:
    """One entity to send: the merged state of every message about it in this batch."""

    entity: dict
    version: tuple
    messages: list = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


class EntityMapper:
    """A message of the alerts or readings topic -> the entity this Orion gets (or why it gets none)."""

    def __init__(self, route: BridgeRoute, store: SchemaStore):
        self.route = route
        self.alerts = AvroCodec(store, ALERT)
        self.readings = AvroCodec(store, ENRICHED)
        pack = route.pack
        self.places = {
            s.station_id: ngsi.Place(
                pack.name, pack.prefecture_name, pack.name_of(s.municipality_code) if s.municipality_code else None
            )
            for s in pack.stations.values()
        }
        self.source_ids = {s.station_id: ngsi.observation_entity_id(pack.name, s) for s in pack.stations.values()}

    def map(self, message: object) -> Pending | Refusal | None:
        """The entity for the message; None when this Orion may not see it; a Refusal when it is bad."""
        alert = message.topic == self.route.alerts_topic
        try:
            record = (self.alerts if alert else self.readings).decode(message.value)
        except CodecError as exc:
            return Refusal("undecodable", f"not {'an alert event' if alert else 'an enriched reading'}: {exc}")
        target = self.route.target
        if alert:
            if not ngsi.orion_may_see_alert(target.principals, record):
                return None
            entity = ngsi.alert_entity(record, source_entity_id=self.source_ids.get(record.get("station_id")))
            version = ngsi.alert_version(record)
        else:
            if not ngsi.orion_may_see_reading(target.readings, target.codes, record):
                return None
            station = self.route.pack.stations.get(record["reading"]["station_id"])
            if station is None:
                return None
            entity = ngsi.observation_entity(record, station, self.places[station.station_id])
            if entity is None:
                return None
            version = (record["reading"]["observed_at"],)
        problems = schema_errors(entity)
        if problems:
            return Refusal("schema_invalid", f"{entity['id']} does not follow {entity['type']}: {'; '.join(problems)}")
        return Pending(entity, version, [message])


def _dead_letter(target: OrionTarget, message: object, reason: str, detail: str) -> dict:
    return {
        "reason": reason,
        "error_detail": detail,
        "stage": STAGE,
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "source_timestamp": message.timestamp,
        "original_key": message.key,
        "original_value": message.value,
        "failed_at": int(time.time() * 1000),
        "worker": f"{socket.gethostname()}/{os.getpid()} orion {target.id}",
    }


class OrionLoop:
    """One Orion: its consumer group, its HTTP session, its order."""

    def __init__(
        self,
        route: BridgeRoute,
        bootstrap: str,
        producer: AIOKafkaProducer,
        store: SchemaStore,
        *,
        seed: int | None = None,
    ):
        self.route, self.target = route, route.target
        self.bootstrap, self.producer = bootstrap, producer
        self.mapper = EntityMapper(route, store)
        self.dead_letters = AvroCodec(store, DEAD_LETTER)
        self.rng = random.Random(seed)
        self.sent_versions: dict[str, tuple] = {}  # what this process has delivered: never go back
        self.attributes_held: dict[tuple[str, str], bool] = {}  # (entity, removable attribute) -> in the Orion
        self.delivered = 0
        self.dead_lettered = 0
        self.superseded = 0

    # -- dead letters --------------------------------------------------------------------------------
    async def to_deadletter(self, message: object, reason: str, detail: str) -> None:
        value = self.dead_letters.encode(_dead_letter(self.target, message, reason, detail))
        await self.producer.send_and_wait(self.route.deadletter_topic, value, key=self.target.id.encode())
        self.dead_lettered += 1
        log.warning(
            "orion %s: %s/%d@%d dead-lettered: %s",
            self.target.id,
            message.topic,
            message.partition,
            message.offset,
            detail,
        )

    # -- delivery ------------------------------------------------------------------------------------
    async def send(self, client: OrionClient, entities: list[dict]) -> OrionError | None:
        """One batch update, retried with backoff; None when Orion accepted it, else the last error."""
        retry, last = self.target.retry, None
        for attempt in range(1, retry.max_attempts + 1):
            if attempt > 1:
                metrics.ORION_RETRIES.labels(self.target.id).inc()
                await asyncio.sleep(retry.delay(attempt - 1, self.rng))
            try:
                await self._remove_absent(client, entities)
                await client.append(entities)
            except OrionError as exc:
                metrics.ORION_REQUESTS.labels(self.target.id, exc.result).inc()
                last = exc
                if exc.permanent:
                    return exc
                continue
            metrics.ORION_REQUESTS.labels(self.target.id, "ok").inc()
            return None
        return last

    async def _remove_absent(self, client: OrionClient, entities: list[dict]) -> None:
        """Delete, before the update, model attributes the new state lacks and the Orion may still hold."""
        for entity in entities:
            for attribute in ngsi.absent_attributes(entity):
                if self.attributes_held.get((entity["id"], attribute), True):
                    await client.delete_attribute(entity["id"], entity["type"], attribute)
                    self.attributes_held[(entity["id"], attribute)] = False

    async def deliver(self, client: OrionClient, chunk: list[Pending]) -> None:
        error = await self.send(client, [p.entity for p in chunk])
        if error is None:
            now = time.time()
            for pending in chunk:
                self.sent_versions[pending.entity["id"]] = pending.version
                for attribute in ngsi.REMOVABLE.get(pending.entity["type"], ()):
                    self.attributes_held[(pending.entity["id"], attribute)] = attribute in pending.entity
                self.delivered += 1
                metrics.ORION_ENTITIES.labels(self.target.id, pending.entity["type"], "sent").inc()
                stamps = [m.timestamp for m in pending.messages if m.timestamp]
                if stamps:
                    metrics.ORION_LATENCY.labels(self.target.id).observe(max(0.0, now - max(stamps) / 1000))
            return
        if error.permanent and len(chunk) > 1:
            for pending in chunk:  # find the entity Orion refuses; deliver the others
                await self.deliver(client, [pending])
            return
        attempts = 1 if error.permanent else self.target.retry.max_attempts
        for pending in chunk:
            metrics.ORION_ENTITIES.labels(self.target.id, pending.entity["type"], "dead_lettered").inc()
            for message in pending.messages:
                detail = f"{attempts} attempt(s) to {self.target.url} failed for {pending.entity['id']}; last: {error}"
                await self.to_deadletter(message, "orion_delivery_failed", detail)

    def _merge(self, pending: dict[str, Pending], found: Pending) -> None:
        entity_id = found.entity["id"]
        if found.version <= self.sent_versions.get(entity_id, ()):
            self.superseded += 1
            metrics.ORION_ENTITIES.labels(self.target.id, found.entity["type"], "superseded").inc()
            return
        known = pending.get(entity_id)
        if known is None:
            pending[entity_id] = found
        elif found.version >= known.version:
            # an alert keeps what earlier messages of its episode said (validFrom); an observation is
            # wholly the latest reading
            known.entity = {**known.entity, **found.entity} if found.entity["type"] == ngsi.ALERT else found.entity
            known.version = found.version
            known.messages += found.messages
        else:
            known.messages += found.messages

    async def handle(self, client: OrionClient, messages: Sequence[object]) -> None:
        """Map, merge and send one batch of messages; afterwards each is delivered or dead-lettered."""
        pending: dict[str, Pending] = {}
        for message in messages:
            found = self.mapper.map(message)
            if isinstance(found, Refusal):
                await self.to_deadletter(message, found.reason, found.detail)
            elif found is None:
                kind = ngsi.ALERT if message.topic == self.route.alerts_topic else "observation"
                metrics.ORION_ENTITIES.labels(self.target.id, kind, "not_visible").inc()
            else:
                self._merge(pending, found)
        items = list(pending.values())
        for start in range(0, len(items), self.target.batch_size):
            await self.deliver(client, items[start : start + self.target.batch_size])

    async def _handle_unless_stopped(
        self, client: OrionClient, messages: Sequence[object], stop: asyncio.Event
    ) -> bool:
        """Handle a batch, abandoning it (False: uncommitted, it comes again) if stop is set first."""
        if stop.is_set():
            return False
        handled = asyncio.ensure_future(self.handle(client, messages))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({handled, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if handled in done:
            handled.result()
            return True
        handled.cancel()
        await asyncio.gather(handled, return_exceptions=True)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        async with (
            kafka.started_consumer(
                self.bootstrap,
                *self.route.topics,
                group_id=f"bosai-orion-{self.target.id}",
                max_poll_interval_ms=3_600_000,
            ) as consumer,
            aiohttp.ClientSession() as session,
        ):
            client = OrionClient(session, self.target)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                messages = [m for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for m in batches[tp]]
                if messages and await self._handle_unless_stopped(client, messages, stop):
                    await consumer.commit({tp: items[-1].offset + 1 for tp, items in batches.items()})
                lag = 0
                for tp in consumer.assignment():
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        lag += max(0, highwater - await consumer.position(tp))
                metrics.ORION_LAG.labels(self.target.id).set(lag)


async def run_bridge(
    routes: Sequence[BridgeRoute],
    bootstrap: str,
    store: SchemaStore,
    stop: asyncio.Event,
    progress: Progress = lambda _m: None,
) -> list[OrionLoop]:
    """Run every Orion's loop until stop is set; a failing loop is restarted, the others go on."""
    producer = kafka.producer(bootstrap, linger_ms=0)
    await producer.start()
    loops = [OrionLoop(route, bootstrap, producer, store) for route in routes]
    for route in routes:
        metrics.ORION_LAG.labels(route.target.id).set(0)
        for result in ("ok", "http_4xx", "http_5xx", "timeout", "connection"):
            metrics.ORION_REQUESTS.labels(route.target.id, result)

    async def supervised(loop: OrionLoop) -> None:
        while not stop.is_set():
            try:
                await loop.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one Orion's trouble (e.g. a broker hiccup) stays its own
                log.exception("orion %s stopped: %s; restarting in 5 s", loop.target.id, exc)
                await asyncio.sleep(5)

    progress(
        f"bridge: {len(loops)} Orion(s): "
        + ", ".join(
            f"{r.target.id} ({r.target.service}{r.target.service_path}, readings {r.target.readings})" for r in routes
        )
    )
    try:
        await asyncio.gather(*(supervised(loop) for loop in loops))
    finally:
        await producer.stop()
    return loops


def _current_version(entity_type: str, current: dict) -> tuple:
    """The version of what the Orion holds now (keyValues), comparable with Pending.version."""
    try:
        if entity_type == ngsi.ALERT:
            return (int(current["data"]["sequence"]), ngsi.parse_iso_ms(current["dateIssued"]))
        return (ngsi.parse_iso_ms(current["dateObserved"]),)
    except (KeyError, TypeError, ValueError):
        return ()


async def redrive(
    route: BridgeRoute, bootstrap: str, store: SchemaStore, progress: Progress = lambda _m: None
) -> tuple[int, int, int]:
    """Re-deliver this Orion's dead letters present now: (delivered, superseded, dead-lettered again).

    Its own consumer group on the dead-letter topic, so each dead letter is redriven once. Before
    sending, the Orion's current entity is read: what it holds already newer (a later alert message,
    a later reading) is left alone, so a redrive never brings back a cleared alert or an old level.
    """
    codec = AvroCodec(store, DEAD_LETTER)
    key = route.target.id.encode()
    async with (
        kafka.started_producer(bootstrap, linger_ms=0) as producer,
        kafka.started_consumer(bootstrap, group_id=f"bosai-orion-redrive-{route.target.id}") as consumer,
        aiohttp.ClientSession() as session,
    ):
        loop = OrionLoop(route, bootstrap, producer, store)
        client = OrionClient(session, route.target)
        partitions = [
            kafka.TopicPartition(route.deadletter_topic, p)
            for p in await kafka.partitions_of(consumer, route.deadletter_topic) or [0]
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        seen = 0
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < ends[tp] and message.key == key:
                        seen += 1
                        await _redrive_one(loop, client, SourceMessage.of(codec.decode(message.value)))
                    await consumer.commit({tp: message.offset + 1})
    progress(
        f"redrive {route.target.id}: {seen} dead letter(s): {loop.delivered} delivered, "
        f"{loop.superseded} already superseded in the Orion, {loop.dead_lettered} dead-lettered again"
    )
    return loop.delivered, loop.superseded, loop.dead_lettered


async def _redrive_one(loop: OrionLoop, client: OrionClient, message: SourceMessage) -> None:
    found = loop.mapper.map(message)
    if isinstance(found, Refusal):
        await loop.to_deadletter(message, found.reason, found.detail)
        return
    if found is None:
        return
    try:
        current = await client.entity(found.entity["id"], found.entity["type"])
    except OrionError as exc:
        await loop.to_deadletter(message, "orion_delivery_failed", f"redrive could not read the current entity: {exc}")
        return
    if current is not None and _current_version(found.entity["type"], current) >= found.version:
        loop.superseded += 1
        metrics.ORION_ENTITIES.labels(loop.target.id, found.entity["type"], "superseded").inc()
        return
    await loop.deliver(client, [found])
