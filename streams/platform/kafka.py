"""Every Kafka client the hub uses is built here (aiokafka), with the offsets, lag and batch writes around them.

One place decides how the hub talks to a cluster: producers are idempotent with ``acks=all``,
consumers never auto-commit and read only committed records (``read_committed``: a transaction's
records are seen once it commits, and never when it aborts), admin clients share the same address.
The rest of the hub asks this module for a client instead of building one.

The offset, lag and read helpers are patient (:mod:`streams.platform.kafka_retry`): through a node's loss or
a leader's election they retry, within ``BOSAI_KAFKA_PATIENCE_S``, instead of ending the command.

How a client authenticates comes from one place, :func:`streams.platform.kafka_security.client_security`
(``BOSAI_KAFKA_CONFIG``, the ``BOSAI_KAFKA_*`` variables, or a hardened embedded broker's registered hub
credential; else PLAINTEXT): every producer, consumer and admin client gets the same settings.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorError,
    SaslAuthenticationFailed,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from streams.kernel.messages import OutRecord
from streams.platform.kafka_retry import patient, patiently
from streams.platform.kafka_security import ClientSecurity, client_security

log = logging.getLogger("bosai.kafka")

# A consumed record: the hub's consumers have no deserializers, so its key and value are bytes (or None).
Record = ConsumerRecord[bytes, bytes]

__all__ = [
    "TopicPartition",
    "Record",
    "BatchSender",
    "RecordWriter",
    "transactional_producer",
    "read_partition",
    "producer",
    "consumer",
    "admin",
    "started_producer",
    "started_consumer",
    "started_admin",
    "patient_consumer",
    "partitions_of",
    "end_offsets",
    "committed_offsets",
    "GroupLag",
    "uncommitted",
    "read_range",
    "read_since",
]


# -- clients ----------------------------------------------------------------------------------------


def ssl_context_for(security: ClientSecurity) -> ssl.SSLContext:
    """TLS that trusts only the configured CA (hostname checked), with the client certificate if one is set."""
    context = ssl.create_default_context(cafile=security.ca_file)
    if security.cert_file:
        context.load_cert_chain(security.cert_file)
    return context


def security_options(bootstrap: str) -> dict[str, Any]:
    """The aiokafka settings for how the hub authenticates to ``bootstrap`` (empty for PLAINTEXT)."""
    security = client_security(bootstrap)
    if security.protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": security.protocol, "ssl_context": ssl_context_for(security)}
    if security.protocol == "SASL_SSL":
        options.update(
            sasl_mechanism=security.mechanism,
            sasl_plain_username=security.username,
            sasl_plain_password=security.password,
        )
    return options


def producer(bootstrap: str, *, linger_ms: int = 5, **options: Any) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (``acks=all``)."""
    settings = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": linger_ms,
        "max_batch_size": 1 << 20,
        "request_timeout_ms": 30_000,
        **security_options(bootstrap),
        **options,
    }
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **settings)


def consumer(bootstrap: str, *topics: str, group_id: str | None = None, **options: Any) -> AIOKafkaConsumer:
    """A consumer that commits only when told to and reads only committed records."""
    settings = {
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "auto_offset_reset": "earliest",
        **security_options(bootstrap),
        **options,
    }
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group_id, **settings)


def admin(bootstrap: str, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **{**security_options(bootstrap), **options})


async def _start(starting: Awaitable[None], closing: Callable[[], Awaitable[None]]) -> None:
    """Start a client; one that fails to start (the cluster away) is closed, not left to the collector."""
    try:
        await starting
    except BaseException:
        await closing()
        raise


async def stop_consumer(client: AIOKafkaConsumer) -> None:
    """Stop a consumer, even one whose fetcher is waiting out a lost node.

    aiokafka 0.14's fetcher cancels its pending fetch tasks on close and awaits them unguarded: a task sleeping
    its retry backoff (after a node was lost) raises that cancellation out of ``stop()``, which then never
    closes the client's connections. Here that stray cancellation is absorbed and the client closed; a
    cancellation of the caller itself goes through."""
    try:
        await client.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        await client._client.close()


