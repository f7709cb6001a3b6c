"""The one delivery connector: alerts (and readings) from Kafka to a target outside the hub, supervised.

Every delivery target — a webhook subscription, an Orion, an e-mail or chat channel — is a
:class:`DeliveryTarget` that only knows how to deliver a unit of messages (and what failed for good). The
:class:`Connector` does the rest, the same way for all of them (as quix-streams' ``BatchingSink`` does):

* its own consumer group per target (``<group prefix>-<target id>``), so a slow or dead target holds up
  only itself — never the hub's pipeline and never another target;
* messages in topic order, in units (a webhook delivers one message at a time, an Orion a batch); the
  offset is committed only after the unit was delivered or dead-lettered, so a crash repeats a delivery
  (receivers de-duplicate by alert id and sequence) and loses none;
* retries with exponential backoff and jitter inside the target (:func:`retrying`), then the dead-letter
  topic (key = target id) with the reason and the original bytes;
* stop-aware: a unit still retrying when the process is told to stop is abandoned uncommitted;
* its lag as a metric; ``redrive`` re-delivers the target's dead letters present now (its own group on the
  dead-letter topic, so each is redriven once; those failing again are dead-lettered again);
* :func:`run_connectors`: each connector supervised; one that fails (a broker going away) is restarted
  after a pause while the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.delivery.webhooks import RetryPolicy
from streams.kernel.dead_letters import Origin, dead_letter_record, origin_of
from streams.kernel.messages import AvroRecord
from streams.platform import health, kafka, metrics
from streams.platform.avro import ALERT, DEAD_LETTER, AvroCodec, CodecError, SchemaStore
from streams.platform.http_fetch import pause
from streams.platform.kafka_errors import Kind, classify, describe

log = logging.getLogger("bosai.delivery")
Progress = Callable[[str], None]
T = TypeVar("T")
MAX_REQUESTED_WAIT_S = 600.0  # a receiver's Retry-After is honoured up to this (a bogus one must not stall for days)


@dataclass(frozen=True)
class Undelivered:
    """A message a target could not deliver for good: it goes to the dead-letter topic with the reason."""

    message: Origin
    reason: str
    detail: str


class DeliveryTarget(ABC):
    """One place alerts are delivered to. Subclasses say where they read from and how to deliver a unit."""

    id: str  # the subscription's or target's id: the dead letters' key, the consumer group's suffix
    group_prefix: str  # e.g. bosai-sink, bosai-orion
    stage: str  # the dead letters' stage, e.g. sink.webhook
    topics: tuple[str, ...]
    deadletter_topic: str
    unit_size: int = 1  # messages delivered (and committed) together
    max_records: int = 200  # fetched per poll

    async def open(self) -> None:  # noqa: B027 - optional hook: clients, sessions
        """Open what deliveries need (an HTTP session …); called once per run."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close what :meth:`open` opened."""

    @abstractmethod
    async def deliver(self, messages: Sequence[Origin]) -> list[Undelivered]:
        """Deliver one unit (retrying as the target's policy says); return what failed for good."""

    async def redeliver(self, message: Origin) -> list[Undelivered]:
        """Deliver a dead-lettered message again (a target may first check it is not superseded)."""
        return await self.deliver([message])

    def report_lag(self, lag: int) -> None:  # noqa: B027 - optional hook: the target's lag metric
        """The messages of the target's topics not delivered yet."""

    def report_dead_letter(self, undelivered: Undelivered) -> None:  # noqa: B027 - optional hook
        """A message went to the dead-letter topic (the target's metric)."""


