"""`bosai bridge orion`: the hub's alerts and readings out to each configured Orion (NGSI-v2), by consumer group.

Modelled on the webhook sink (:mod:`streams.delivery.sink`): every Orion runs as its own task with its
own consumer group (``bosai-orion-<id>``) on the region's alerts topic (and its enriched readings when
the Orion may see readings), so a slow or dead Orion holds up only itself. Per batch the messages are
read in topic order, filtered to what the Orion's principals may see (``access_policy.visible``),
mapped to Smart Data Models entities (:mod:`streams.fiware.ngsi`), merged per entity (the latest state
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
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from streams.delivery.connector import Connector, DeliveryTarget, Undelivered, retrying, run_connectors
from streams.fiware import ngsi
from streams.fiware.bridge_file import BridgeConfig, OrionTarget
from streams.fiware.ngsi_schemas import schema_errors
from streams.fiware.orion import OrionClient, OrionError
from streams.kernel.dead_letters import Origin
from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, topic_name
from streams.platform import kafka, metrics
from streams.platform.avro import ALERT, ENRICHED, AvroCodec, CodecError, SchemaStore

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


# What an entity's state is newer by: an alert's (sequence, issued at), an observation's (observed at,).
Version = tuple[int, ...]


@dataclass
class Pending:
    """One entity to send: the merged state of every message about it in this batch."""

    entity: ngsi.Entity
    version: Version
    messages: list[Origin] = field(default_factory=list)


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

    def map(self, message: Origin) -> Pending | Refusal | None:
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
            entity = ngsi.alert_entity(record, source_entity_id=self.source_ids.get(record.get("station_id", "")))
            version: Version = ngsi.alert_version(record)
        else:
            if not ngsi.orion_may_see_reading(target.readings, target.codes, record):
                return None
            station = self.route.pack.stations.get(record["reading"]["station_id"])
            if station is None:
                return None
            observation = ngsi.observation_entity(record, station, self.places[station.station_id])
            if observation is None:
                return None
            entity, version = observation, (record["reading"]["observed_at"],)
        problems = schema_errors(entity)
        if problems:
            return Refusal("schema_invalid", f"{entity['id']} does not follow {entity['type']}: {'; '.join(problems)}")
        return Pending(entity, version, [message])


class OrionDelivery(DeliveryTarget):
    """One Orion as a delivery target: a batch of messages mapped, merged per entity and sent with ``append``."""

    group_prefix = "bosai-orion"
    stage = STAGE
    max_records = 500

    def __init__(self, route: BridgeRoute, store: SchemaStore, *, seed: int | None = None):
        self.route, self.target = route, route.target
        self.id = self.target.id
        self.topics, self.deadletter_topic = route.topics, route.deadletter_topic
        self.unit_size = 500
        self.mapper = EntityMapper(route, store)
        self.rng = random.Random(seed)
        self.sent_versions: dict[str, Version] = {}  # what this process has delivered: never go back
        self.attributes_held: dict[tuple[str, str], bool] = {}  # (entity, removable attribute) -> in the Orion
        self.superseded = 0
        self.entities_sent = 0  # entities Orion accepted (messages merged per entity)
        self.session: aiohttp.ClientSession | None = None
        self.client: OrionClient | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession()
        self.client = OrionClient(self.session, self.target)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.session = self.client = None

    def report_lag(self, lag: int) -> None:
        metrics.ORION_LAG.labels(self.target.id).set(lag)

    # -- delivery ------------------------------------------------------------------------------------
    async def send(self, entities: list[ngsi.Entity]) -> OrionError | None:
        """One batch update, retried with backoff; None when Orion accepted it, else the last error."""
        client = self.client
        assert client is not None, "open() first"

        async def attempt(_n: int) -> tuple[bool, bool, OrionError | None]:
            try:
                await self._remove_absent(client, entities)
                await client.append(entities)
            except OrionError as exc:
                metrics.ORION_REQUESTS.labels(self.target.id, exc.result).inc()
                return False, exc.permanent, exc
            metrics.ORION_REQUESTS.labels(self.target.id, "ok").inc()
            return True, False, None

        delivered, _, error = await retrying(
            attempt, self.target.retry, self.rng, on_retry=metrics.ORION_RETRIES.labels(self.target.id).inc
        )
        return None if delivered else error

    async def _remove_absent(self, client: OrionClient, entities: list[ngsi.Entity]) -> None:
        """Delete, before the update, model attributes the new state lacks and the Orion may still hold."""
        for entity in entities:
            for attribute in ngsi.absent_attributes(entity):
                if self.attributes_held.get((entity["id"], attribute), True):
                    await client.delete_attribute(entity["id"], entity["type"], attribute)
                    self.attributes_held[(entity["id"], attribute)] = False

    async def _deliver_chunk(self, chunk: list[Pending]) -> list[Undelivered]:
        error = await self.send([p.entity for p in chunk])
        if error is None:
            now = time.time()
            for pending in chunk:
                self.sent_versions[pending.entity["id"]] = pending.version
                for attribute in ngsi.REMOVABLE.get(pending.entity["type"], ()):
                    self.attributes_held[(pending.entity["id"], attribute)] = attribute in pending.entity
                metrics.ORION_ENTITIES.labels(self.target.id, pending.entity["type"], "sent").inc()
                self.entities_sent += 1
                stamps = [m.timestamp for m in pending.messages if m.timestamp]
                if stamps:
                    metrics.ORION_LATENCY.labels(self.target.id).observe(max(0.0, now - max(stamps) / 1000))
            return []
        if error.permanent and len(chunk) > 1:  # find the entity Orion refuses; deliver the others
            return [failed for pending in chunk for failed in await self._deliver_chunk([pending])]
        attempts = 1 if error.permanent else self.target.retry.max_attempts
        failed = []
        for pending in chunk:
            metrics.ORION_ENTITIES.labels(self.target.id, pending.entity["type"], "dead_lettered").inc()
            detail = f"{attempts} attempt(s) to {self.target.url} failed for {pending.entity['id']}; last: {error}"
            failed += [Undelivered(message, "orion_delivery_failed", detail) for message in pending.messages]
        return failed

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

    async def deliver(self, messages: Sequence[Origin]) -> list[Undelivered]:
        """Map, merge and send one batch of messages; returns those that failed for good."""
        pending: dict[str, Pending] = {}
        failed: list[Undelivered] = []
        for message in messages:
            found = self.mapper.map(message)
            if isinstance(found, Refusal):
                failed.append(Undelivered(message, found.reason, found.detail))
            elif found is None:
                kind = ngsi.ALERT if message.topic == self.route.alerts_topic else "observation"
                metrics.ORION_ENTITIES.labels(self.target.id, kind, "not_visible").inc()
            else:
                self._merge(pending, found)
        items = list(pending.values())
        for start in range(0, len(items), self.target.batch_size):
            failed += await self._deliver_chunk(items[start : start + self.target.batch_size])
        return failed

    async def redeliver(self, message: Origin) -> list[Undelivered]:
        """A dead letter again, never over something newer the Orion holds (a later alert message or reading)."""
        found = self.mapper.map(message)
        if isinstance(found, Refusal):
            return [Undelivered(message, found.reason, found.detail)]
        if found is None:
            return []
        assert self.client is not None, "open() first"
        try:
            current = await self.client.entity(found.entity["id"], found.entity["type"])
        except OrionError as exc:
            detail = f"redrive could not read the current entity: {exc}"
            return [Undelivered(message, "orion_delivery_failed", detail)]
        if current is not None and _current_version(found.entity["type"], current) >= found.version:
            self.superseded += 1
            metrics.ORION_ENTITIES.labels(self.target.id, found.entity["type"], "superseded").inc()
            return []
        return await self._deliver_chunk([found])


async def run_bridge(
    routes: Sequence[BridgeRoute],
    bootstrap: str,
    store: SchemaStore,
    stop: asyncio.Event,
    progress: Progress = lambda _m: None,
) -> list[Connector]:
    """Run every Orion's connector until stop is set (each supervised on its own)."""
    for route in routes:
        metrics.ORION_LAG.labels(route.target.id).set(0)
        for result in ("ok", "http_4xx", "http_5xx", "timeout", "connection"):
            metrics.ORION_REQUESTS.labels(route.target.id, result)
    progress(
        f"bridge: {len(routes)} Orion(s): "
        + ", ".join(
            f"{r.target.id} ({r.target.service}{r.target.service_path}, readings {r.target.readings})" for r in routes
        )
    )
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        connectors = [Connector(OrionDelivery(route, store), bootstrap, producer, store) for route in routes]
        await run_connectors(connectors, stop)
    return connectors


def _current_version(entity_type: str, current: ngsi.Entity) -> Version:
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
    target = OrionDelivery(route, store)
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        delivered, again = await Connector(target, bootstrap, producer, store).redrive()
    delivered -= target.superseded
    progress(
        f"redrive {route.target.id}: {delivered + target.superseded + again} dead letter(s): {delivered} delivered, "
        f"{target.superseded} already superseded in the Orion, {again} dead-lettered again"
    )
    return delivered, target.superseded, again
