"""The hub's batch loop: one consumer group member reading a region's input topics in batches.

The consumer belongs to the region's group (``<prefix>-<region>-hub``) with a static instance id
(``--replicas`` gives each replica its own), so a restarted worker takes its partitions back without a
rebalance, and a dead one's partitions move to the others after the session timeout (6 s). On each
assignment the worker takes ownership of every new partition (``PartitionOwner.start``: fence, restore
states) while the partition is paused, seeks to its committed offset, and only then resumes it. Each
fetched batch is queued with its partition's owner, whose driver task processes everything queued as one
batch and commits it in one transaction, then the next: a partition whose transaction is on the wire
never holds up the others, and batches grow with the load (fewer, larger transactions).

Crash-only: when a transaction fails (a broker lost mid-commit, a fenced zombie), the worker's memory
may be ahead of what Kafka holds, so it exits at once — ``RESTART_EXIT`` for its supervisor to restart
it, ``FENCED_EXIT`` when another worker owns the partition now (it must not come back).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import ProducerFenced
from mode import Service

from streams.hub.partition import AnyStream, PartitionFailed, PartitionOwner
from streams.platform import health, kafka

log = logging.getLogger("bosai.hub")

RESTART_EXIT = 75  # EX_TEMPFAIL: the worker stopped itself and asks its supervisor for a restart
FENCED_EXIT = 76  # another worker owns the partitions now: do not restart this one


class HubService(Service, ConsumerRebalanceListener):
    """Consume the streams' topics in batches; one PartitionOwner per assigned partition."""

    def __init__(
        self,
        streams: Sequence[AnyStream],
        *,
        bootstrap: str,
        group_id: str,
        instance_id: str,
        session_timeout_ms: int = 6000,
        max_records: int = 10_000,
        **kwargs: Any,  # mode's Service options
    ) -> None:
        super().__init__(**kwargs)
        self.streams = {s.topic: s for s in streams}
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.instance_id = instance_id
        self.session_timeout_ms = session_timeout_ms
        self.max_records = max_records
        self.owners: dict[kafka.TopicPartition, PartitionOwner[Any, Any]] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.batches = 0

    async def on_start(self) -> None:
        health.READINESS.waiting("kafka", f"connecting to {self.bootstrap}")
        health.READINESS.waiting("assignment", f"joining group {self.group_id} as {self.instance_id}")
        self.consumer = kafka.consumer(
            self.bootstrap,
            group_id=self.group_id,
            group_instance_id=self.instance_id,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(500, self.session_timeout_ms // 4),
            rebalance_timeout_ms=60_000,
            max_poll_interval_ms=300_000,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=4 << 20,
        )
        self.consumer.subscribe(list(self.streams), listener=self)
        await self.consumer.start()
        health.READINESS.ok("kafka", self.bootstrap)

    def _running_consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            raise RuntimeError(f"{self.instance_id}: the batch loop's consumer is not started")
        return self.consumer

    async def on_stop(self) -> None:
        for owner in list(self.owners.values()):
            try:
                await owner.close()
            except PartitionFailed as exc:
                log.error("%s", exc)
        self.owners.clear()
        if self.consumer is not None:
            await kafka.stop_consumer(self.consumer)

    # -- the loop ---------------------------------------------------------------------------------
    @Service.task
    async def _heartbeat(self) -> None:
        """The event loop's heartbeat: /healthz answers 503 when it stops (a frozen or blocked loop)."""
        await health.heartbeat()

    @Service.task
    async def _run(self) -> None:
        consumer = self._running_consumer()
        try:
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=100, max_records=self.max_records)
                for tp, messages in batches.items():
                    owner = self.owners.get(tp)
                    if owner is not None and messages:
                        await owner.submit(messages)
                        self.batches += 1
        except PartitionFailed as exc:
            self._exit_for(exc)
        except asyncio.CancelledError:
            raise

    @Service.task
    async def _watch_freeze(self) -> None:
        """A worker frozen past its session timeout (SIGSTOP, a paused VM) has lost its partitions to
        another worker, and its producers are fenced: it exits rather than act on what it remembers.

        Only a worker that owned partitions when the freeze began: a stall before its first assignment
        (a slow start on a starved machine) has nothing to lose, and exiting then would only delay it."""
        limit = self.session_timeout_ms / 1000
        last = time.monotonic()
        while not self.should_stop:
            owned = bool(self.owners)
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if now - last > limit and not owned:
                log.warning("%s: event loop stalled %.1f s before owning partitions", self.instance_id, now - last)
            elif now - last > limit:
                log.error(
                    "%s was frozen for %.1f s, past its %.0f s session timeout: its partitions have moved "
                    "on; exiting (status %d)",
                    self.instance_id,
                    now - last,
                    limit,
                    FENCED_EXIT,
                )
                logging.shutdown()
                os._exit(FENCED_EXIT)
            last = now

    async def lag(self) -> dict[str, int]:
        """Per input topic, the messages of this worker's partitions not yet processed: fetched and queued,
        plus the last stable offset minus the position, both known from the fetch responses (no request of
        its own, and a commit marker at a partition's end is skipped by the position, not counted as lag)."""
        lag = dict.fromkeys(self.streams, 0)
        consumer = self.consumer
        if consumer is None:
            return lag
        for tp, owner in list(self.owners.items()):
            stable = consumer.last_stable_offset(tp)
            if stable is None:
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # revoked meanwhile: its new owner reports it
                continue
            lag[tp.topic] += max(0, stable - position) + owner.queued
        return lag

    def _crash(self, reason: BaseException) -> None:
        """mode's crash of this service (one of its tasks raised, or another service of the worker crashed):
        crash-only, the worker exits at once as for a failed transaction.

        (mode's ``Service._crash``, overridden: before, the loop's own exit shared this name by accident.)"""
        self._exit_for(reason)

    def _exit_for(self, exc: BaseException) -> None:
        """Exit the worker: ``FENCED_EXIT`` when another worker owns the partition now, else ``RESTART_EXIT``."""
        fenced = isinstance(exc.__cause__, ProducerFenced)
        code = FENCED_EXIT if fenced else RESTART_EXIT
        log.error(
            "%s: exiting (status %d)%s",
            exc,
            code,
            " — another worker owns this partition now" if fenced else " to be restarted",
        )
        logging.shutdown()
        os._exit(code)

    # -- rebalances (aiokafka calls these between batches) ------------------------------------------
    async def on_partitions_revoked(self, revoked: set[kafka.TopicPartition]) -> None:
        for tp in revoked:
            owner = self.owners.pop(tp, None)
            if owner is not None:
                try:
                    await owner.close()
                except PartitionFailed as exc:
                    self._exit_for(exc)

    async def on_partitions_assigned(self, assigned: set[kafka.TopicPartition]) -> None:
        new = sorted((tp for tp in assigned if tp not in self.owners), key=lambda t: (t.topic, t.partition))
        if not new:
            health.READINESS.ok("assignment", f"{len(assigned)} partition(s) of group {self.group_id}")
            return
        consumer = self._running_consumer()
        consumer.pause(*new)
        owners = [
            PartitionOwner(
                self.streams[tp.topic],
                tp.partition,
                bootstrap=self.bootstrap,
                group_id=self.group_id,
                on_failure=self._exit_for,
                max_batch=self.max_records,
            )
            for tp in new
        ]
        await asyncio.gather(*(owner.start() for owner in owners))
        for tp, owner in zip(new, owners, strict=True):
            committed = await consumer.committed(tp)  # stable now: the previous owner is fenced
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
            self.owners[tp] = owner
        consumer.resume(*new)
        health.READINESS.ok("assignment", f"{len(assigned)} partition(s) of group {self.group_id}, states restored")
        log.info("%s: now owns %s", self.instance_id, ", ".join(f"{tp.topic}[{tp.partition}]" for tp in new))
