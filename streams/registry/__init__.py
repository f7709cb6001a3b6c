"""The schema registry: a Confluent-compatible, read-only Schema Registry API over the hub's ``avro/`` schemas
(``server``), so standard Avro tooling (confluent-kafka's AvroDeserializer, Kafka UI, Java's KafkaAvroDeserializer)
decodes the alert topics clients read. Subjects and ids are ``streams.platform.schema_registry``'s (stable, from
the schemas' fingerprints); ``bosai broker up`` starts it beside the embedded broker.
"""

__requires__ = ("platform",)

__layers__ = {"process": ["server"]}
