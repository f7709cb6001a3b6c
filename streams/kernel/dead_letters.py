"""The dead-letter record: a refused input, kept whole with why, where and by whom (pure).

Every stage that refuses a message — a pipeline, a delivery connector, the gateway — builds its
``DeadLetter`` record (``avro/DeadLetter.avsc``) with :func:`dead_letter_record`, so an operator reads one
shape on every dead-letter topic and ``redrive`` can send the original bytes again.
"""

from __future__ import annotations

from streams.kernel.messages import AvroRecord, InMessage, Message

Origin = Message  # where a refused message came from (a consumed Kafka record, or an HTTP request's item)


def dead_letter_record(
    origin: Origin, *, reason: str, detail: str, stage: str, failed_at: int, worker: str
) -> AvroRecord:
    """The DeadLetter record of a refused message: its original bytes, where they came from, why, by whom."""
    return {
        "reason": reason,
        "error_detail": detail,
        "stage": stage,
        "source_topic": origin.topic,
        "source_partition": origin.partition,
        "source_offset": origin.offset,
        "source_timestamp": origin.timestamp,
        "original_key": origin.key,
        "original_value": origin.value,
        "failed_at": failed_at,
        "worker": worker,
    }


def origin_of(record: AvroRecord) -> InMessage:
    """A dead-lettered message as it was first read (what a redrive delivers, and may dead-letter again)."""
    return InMessage(
        record["source_topic"],
        record["source_partition"],
        record["source_offset"],
        record["original_key"],
        record["original_value"],
        record["source_timestamp"],
    )
