"""Messages in and records out, as plain values (named tuples: one per reading, cheap): what the
pipeline reads and writes.

The adapters move them to and from Kafka; nothing here knows a client.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

# A record as fastavro writes and reads it: field name -> value, as its schema (``avro/``) says. The values'
# Python types follow the schema (str, int, None, nested records and arrays): honestly ``Any`` to the checker.
AvroRecord = dict[str, Any]


class Message(Protocol):
    """A consumed message as the pipelines read it: an :class:`InMessage`, aiokafka's ``ConsumerRecord``
    (which has these fields and more: the worker hands a fetched batch over without a copy), or an HTTP
    request's item standing for one (the gateway)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class InMessage(NamedTuple):
    """A consumed message: where it came from, and its key and value bytes as they arrived.

    The fields are named as in aiokafka's ``ConsumerRecord`` (which has these and more), so the worker
    hands a fetched batch to a pipeline as it is, without a copy per message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None  # the Kafka timestamp, ms


class OutRecord(NamedTuple):
    """A record to write. Its Kafka timestamp is the write time (None), never the event time: topic
    retention runs on record timestamps, and replayed 2023 events must not expire on arrival."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int | None = None
    partition: int | None = None  # None: the key's partition (murmur2, as every Kafka client does)
