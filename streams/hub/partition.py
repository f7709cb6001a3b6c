"""One input partition a worker owns: its transactional producer, its key states, its batches.

Exactly-once, per partition: every batch read from the partition is processed and its outputs
(enriched readings, alert events on every topic, dead letters), the changed states (on the state
changelog, same partition number) and the next input offset are written in ONE Kafka transaction.
A read_committed consumer sees all of a batch or none of it; after a crash, the partition's next
owner restores the states committed with the last offset it will resume from, so nothing is lost
and nothing is produced twice.

Fencing: the transactional id is fixed per input partition (``<group>.<topic>.<partition>``). The
new owner starts its producer — InitProducerId fences whoever used the id before and completes or
aborts its open transaction — before it reads the partition's committed offset and its states. A
zombie (a paused worker whose partitions moved on) then fails its next write with ProducerFenced
and exits; it can never commit offsets or outputs after its replacement started. (aiokafka sends
TxnOffsetCommit without the group generation, so the transactional id is the only fence: hence one
per partition, never per process.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol

from aiokafka import AIOKafkaProducer

from streams.kernel.batch import BatchResult, ChangeT, KeyState, StateT
from streams.kernel.messages import Message, OutRecord
from streams.platform import kafka

log = logging.getLogger("bosai.hub")


class Pipeline(Protocol[StateT, ChangeT]):
    """A pipeline: one batch of messages and the current states in, records and new states out.

    ``StateT`` is what it keeps per key (a station's state, an official event's), ``ChangeT`` the change
    behind each alert it emits; the observed and the official pipelines are the two there are."""

    def process(
        self, messages: Sequence[Message], state_of: Callable[[str], StateT]
    ) -> BatchResult[StateT, ChangeT]: ...


def _no_restore(_states: Mapping[str, KeyState]) -> None:
    """The default of ``Stream.on_restore``: nothing to do with the restored states."""


@dataclass(frozen=True)
class Stream(Generic[StateT, ChangeT]):
    """An input topic of the worker, the pipeline that processes it and the changelog of its states."""

    name: str  # readings | official
    topic: str
    changelog: str
    processor: Pipeline[StateT, ChangeT]
    decode_state: Callable[[bytes | None], StateT]
    # metrics: (result, started_s, finished_s, bytes written)
    on_batch: Callable[[BatchResult[StateT, ChangeT], float, float, int], None]
    on_restore: Callable[[Mapping[str, StateT]], None] = _no_restore


# The worker's streams side by side: each has its own state and change types, seen only by its own pipeline,
# partition owners and metrics; the batch loop only routes partitions to owners (an existential type: Any).
AnyStream = Stream[Any, Any]


MAX_QUEUED = 50_000  # messages a partition may have fetched and not processed before the loop waits for it


class PartitionFailed(Exception):
    """A transaction of this partition failed: the worker's memory may be ahead of Kafka; it must restart."""


