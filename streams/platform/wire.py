"""The framing of each topic's Avro values: single-object encoding, or the Confluent wire format.

``topics/catalog.yaml`` says per topic (``framing``): the topics clients read (every alert topic of a
region: prefecture, municipalities, public) carry the Confluent wire format, ``00`` + the schema's id +
the Avro body, which Confluent's deserializers, ``kcat -s avro`` and Kafka UIs decode with a schema registry;
the hub's own topics keep single-object encoding. The body is the same either way: a payload encoded once
(single-object, :class:`streams.platform.avro.AvroCodec`) is given each topic's header here
(:meth:`TopicFraming.frame`), so an alert written to many topics is still encoded once.

The id is the hub's own (:attr:`AvroSchema.registry_id`, what ``bosai registry serve`` serves), known without
asking anyone; with a deployment's own registry (``BOSAI_SCHEMA_REGISTRY_URL``) it is that registry's id of
the schema under the subject ``<topic>-value`` (TopicNameStrategy), looked up or registered once per topic
(:meth:`TopicFraming.prepare` asks for them all when a worker starts, before the first batch).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from streams.platform.avro import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, AvroSchema, CodecError, SchemaStore

_SO_HEADER = len(SINGLE_OBJECT_MAGIC) + 8


def subject_of(topic: str) -> str:
    """The subject of a topic's values under the TopicNameStrategy."""
    return f"{topic}-value"


class TopicFraming:
    """Each topic's header for each schema (cached), and payloads re-framed for their topic."""

    def __init__(self, store: SchemaStore, confluent_topics: Iterable[str]):
        self.store = store
        self.confluent = frozenset(confluent_topics)
        self._headers: dict[tuple[str, bytes], bytes] = {}

    def header(self, topic: str, schema: AvroSchema) -> bytes:
        key = (topic, schema.fingerprint)
        header = self._headers.get(key)
        if header is None:
            if topic not in self.confluent:
                header = SINGLE_OBJECT_MAGIC + schema.fingerprint
            elif self.store.registry is None:
                header = CONFLUENT_MAGIC + struct.pack(">I", schema.registry_id)
            else:
                header = CONFLUENT_MAGIC + struct.pack(">I", self.store.registry.register(subject_of(topic), schema))
            self._headers[key] = header
        return header

    def prepare(self, topics: Iterable[str], schema: AvroSchema) -> None:
        """Every header these topics will need (with a deployment's registry: its ids, asked for now)."""
        for topic in topics:
            self.header(topic, schema)

    def frame(self, payload: bytes, topic: str, schema: AvroSchema) -> bytes:
        """A single-object-encoded payload of ``schema`` with ``topic``'s header."""
        if topic not in self.confluent:
            return payload
        if payload[:_SO_HEADER] != SINGLE_OBJECT_MAGIC + schema.fingerprint:
            raise CodecError("bad_magic", f"not a single-object-encoded {schema.name} to frame for {topic}")
        return self.header(topic, schema) + payload[_SO_HEADER:]
