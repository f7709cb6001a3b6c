"""`bosai sink`: deliver each municipality's alert events to its subscribers' webhooks.

Every subscription runs as its own task with its own consumer group (``bosai-sink-<id>``) on the
municipality's alerts topic(s), so a slow or dead endpoint holds up only itself — never the hub's
pipeline (a separate process) and never another subscriber. Per subscriber, messages are delivered in
topic order: one at a time, retried with exponential backoff and jitter; the offset is committed only
after the delivery succeeded or the message was written to the sink dead-letter topic
(``<prefix>.<region>.sink.deadletter``, key = subscription id). A crash in between repeats a delivery,
which the receiver de-duplicates by alert id and sequence. ``bosai sink redrive`` re-delivers the
dead-lettered messages of a subscription (its own consumer group on the dead-letter topic).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from streams.adapters import kafka, metrics
from streams.adapters.avro import ALERT, DEAD_LETTER, AvroCodec, CodecError, SchemaStore
from streams.core.redact import redact, url_origin
from streams.core.region import RegionPack
from streams.core.topics import Catalog, HubTopics, topic_name
from streams.core.webhooks import PERMANENT_STATUSES, Subscription, headers, json_body

log = logging.getLogger("bosai.sink")
Progress = Callable[[str], None]
RenderCap = Callable[[dict], bytes]


@dataclass(frozen=True)
class Route:
    """Where a subscription reads from and dead-letters to."""

    subscription: Subscription
    topics: tuple[str, ...]
    deadletter_topic: str


def routes_for(subscriptions: Sequence[Subscription], packs: Sequence[RegionPack], catalog: Catalog) -> list[Route]:
    """Each subscription's topics: its municipality's (a designated city: every ward's), and the dead letters."""
    by_name = {pack.name: pack for pack in packs}
    out = []
    for sub in subscriptions:
        pack = by_name[sub.region]
        topics = HubTopics.for_region(catalog, pack)
        out.append(
            Route(
                sub,
                tuple(topics.read_by(pack, sub.municipality_code)),
                topic_name(catalog, "sink.deadletter", pack.name, prefecture_code=pack.prefecture_code),
            )
        )
    return out


def body_for(sub: Subscription, alert: dict, render_cap: RenderCap) -> bytes:
    return render_cap(alert) if sub.format == "cap" else json_body(alert)


async def deliver(
    session: aiohttp.ClientSession, sub: Subscription, alert: dict, body: bytes, *, rng: random.Random
) -> tuple[bool, int, str]:
    """POST until a 2xx, a permanent refusal, or max_attempts; returns (delivered, attempts, last error)."""
    last_error = ""
    for attempt in range(1, sub.retry.max_attempts + 1):
        if attempt > 1:
            metrics.WEBHOOK_RETRIES.labels(sub.id).inc()
            await asyncio.sleep(sub.retry.delay(attempt - 1, rng))
        try:
            async with session.post(
                sub.url,
                data=body,
                headers=headers(sub, alert, body, int(time.time())),
                timeout=aiohttp.ClientTimeout(total=sub.retry.timeout_s),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    metrics.WEBHOOK_ATTEMPTS.labels(sub.id, "ok").inc()
                    return True, attempt, ""
                result = "http_4xx" if response.status < 500 else "http_5xx"
                last_error = f"HTTP {response.status} {response.reason or ''}".strip()
                if response.status in PERMANENT_STATUSES:
                    metrics.WEBHOOK_ATTEMPTS.labels(sub.id, result).inc()
                    return False, attempt, last_error + " (permanent: not retried)"
        except TimeoutError:
            result, last_error = "timeout", f"no answer within {sub.retry.timeout_s:g}s"
        except aiohttp.ClientError as exc:  # its text may quote the URL, which may carry a secret
            text = f"{type(exc).__name__}: {exc}".replace(sub.url, url_origin(sub.url))
            result, last_error = "connection", redact(text, [sub.secret])
        metrics.WEBHOOK_ATTEMPTS.labels(sub.id, result).inc()
    return False, sub.retry.max_attempts, last_error


def _dead_letter(
    sub: Subscription, message: ConsumerRecord | SourceMessage, detail: str, reason: str = "sink_delivery_failed"
) -> dict:
    return {
        "reason": reason,
        "error_detail": detail,
        "stage": "sink.webhook",
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "source_timestamp": message.timestamp,
        "original_key": message.key,
        "original_value": message.value,
        "failed_at": int(time.time() * 1000),
        "worker": f"{socket.gethostname()}/{os.getpid()} {sub.id}",
    }


class SubscriberLoop:
    """One subscription: its consumer group, its HTTP session, its order."""

    def __init__(
        self,
        route: Route,
        bootstrap: str,
        producer: AIOKafkaProducer,
        store: SchemaStore,
        render_cap: RenderCap,
        *,
        seed: int | None = None,
    ):
        self.route = route
        self.sub = route.subscription
        self.bootstrap = bootstrap
        self.producer = producer
        self.alerts = AvroCodec(store, ALERT)
        self.dead_letters = AvroCodec(store, DEAD_LETTER)
        self.render_cap = render_cap
        self.rng = random.Random(seed)
        self.delivered = 0
        self.dead_lettered = 0

    async def _to_deadletter(
        self, message: ConsumerRecord | SourceMessage, detail: str, reason: str = "sink_delivery_failed"
    ) -> None:
        value = self.dead_letters.encode(_dead_letter(self.sub, message, detail, reason))
        await self.producer.send_and_wait(self.route.deadletter_topic, value, key=self.sub.id.encode())
        self.dead_lettered += 1
        metrics.WEBHOOK_DELIVERIES.labels(self.sub.id, "dead_lettered").inc()
        log.warning(
            "subscription %s: %s/%d@%d dead-lettered: %s",
            self.sub.id,
            message.topic,
            message.partition,
            message.offset,
            detail,
        )

    async def handle(self, session: aiohttp.ClientSession, message: ConsumerRecord | SourceMessage) -> None:
        try:
            alert = self.alerts.decode(message.value)
        except CodecError as exc:
            await self._to_deadletter(message, f"not an alert event: {exc}", reason="undecodable")
            return
        delivered, attempts, error = await deliver(
            session, self.sub, alert, body_for(self.sub, alert, self.render_cap), rng=self.rng
        )
        if delivered:
            self.delivered += 1
            metrics.WEBHOOK_DELIVERIES.labels(self.sub.id, "delivered").inc()
            if message.timestamp:
                metrics.WEBHOOK_LATENCY.labels(self.sub.id).observe(max(0.0, time.time() - message.timestamp / 1000))
        else:
            where = url_origin(self.sub.url)  # the subscription id names it; its path or query may be a secret
            await self._to_deadletter(message, f"{attempts} attempt(s) to {where} failed; last: {error}")

    async def _handle_unless_stopped(
        self, session: aiohttp.ClientSession, message: ConsumerRecord | SourceMessage, stop: asyncio.Event
    ) -> bool:
        """Handle one message, abandoning it (False) if stop is set first: a retrying delivery can take minutes."""
        if stop.is_set():
            return False
        handled = asyncio.ensure_future(self.handle(session, message))
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
                self.bootstrap, *self.route.topics, group_id=f"bosai-sink-{self.sub.id}", max_poll_interval_ms=3_600_000
            ) as consumer,
            aiohttp.ClientSession() as session,
        ):
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for tp, messages in batches.items():
                    for message in messages:
                        if not await self._handle_unless_stopped(session, message, stop):
                            break  # stopping: this message stays uncommitted and comes again
                        await consumer.commit({tp: message.offset + 1})
                lag = 0
                for tp in consumer.assignment():
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        lag += max(0, highwater - await consumer.position(tp))
                metrics.WEBHOOK_LAG.labels(self.sub.id).set(lag)


