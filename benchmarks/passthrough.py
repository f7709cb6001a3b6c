"""The ceilings: a raw aiokafka consume -> produce passthrough that does no work.

Same shape as the hub's worker (batches of up to 10,000, per-partition batch sends), minus decoding and
processing. Plain: one idempotent producer, offsets committed after the outputs are acknowledged
(at-least-once). Transactional: like the hub, one transactional producer per input partition, each
batch's outputs and offset committed in one transaction — what exactly-once costs by itself.
Run as `python -m benchmarks.passthrough BOOTSTRAP SOURCE DESTINATION GROUP [plain|tx]`.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def run(bootstrap: str, source: str, destination: str, group: str, mode: str = "plain") -> None:
    from aiokafka.structs import OffsetAndMetadata

    from streams.platform import kafka

    consumer = kafka.consumer(bootstrap, source, group_id=group, max_poll_records=10_000, fetch_max_wait_ms=10)
    await consumer.start()
    producers: dict = {}
    plain = kafka.producer(bootstrap) if mode == "plain" else None
    if plain is not None:
        await plain.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            futures, offsets = [], {}
            for tp, messages in batch.items():
                producer = plain
                if producer is None:
                    producer = producers.get(tp)
                    if producer is None:
                        producer = producers[tp] = kafka.transactional_producer(bootstrap, f"{group}.{tp.partition}")
                        await producer.start()
                    await producer.begin_transaction()
                out = producer.create_batch()
                sent = []
                for m in messages:
                    while out.append(key=m.key, value=m.value, timestamp=None) is None:
                        sent.append(await producer.send_batch(out, destination, partition=tp.partition))
                        out = producer.create_batch()
                sent.append(await producer.send_batch(out, destination, partition=tp.partition))
                if plain is None:
                    await asyncio.gather(*sent)
                    await producer.send_offsets_to_transaction({tp: messages[-1].offset + 1}, group)
                    await producer.commit_transaction()
                else:
                    futures += sent
                    offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit(offsets)
    finally:
        await consumer.stop()
        for producer in [plain, *producers.values()]:
            if producer is not None:
                await producer.stop()


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:6]))