class AlertTarget(DeliveryTarget):
    """A target of alert events, one at a time (webhooks, e-mail, chat): each message is decoded as an Alert —
    one that is not is dead-lettered ``undecodable`` — and handed to :meth:`deliver_alert`."""

    unit_size = 1

    def __init__(
        self, target_id: str, topics: Sequence[str], deadletter_topic: str, store: SchemaStore, seed: int | None
    ) -> None:
        self.id = target_id
        self.topics, self.deadletter_topic = tuple(topics), deadletter_topic
        self.alerts = AvroCodec(store, ALERT)
        self.rng = random.Random(seed)

    async def deliver(self, messages: Sequence[Origin]) -> list[Undelivered]:
        failed = []
        for message in messages:
            try:
                alert = self.alerts.decode(message.value)
            except CodecError as exc:
                failed.append(Undelivered(message, "undecodable", f"not an alert event: {exc}"))
                continue
            undelivered = await self.deliver_alert(message, alert)
            if undelivered is not None:
                failed.append(undelivered)
        return failed

    @abstractmethod
    async def deliver_alert(self, message: Origin, alert: AvroRecord) -> Undelivered | None:
        """Deliver one alert event (retrying as the target's policy says); what failed for good, or None."""


class HttpAlertTarget(AlertTarget):
    """An alert target that POSTs over HTTP: one aiohttp session per run."""

    session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


async def retrying(
    attempt_once: Callable[[int], Awaitable[tuple[bool, bool, T]]],
    policy: RetryPolicy,
    rng: random.Random,
    *,
    on_retry: Callable[[], None] = lambda: None,
    requested_wait: Callable[[T], float | None] = lambda _learned: None,
) -> tuple[bool, int, T | None]:
    """Call ``attempt_once(n)`` until it succeeds, says the failure is permanent, or ``max_attempts`` are spent.

    ``attempt_once`` returns (delivered, permanent, what it learned); waits between attempts follow the
    policy's exponential backoff with jitter, unless ``requested_wait`` reads a wait the receiver asked for
    from what was learned (a 429's Retry-After: honoured, up to :data:`MAX_REQUESTED_WAIT_S`). Returns
    (delivered, attempts, the last thing learned).
    """
    last: T | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if attempt > 1:
            on_retry()
            asked = requested_wait(last) if last is not None else None
            wait = policy.delay(attempt - 1, rng) if asked is None else min(asked, MAX_REQUESTED_WAIT_S)
            await asyncio.sleep(wait)
        delivered, permanent, last = await attempt_once(attempt)
        if delivered:
            return True, attempt, last
        if permanent:
            return False, attempt, last
    return False, policy.max_attempts, last


def worker_name(target: DeliveryTarget) -> str:
    return f"{socket.gethostname()}/{os.getpid()} {target.stage} {target.id}"


