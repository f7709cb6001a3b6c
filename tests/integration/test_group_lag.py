"""The soak's lag probe (:class:`streams.platform.kafka.GroupLag`) against a real broker: it counts what a
group has not committed, transaction markers excluded, and keeps seeing every topic between samples."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from streams.platform import kafka


async def _topic(bootstrap: str, name: str, partitions: int) -> None:
    async with kafka.started_admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(name, partitions, 1)])


async def _write_in_transactions(bootstrap: str, topic: str, transactions: int, each: int, txn_id: str) -> None:
    """``transactions`` committed transactions of ``each`` records to partition 0: each adds a marker offset."""
    producer = kafka.transactional_producer(bootstrap, txn_id)
    await producer.start()
    try:
        for t in range(transactions):
            async with producer.transaction():
                for i in range(each):
                    await producer.send(topic, f"{t}-{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    async with kafka.started_consumer(bootstrap, group_id=group) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)


async def _until_stable(bootstrap: str, ends: dict[TopicPartition, int]) -> None:
    """Until the transactions' markers are written (a commit returns before them; only then are records readable)."""
    deadline = asyncio.get_running_loop().time() + 10
    while await kafka.end_offsets(bootstrap, {tp.topic for tp in ends}) != ends:
        assert asyncio.get_running_loop().time() < deadline, "the transactions never became readable"
        await asyncio.sleep(0.1)


async def test_lag_counts_the_records_a_group_has_not_committed_without_the_transaction_markers(
    kafka_bootstrap, unique
):
    topic, other = f"lag-{unique}", f"lag-other-{unique}"
    await _topic(kafka_bootstrap, topic, 1)
    await _topic(kafka_bootstrap, other, 2)
    await _write_in_transactions(kafka_bootstrap, topic, 3, 10, f"lag-{unique}")  # records 0-9, 11-20, 22-31
    await _write_in_transactions(kafka_bootstrap, other, 1, 4, f"other-{unique}")  # records 0-3, marker 4
    ends = {TopicPartition(topic, 0): 33, TopicPartition(other, 0): 5, TopicPartition(other, 1): 0}
    await _until_stable(kafka_bootstrap, ends)
    await _commit(kafka_bootstrap, f"g-{unique}", {TopicPartition(topic, 0): 21})  # after the second transaction

    async with kafka.GroupLag(kafka_bootstrap) as probe:
        by_offsets = await probe.lag(f"g-{unique}", [topic])
        committed = probe.committed[f"g-{unique}"]
        other_counted_first = await probe.lag(f"g-{unique}", [other], count_records=True)
        await asyncio.sleep(1.0)  # samples are seconds apart: the client's metadata is refreshed in between
        by_records = await probe.lag(f"g-{unique}", [topic], count_records=True)
        never_committed = await probe.lag(f"new-{unique}", [topic], count_records=True)
        both = await probe.lag(f"g-{unique}", [topic, other], count_records=True)

    assert by_offsets == 12 and committed == 21, "33 offsets (30 records, 3 markers) minus the committed 21"
    assert other_counted_first == 4, "never committed: all its records, not its marker"
    assert by_records == 10, "the third transaction's records, though the last count read another topic"
    assert never_committed == 30
    assert both == 14