async def run_sink(
    routes: Sequence[Route],
    bootstrap: str,
    store: SchemaStore,
    render_cap: RenderCap,
    stop: asyncio.Event,
    progress: Progress = lambda _m: None,
) -> list[SubscriberLoop]:
    """Run every subscription until stop is set; a failing subscriber task is restarted, the others go on."""
    producer = kafka.producer(bootstrap, linger_ms=0)
    await producer.start()
    loops = [SubscriberLoop(route, bootstrap, producer, store, render_cap) for route in routes]
    for route in routes:
        metrics.WEBHOOK_LAG.labels(route.subscription.id).set(0)
        for outcome in ("delivered", "dead_lettered"):
            metrics.WEBHOOK_DELIVERIES.labels(route.subscription.id, outcome)

    async def supervised(loop: SubscriberLoop) -> None:
        while not stop.is_set():
            try:
                await loop.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one subscriber's trouble (e.g. a broker hiccup) stays its own
                log.exception("subscription %s stopped: %s; restarting in 5 s", loop.sub.id, exc)
                await asyncio.sleep(5)

    progress(
        f"sink: {len(loops)} subscription(s): "
        + ", ".join(
            f"{r.subscription.id} ({r.subscription.municipality_code}, {r.subscription.format})" for r in routes
        )
    )
    try:
        await asyncio.gather(*(supervised(loop) for loop in loops))
    finally:
        await producer.stop()
    return loops


async def redrive(
    route: Route, bootstrap: str, store: SchemaStore, render_cap: RenderCap, progress: Progress = lambda _m: None
) -> tuple[int, int]:
    """Re-deliver the subscription's dead-lettered messages present now; returns (delivered, dead-lettered again).

    Uses its own consumer group on the dead-letter topic, so each dead letter is redriven once; those
    that fail again are written back (and can be redriven later).
    """
    sub = route.subscription
    consumer = kafka.consumer(bootstrap, group_id=f"bosai-sink-redrive-{sub.id}")
    await consumer.start()
    producer = kafka.producer(bootstrap, linger_ms=0)
    await producer.start()
    loop = SubscriberLoop(route, bootstrap, producer, store, render_cap)
    codec = AvroCodec(store, DEAD_LETTER)
    try:
        partitions = [
            kafka.TopicPartition(route.deadletter_topic, p)
            for p in await kafka.partitions_of(consumer, route.deadletter_topic) or [0]
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        seen = 0
        async with aiohttp.ClientSession() as session:

            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in partitions])

            while await behind():
                batches = await consumer.getmany(*partitions, timeout_ms=1000)
                for tp, messages in batches.items():
                    for message in messages:
                        if message.offset >= ends[tp]:
                            continue
                        if message.key == sub.id.encode():
                            seen += 1
                            await loop.handle(session, SourceMessage.of(codec.decode(message.value)))
                        await consumer.commit({tp: message.offset + 1})
        progress(
            f"redrive {sub.id}: {seen} dead letter(s): {loop.delivered} delivered, "
            f"{loop.dead_lettered} dead-lettered again"
        )
        return loop.delivered, loop.dead_lettered
    finally:
        await producer.stop()
        await consumer.stop()


@dataclass(frozen=True)
class SourceMessage:
    """A dead-lettered message as it was first read: what a redrive delivers (and may dead-letter again)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, dead_letter: dict) -> SourceMessage:
        return cls(
            dead_letter["source_topic"],
            dead_letter["source_partition"],
            dead_letter["source_offset"],
            dead_letter["source_timestamp"],
            dead_letter["original_key"],
            dead_letter["original_value"],
        )
