"""The ceiling: a raw aiokafka consume -> produce passthrough that does no work.

Same shape as the hub's worker (batches of up to 2000, one idempotent producer, per-partition batch
sends, offsets committed only after the outputs are acknowledged), minus decoding and processing.
Run as `python -m bench.passthrough BOOTSTRAP SOURCE DESTINATION GROUP`.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def run(bootstrap: str, source: str, destination: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=1 << 20
    )
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            futures, offsets = [], {}
            for tp, messages in batch.items():
                out = producer.create_batch()
                for m in messages:
                    while out.append(key=m.key, value=m.value, timestamp=None) is None:
                        futures.append(await producer.send_batch(out, destination, partition=tp.partition))
                        out = producer.create_batch()
                futures.append(await producer.send_batch(out, destination, partition=tp.partition))
                offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:5]))