class Connector:
    """One target's delivery loop: consume, deliver by units, dead-letter, commit, lag; stop-aware."""

    def __init__(self, target: DeliveryTarget, bootstrap: str, producer: AIOKafkaProducer, store: SchemaStore):
        self.target = target
        self.bootstrap = bootstrap
        self.producer = producer
        self.dead_letters = AvroCodec(store, DEAD_LETTER)
        self.delivered = 0
        self.dead_lettered = 0

    async def dead_letter(self, undelivered: Undelivered) -> None:
        target, message = self.target, undelivered.message
        record = dead_letter_record(
            message,
            reason=undelivered.reason,
            detail=undelivered.detail,
            stage=target.stage,
            failed_at=int(time.time() * 1000),
            worker=worker_name(target),
        )
        await self.producer.send_and_wait(
            target.deadletter_topic, self.dead_letters.encode(record), key=target.id.encode()
        )
        self.dead_lettered += 1
        metrics.DELIVERY_OUTCOMES.labels(target.stage, target.id, "dead_lettered").inc()
        target.report_dead_letter(undelivered)
        log.warning(
            "%s %s: %s/%d@%d dead-lettered: %s",
            target.stage,
            target.id,
            message.topic,
            message.partition,
            message.offset,
            undelivered.detail,
        )

    async def handle(self, messages: Sequence[Origin]) -> None:
        """Deliver one unit; afterwards every message of it is delivered or dead-lettered."""
        failed = await self.target.deliver(messages)
        for undelivered in failed:
            await self.dead_letter(undelivered)
        self.delivered += len(messages) - len(failed)
        if len(messages) > len(failed):
            metrics.DELIVERY_OUTCOMES.labels(self.target.stage, self.target.id, "delivered").inc(
                len(messages) - len(failed)
            )

    async def _handle_unless_stopped(self, messages: Sequence[Origin], stop: asyncio.Event) -> bool:
        """Handle a unit, abandoning it (False: uncommitted, it comes again) if stop is set first: a retrying
        delivery can take minutes."""
        if stop.is_set():
            return False
        handled = asyncio.ensure_future(self.handle(messages))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({handled, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if handled in done:
            handled.result()
            return True
        handled.cancel()
        await asyncio.gather(handled, return_exceptions=True)
        return False

    async def _lag(self, consumer: AIOKafkaConsumer) -> int:
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - await consumer.position(tp))
        return lag

    async def run(self, stop: asyncio.Event) -> None:
        target = self.target
        check = f"{target.stage}:{target.id}"  # /readyz: this target's consumer is up
        health.READINESS.waiting(check, f"connecting to {self.bootstrap}")
        for outcome in ("delivered", "dead_lettered"):  # the series exist at 0 before the first event
            metrics.DELIVERY_OUTCOMES.labels(target.stage, target.id, outcome)
        await target.open()
        try:
            async with kafka.started_consumer(
                self.bootstrap,
                *target.topics,
                group_id=f"{target.group_prefix}-{target.id}",
                max_poll_interval_ms=3_600_000,
            ) as consumer:
                health.READINESS.ok(check, f"consuming {', '.join(target.topics)}")
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=target.max_records)
                    for tp in sorted(batches, key=lambda t: (t.topic, t.partition)):
                        messages = batches[tp]
                        for start in range(0, len(messages), target.unit_size):
                            unit = messages[start : start + target.unit_size]
                            if not await self._handle_unless_stopped(unit, stop):
                                break  # stopping: this unit stays uncommitted and comes again
                            await consumer.commit({tp: unit[-1].offset + 1})
                    lag = await self._lag(consumer)
                    metrics.DELIVERY_LAG.labels(target.stage, target.id).set(lag)
                    target.report_lag(lag)
        finally:
            await target.close()

    async def redrive(self, progress: Progress = lambda _m: None) -> tuple[int, int]:
        """Re-deliver the target's dead letters present now: (delivered, dead-lettered again)."""
        target, key = self.target, self.target.id.encode()
        seen = delivered = again = 0
        await target.open()
        try:
            async with kafka.started_consumer(
                self.bootstrap, group_id=f"{target.group_prefix}-redrive-{target.id}"
            ) as consumer:
                partitions = [
                    kafka.TopicPartition(target.deadletter_topic, p)
                    for p in await kafka.partitions_of(consumer, target.deadletter_topic) or [0]
                ]
                consumer.assign(partitions)
                ends = await consumer.end_offsets(partitions)
                while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                    batches = await consumer.getmany(*partitions, timeout_ms=1000)
                    for tp, messages in batches.items():
                        for message in messages:
                            if message.offset < ends[tp] and message.key == key:
                                seen += 1
                                failed = await target.redeliver(origin_of(self.dead_letters.decode(message.value)))
                                for undelivered in failed:
                                    await self.dead_letter(undelivered)
                                again, delivered = again + bool(failed), delivered + (not failed)
                            await consumer.commit({tp: message.offset + 1})
        finally:
            await target.close()
        self.delivered += delivered
        progress(f"redrive {target.id}: {seen} dead letter(s): {delivered} delivered, {again} dead-lettered again")
        return delivered, again


async def run_connectors(connectors: Sequence[Connector], stop: asyncio.Event, *, restart_after_s: float = 5.0) -> None:
    """Run every connector until stop is set; a failing one is restarted after a pause, the others go on."""

    async def supervised(connector: Connector) -> None:
        while not stop.is_set():
            try:
                await connector.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one target's trouble (e.g. a broker hiccup) stays its own
                target = connector.target
                health.READINESS.failed(f"{target.stage}:{target.id}", f"restarting after: {exc}")
                stopped = "%s %s stopped: %s; restarting in %g s"
                if classify(exc) is Kind.FATAL:  # a bug: its traceback helps
                    log.exception(stopped, target.stage, target.id, exc, restart_after_s)
                else:  # the cluster away (or refusing): one line, no traceback
                    log.warning(stopped, target.stage, target.id, describe(exc), restart_after_s)
                await pause(stop, restart_after_s)

    await asyncio.gather(*(supervised(connector) for connector in connectors))