class PartitionOwner(Generic[StateT, ChangeT]):
    """This worker's ownership of one input partition (see the module docstring)."""

    def __init__(
        self,
        stream: Stream[StateT, ChangeT],
        partition: int,
        *,
        bootstrap: str,
        group_id: str,
        on_failure: Callable[[PartitionFailed], None] = lambda _exc: None,
        max_batch: int = 10_000,
    ) -> None:
        self.stream = stream
        self.partition = partition
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.transactional_id = f"{group_id}.{stream.topic}.{partition}"
        self.tp = kafka.TopicPartition(stream.topic, partition)
        self.states: dict[str, StateT] = {}
        self.active = False
        self.failure: BaseException | None = None
        self._closing = False
        self._producer: AIOKafkaProducer | None = None
        self._writer: kafka.RecordWriter | None = None
        self.on_failure = on_failure  # called when a transaction fails while the partition is owned
        self.max_batch = max_batch  # messages in one transaction at most (well inside its 10 s timeout)
        self._queued: list[Message] = []  # fetched, not yet processed
        self._driver: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fence the previous owner, then restore the states committed with the partition's offset."""
        self._producer = kafka.transactional_producer(self.bootstrap, self.transactional_id)
        await self._producer.start()  # InitProducerId: fences the previous owner, ends its transaction
        self._writer = kafka.RecordWriter(self._producer)
        started = time.monotonic()
        records = await kafka.read_partition(self.bootstrap, self.stream.changelog, self.partition)
        latest: dict[str, bytes] = {}  # each key's last state, decoded once the changelog is read
        for record in records:
            if record.key is None:
                continue  # not a state: the hub writes every state with its key
            key = record.key.decode()
            if record.value is None:
                latest.pop(key, None)
            else:
                latest[key] = record.value
        decode = self.stream.decode_state
        self.states = {key: decode(value) for key, value in latest.items()}
        self.stream.on_restore(self.states)
        log.info(
            "%s[%d]: %d states restored from %s in %.2fs",
            self.stream.topic,
            self.partition,
            len(self.states),
            self.stream.changelog,
            time.monotonic() - started,
        )
        self.active = True

    def state_of(self, key: str) -> StateT:
        state = self.states.get(key)
        return state if state is not None else self.stream.decode_state(None)

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def submit(self, messages: Sequence[Message]) -> None:
        """Queue a fetched batch for this partition's driver, which processes everything queued as one
        batch as soon as the partition's previous transaction has committed. A partition waiting for its
        commit thus never holds up the others' batches (the loop goes on fetching); past ``MAX_QUEUED``
        messages the loop waits for this partition. aiokafka's records serve as ``Message``s."""
        if not self.active:
            return  # revoked or failed: the next owner reads these messages again
        self._queued.extend(messages)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        if len(self._queued) > MAX_QUEUED:
            await self.wait()

    async def _drive(self) -> None:
        """Process and commit what is queued (up to ``max_batch`` per transaction), one transaction at a time,
        until the queue is empty. Any failure exits the worker (``on_failure``): its memory may be ahead of
        what Kafka holds."""
        try:
            while self._queued and self.active:
                messages, self._queued = self._queued[: self.max_batch], self._queued[self.max_batch :]
                started = time.time()
                result = self.stream.processor.process(messages, self.state_of)
                self.states.update(result.states)
                changelog = [
                    OutRecord(self.stream.changelog, key.encode(), state.to_bytes(), partition=self.partition)
                    for key, state in result.states.items()
                ]
                await self._commit(result, changelog, messages[-1].offset + 1, started)
        except asyncio.CancelledError:
            self.active = False  # the worker is stopping: the next owner aborts the open transaction
            raise
        except BaseException as exc:
            if isinstance(exc, PartitionFailed):
                failed = exc
            else:
                failed = PartitionFailed(f"{self.transactional_id}: batch not processed: {exc!r}")
                failed.__cause__ = exc
            self.active, self.failure = False, failed
            if not self._closing:
                self.on_failure(failed)  # crash-only: the worker exits, whoever waits or not
            raise failed from failed.__cause__

    async def _commit(
        self, result: BatchResult[StateT, ChangeT], changelog: list[OutRecord], next_offset: int, started: float
    ) -> None:
        producer, writer = self._producer, self._writer
        if producer is None or writer is None:
            raise PartitionFailed(f"{self.transactional_id}: not started")
        try:
            await producer.begin_transaction()
            written = await writer.write([*result.records, *changelog])
            await producer.send_offsets_to_transaction({self.tp: next_offset}, self.group_id)
            await producer.commit_transaction()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            raise PartitionFailed(f"{self.transactional_id}: transaction not committed: {exc!r}") from exc
        self.stream.on_batch(result, started, time.time(), written)

    async def wait(self) -> None:
        """Until this partition's driver is idle (raises PartitionFailed if a transaction failed).

        Both the loop (past MAX_QUEUED) and a revocation (before the producer stops) wait for the same
        driver, and each waits shielded: a waiter being cancelled never cancels a commit."""
        driver = self._driver
        if driver is not None:
            await asyncio.shield(driver)

    async def close(self) -> None:
        """Stop owning the partition: let the open transaction finish, then stop the producer."""
        self._closing = True
        self.active = False
        try:
            await self.wait()
        finally:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