@asynccontextmanager
async def started_producer(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    client = producer(bootstrap, **options)
    await _start(client.start(), client.stop)
    try:
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def started_consumer(
    bootstrap: str, *topics: str, group_id: str | None = None, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    client = consumer(bootstrap, *topics, group_id=group_id, **options)
    await _start(client.start(), client.stop)
    try:
        yield client
    finally:
        await stop_consumer(client)


@asynccontextmanager
async def patient_consumer(
    what: str, bootstrap: str, *topics: str, group_id: str | None = None, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer, its start retried through a cluster outage within the patience (a long-running
    follower started while a node is lost, or before the cluster is up); running, aiokafka follows leader
    changes itself."""

    async def start() -> AIOKafkaConsumer:
        client = consumer(bootstrap, *topics, group_id=group_id, **options)
        await _start(client.start(), client.stop)
        return client

    client = await patiently(what, bootstrap, start)
    try:
        yield client
    finally:
        await stop_consumer(client)


@asynccontextmanager
async def started_admin(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    client = admin(bootstrap, **options)
    await _start(client.start(), client.close)
    try:
        yield client
    finally:
        await client.close()


class LoginUnavailable(Exception):
    """The broker could not be asked whether a credential is right (unreachable, TLS, timeout)."""


async def scram_login(host: str, port: int, ssl_context: ssl.SSLContext, username: str, password: str) -> bool:
    """Whether the broker's SASL_SSL listener accepts this SCRAM-SHA-512 credential (one handshake).

    False when the broker refused it; :class:`LoginUnavailable` when the broker could not be asked, so a
    door answers 503 and counts nothing against the client. Neither carries the password: the exception
    names only the kind of error (a library message might quote what it was given).
    """
    try:
        conn = await create_conn(
            host,
            port,
            ssl_context=ssl_context,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=username,
            sasl_plain_password=password,
            request_timeout_ms=10_000,
        )
    except SaslAuthenticationFailed:
        return False
    except Exception as exc:  # noqa: BLE001 - anything else: the broker did not answer the question
        raise LoginUnavailable(f"SCRAM handshake with {host}:{port} failed: {type(exc).__name__}") from None
    conn.close()
    return True


# -- offsets and lag ----------------------------------------------------------------------------------


async def partitions_of(client: AIOKafkaConsumer, topic: str) -> list[int]:
    """The topic's partitions, refreshing the client's metadata once when it does not know the topic yet."""
    known = client.partitions_for_topic(topic)
    if not known:
        # aiokafka has no public call for this: a consumer learns of topics it is not subscribed to
        # only through a metadata refresh.
        await client._client.force_metadata_update()
        known = client.partitions_for_topic(topic)
    return sorted(known or ())


@patient("reading end offsets")
async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The end offset (last stable offset for read_committed) of every partition of the topics."""
    async with started_consumer(bootstrap) as client:
        partitions = [TopicPartition(t, p) for t in topics for p in await partitions_of(client, t)]
        return await client.end_offsets(partitions) if partitions else {}


@patient("reading a group's committed offsets")
async def committed_offsets(bootstrap: str, group_id: str) -> dict[TopicPartition, int]:
    """The group's committed offsets; empty while its coordinator is still being set up."""
    async with started_admin(bootstrap) as client:
        try:
            committed = await client.list_consumer_group_offsets(group_id)
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            return {}
        return {tp: meta.offset for tp, meta in committed.items()}


class GroupLag:
    """Consumer lag of consumer groups, sampled with one consumer and one admin client kept open.

    Opening clients at every sample would cost the broker a connection each (in hardened mode a TLS and SCRAM
    handshake) and move its descriptor count, which the soak (`bosai bench soak`) measures.
    ``count_records``: count the records between committed and end offsets (up to ``exact_below`` apart)
    instead of subtracting offsets, so the commit markers of transactions are not counted as lag.
    ``committed[group]``: the sum of the group's committed offsets on the topics at its last :meth:`lag`, so
    a caller can tell "nothing left" from "saw nothing" (a topic it cannot see counts no lag).
    """

    def __init__(self, bootstrap: str, admin_bootstrap: str | None = None, *, exact_below: int = 1000):
        self.bootstrap, self.admin_bootstrap, self.exact_below = bootstrap, admin_bootstrap or bootstrap, exact_below
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self.committed: dict[str, int] = {}

    async def __aenter__(self) -> GroupLag:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None:
            self._consumer = consumer(self.bootstrap)
            await self._consumer.start()
        if self._admin is None:
            self._admin = admin(self.admin_bootstrap)
            await self._admin.start()
        return self._consumer, self._admin

    async def close(self) -> None:
        if self._consumer is not None:
            await stop_consumer(self._consumer)
        if self._admin is not None:
            await self._admin.close()
        self._consumer = self._admin = None

    async def lag(self, group_id: str, topics: Sequence[str], *, count_records: bool = False) -> int:
        """Messages of the topics the group has not committed yet."""
        client, admin_client = await self._clients()
        partitions = [TopicPartition(t, p) for t in topics for p in await partitions_of(client, t)]
        if not partitions:
            self.committed[group_id] = 0
            return 0
        ends = await client.end_offsets(partitions)
        try:
            committed = await admin_client.list_consumer_group_offsets(group_id)
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            committed = {}
        gaps = {tp: max(0, ends[tp] - (committed[tp].offset if tp in committed else 0)) for tp in partitions}
        self.committed[group_id] = sum(committed[tp].offset for tp in partitions if tp in committed)
        if not count_records:
            return sum(gaps.values())
        return sum(
            [
                await self._records(tp, ends[tp] - gap, ends[tp]) if gap <= self.exact_below else gap
                for tp, gap in gaps.items()
                if gap
            ]
        )

    async def _records(self, tp: TopicPartition, start: int, end: int) -> int:
        """Committed records between two offsets of one partition (markers take offsets, not records)."""
        client, _ = await self._clients()
        client.assign([tp])
        try:
            client.seek(tp, start)
            count, deadline = 0, asyncio.get_running_loop().time() + 10
            while await client.position(tp) < end and asyncio.get_running_loop().time() < deadline:
                batch = await client.getmany(tp, timeout_ms=500)
                count += sum(1 for m in batch.get(tp, ()) if m.offset < end)
            return count
        finally:
            # An assignment narrows the client's metadata to its topics: without this, the next sample would
            # find no partition of any other topic, and report no lag at all.
            client.unsubscribe()


@patient("reading a group's progress")
async def uncommitted(
    bootstrap: str, group_id: str, ends: Mapping[TopicPartition, int], *, count_below: int = 1000
) -> dict[TopicPartition, int]:
    """Per partition, the messages before ``ends`` the group has not committed.

    Not simply end minus committed: in a topic written by transactions (the workers write a flood
    forecast's observed levels to the raw topic), each commit marker takes an offset after the last
    message and is never delivered, so a group that has processed everything stays one offset short
    forever. Gaps of at most ``count_below`` offsets are counted by reading them; larger ones are
    offsets (a few markers more or less do not matter then).
    """
    committed = await committed_offsets(bootstrap, group_id)
    gaps = {tp: end - committed.get(tp, 0) for tp, end in ends.items() if end > committed.get(tp, 0)}
    small = [tp for tp, gap in gaps.items() if gap <= count_below]
    if small:
        messages = await read_range(
            bootstrap, {tp: committed.get(tp, 0) for tp in small}, {tp: ends[tp] for tp in small}
        )
        counted: defaultdict[TopicPartition, int] = defaultdict(int)
        for message in messages:
            counted[TopicPartition(message.topic, message.partition)] += 1
        gaps.update({tp: counted[tp] for tp in small})
    return {tp: gap for tp, gap in gaps.items() if gap > 0}


@patient("reading records")
async def read_range(
    bootstrap: str, starts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int], *, timeout_s: float = 10.0
) -> list[Record]:
    """Every committed message between start and end offsets of the given partitions.

    Ends are positions, not message offsets: in a topic written by transactions, the commit markers take
    offsets too and are never delivered, so reading stops when the position reaches the end."""
    wanted = {tp: end for tp, end in ends.items() if end > starts.get(tp, 0)}
    if not wanted:
        return []
    messages: list[Record] = []
    async with started_consumer(bootstrap) as client:
        client.assign(list(wanted))
        for tp in wanted:
            client.seek(tp, starts.get(tp, 0))
        remaining = dict(wanted)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while remaining:
            batch = await client.getmany(*remaining, timeout_ms=200)
            for tp, items in batch.items():
                messages.extend(m for m in items if m.offset < wanted[tp])
            for tp in list(remaining):
                if await client.position(tp) >= wanted[tp]:
                    remaining.pop(tp)
            if remaining and asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"could not read {len(remaining)} partition(s) to their end within {timeout_s:.0f} s"
                )
    return messages


async def count_messages(
    bootstrap: str, starts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
) -> int:
    """How many committed messages lie between the offsets (not ends minus starts: markers take offsets)."""
    return len(await read_range(bootstrap, starts, ends))


@patient("reading recent records")
async def read_since(bootstrap: str, topics: Iterable[str], since_ms: int, *, timeout_s: float = 30.0) -> list[Record]:
    """Every message of the topics written at or after ``since_ms`` (record timestamps), up to the current ends.

    What a poller reads back from the topics it writes, to know on start what it already produced.
    """
    async with started_consumer(bootstrap) as client:
        partitions = [TopicPartition(t, p) for t in topics for p in await partitions_of(client, t)]
        if not partitions:
            return []
        found = await client.offsets_for_times({tp: since_ms for tp in partitions})
        ends = await client.end_offsets(partitions)
    starts = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in partitions}
    return await read_range(bootstrap, starts, ends, timeout_s=timeout_s)


