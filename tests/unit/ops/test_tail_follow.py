"""`bosai tail` keeps following through a cluster outage: it reopens its consumer where it was, and ends with exit
3 only when the patience is spent."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from aiokafka import errors as kafka_errors

from streams.kernel.errors import ClusterUnavailable
from streams.ops import tail
from streams.platform import kafka

TP = kafka.TopicPartition("t", 0)


class FakeConsumer:
    """A partition holding offsets 0..9; ``fail_after`` records, the cluster goes away (a node lost)."""

    def __init__(self, fail_after: int | None) -> None:
        self.fail_after = fail_after
        self.position_ = 0
        self.served = 0

    def assign(self, partitions) -> None:
        pass

    async def seek_to_beginning(self, *partitions) -> None:
        self.position_ = 0

    async def seek_to_end(self, *partitions) -> None:
        self.position_ = 10

    async def position(self, tp) -> int:
        return self.position_

    def seek(self, tp, offset: int) -> None:
        self.position_ = offset

    async def getmany(self, timeout_ms: int):
        if self.fail_after is not None and self.served >= self.fail_after:
            raise kafka_errors.NodeNotReadyError("node 2")
        if self.position_ >= 10:
            await asyncio.sleep(0)
            return {}
        offset = self.position_
        self.position_ += 1
        self.served += 1
        return {TP: [SimpleNamespace(topic="t", partition=0, offset=offset, value=b"x")]}


def _patch(monkeypatch, sessions: list):
    opened = []

    @asynccontextmanager
    async def started_consumer(bootstrap, **options):
        session = sessions.pop(0)
        if isinstance(session, BaseException):
            raise session
        opened.append(session)
        yield session

    async def partitions_of(consumer, topic):
        return [0]

    async def no_wait(_seconds):
        return None

    monkeypatch.setattr(kafka, "started_consumer", started_consumer)
    monkeypatch.setattr(kafka, "partitions_of", partitions_of)
    monkeypatch.setattr(tail.asyncio, "sleep", no_wait)
    return opened


async def _offsets(**options) -> list[int]:
    return [
        m.offset
        async for m in tail.follow(
            "b:9092", ["t"], from_beginning=True, idle_timeout_s=None, max_messages=10, **options
        )
    ]


def test_a_lost_node_reopens_the_consumer_where_it_was_and_nothing_is_missed_or_repeated(monkeypatch):
    unreachable = kafka_errors.KafkaConnectionError("Unable to bootstrap")
    opened = _patch(monkeypatch, [FakeConsumer(fail_after=4), unreachable, unreachable, FakeConsumer(None)])

    assert asyncio.run(_offsets()) == list(range(10))
    assert len(opened) == 2 and opened[1].served == 6


def test_a_spent_patience_ends_with_exit_3(monkeypatch):
    monkeypatch.setenv("BOSAI_KAFKA_PATIENCE_S", "0")
    _patch(monkeypatch, [FakeConsumer(fail_after=2)])
    with pytest.raises(ClusterUnavailable, match="following t"):
        asyncio.run(_offsets())


def test_a_fatal_error_is_raised_as_it_is(monkeypatch):
    _patch(monkeypatch, [LookupError("topic t does not exist")])
    with pytest.raises(LookupError):
        asyncio.run(_offsets())


class StrayCancel:
    """A consumer whose stop() raises the cancellation of its own fetch task (aiokafka 0.14, a node lost)."""

    def __init__(self) -> None:
        self.closed = False
        self._client = SimpleNamespace(close=self._close)

    async def stop(self) -> None:
        raise asyncio.CancelledError

    async def _close(self) -> None:
        self.closed = True


def test_a_consumer_stopped_while_its_fetcher_waits_out_a_lost_node_closes_without_a_traceback():
    client = StrayCancel()
    asyncio.run(kafka.stop_consumer(client))
    assert client.closed