# -- batch writes -------------------------------------------------------------------------------------


def transactional_producer(
    bootstrap: str, transactional_id: str, *, transaction_timeout_ms: int = 10_000, **options: Any
) -> AIOKafkaProducer:
    """A producer whose writes, and the consumer offsets sent with them, commit or abort together.

    Starting it registers ``transactional_id`` with the transaction coordinator (InitProducerId): a
    producer that used the id before is fenced (its later writes fail with ProducerFenced) and its
    unfinished transaction is aborted. A transaction open longer than ``transaction_timeout_ms`` is
    aborted by the broker, so a stuck worker holds nothing for long.
    """
    return producer(
        bootstrap,
        transactional_id=transactional_id,
        transaction_timeout_ms=transaction_timeout_ms,
        linger_ms=0,
        **options,
    )


class RecordWriter:
    """Writes many records through one producer: one batch per topic-partition, partitions cached."""

    def __init__(self, client: AIOKafkaProducer):
        self.producer = client
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        # (topic, key) -> partition: murmur2 in pure Python is a measurable share of a batch, and the
        # same stations and alert ids come back batch after batch
        self._partition_of: dict[tuple[str, bytes], int] = {}

    async def _partitions_of(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            parts = await self.producer.partitions_for(topic)
            if not parts:
                raise RuntimeError(f"topic {topic} has no partitions (run `bosai topics apply`)")
            self._partitions[topic] = sorted(parts)
        return self._partitions[topic]

    async def _partition(self, topic: str, key: bytes) -> int:
        found = self._partition_of.get((topic, key))
        if found is None:
            parts = await self._partitions_of(topic)
            if len(self._partition_of) > 500_000:
                self._partition_of.clear()
            found = self._partition_of[(topic, key)] = self._partitioner(key, parts, parts)
        return found

    async def write(self, records: Sequence[OutRecord]) -> int:
        """Send and wait until the broker has every record; return the bytes written."""
        grouped: dict[tuple[str, int], list[OutRecord]] = defaultdict(list)
        partition_of = self._partition_of
        for record in records:
            partition = record.partition
            if partition is None:
                partition = partition_of.get((record.topic, record.key))
                if partition is None:
                    partition = await self._partition(record.topic, record.key)
            grouped[(record.topic, partition)].append(record)
        futures = []
        written = 0
        for (topic, partition), items in grouped.items():
            batch = self.producer.create_batch()
            for record in items:
                while batch.append(key=record.key, value=record.value, timestamp=record.timestamp_ms) is None:
                    futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                    batch = self.producer.create_batch()
                written += len(record.value) + len(record.key)
            futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        if futures:
            await asyncio.gather(*futures)
        return written


@patient("reading a partition")
async def read_partition(bootstrap: str, topic: str, partition: int, *, timeout_s: float = 60.0) -> list[Record]:
    """Every committed record of one partition, from the oldest retained to the end (restoring state)."""
    tp = TopicPartition(topic, partition)
    async with started_consumer(bootstrap) as client:
        client.assign([tp])
        await client.seek_to_beginning(tp)
        end = (await client.end_offsets([tp]))[tp]
        records: list[Record] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await client.position(tp) < end:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{topic}[{partition}]: could not read to offset {end} within {timeout_s:.0f} s")
            batch = await client.getmany(tp, timeout_ms=1000, max_records=50_000)
            records.extend(batch.get(tp, ()))
        return records


class BatchSender:
    """An idempotent producer (at-least-once, acks=all) with a RecordWriter: what the entry points use
    that write readings on behalf of others (the HTTP gateway), where a transaction has no input offset
    to commit with."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.producer: AIOKafkaProducer | None = None  # made in start(): aiokafka needs the running loop
        self._writer: RecordWriter | None = None
        self._starting: asyncio.Lock | None = None

    async def start(self) -> None:
        """Start the producer once, however many tasks ask for it at the same time."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.producer is None:
                started = producer(self.bootstrap)
                await started.start()
                self.producer, self._writer = started, RecordWriter(started)

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = self._writer = None

    async def send(self, records: Sequence[OutRecord]) -> int:
        """Send and wait until the broker has every record (acks=all); return the bytes written."""
        await self.start()
        if self._writer is None:
            raise RuntimeError("the producer stopped while sending")
        return await self._writer.write(records)
