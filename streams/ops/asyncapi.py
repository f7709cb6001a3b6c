"""The AsyncAPI 3 document of every topic (``asyncapi.yaml``), generated from the topic catalog and the Avro schemas.

One channel per catalog entry (its address a template: ``{prefix}.{region}.alerts.{municipality_code}``), with
Kafka bindings (partitions, replicas, cleanup policy, retention) and one message whose payload is the Avro
schema itself (``application/vnd.apache.avro+json;version=1.9.0``) and whose binding says where the schema id
is: the Confluent wire format (``framing: confluent``, the topics clients read, schema registry
``bosai registry serve``) or Avro single-object encoding (the hub's own topics). Operations: what clients
receive, what the hub sends. Pure: the catalog and the schema documents in, a document (plain data) out;
``bosai asyncapi`` writes it and ``--check`` fails when the file differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.kernel.topics import Catalog, TopicTemplate

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
CLIENT_TOPICS = ("alerts", "alerts.public", "alerts.municipality")  # what municipalities, prefecture, public read
PARAMETERS = {
    "prefix": {"description": "The topic namespace (the catalog's prefix; replays use their own).", "default": ""},
    "region": {"description": "A region pack's name (regions/<name>), e.g. tochigi, kanagawa."},
    "municipality_code": {"description": "A municipality's (or ward's) JIS X 0402 code, e.g. 09201."},
    "prefecture_code": {"description": "The prefecture's JIS code, e.g. 09."},
}


def _message_name(template: TopicTemplate) -> str:
    """A message per schema and framing: ``Alert.confluent``, ``DeadLetter``, ``State`` (JSON)."""
    if template.value_schema in ("json", "string"):
        return "State"
    name = template.value_schema.rpartition(".")[2]
    return f"{name}.confluent" if template.framing == "confluent" else name


def _message(template: TopicTemplate, schemas: Mapping[str, Any]) -> dict[str, Any]:
    key = {"type": "string", "description": "UTF-8 text"}
    if template.value_schema == "json":
        return {
            "name": "State",
            "title": "A state document (JSON)",
            "contentType": "application/json",
            "payload": {"type": "object"},
            "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
        }
    confluent = template.framing == "confluent"
    binding: dict[str, Any] = {"key": key, "schemaIdLocation": "payload", "bindingVersion": KAFKA_BINDING}
    if confluent:
        binding["schemaIdPayloadEncoding"] = "confluent"
        binding["schemaLookupStrategy"] = "TopicIdStrategy"
    framing = (
        "Confluent wire format: 00, the schema id (4 bytes, big-endian; the hub's schema registry serves it), the "
        "Avro body. Decode with any Confluent deserializer."
        if confluent
        else "Avro single-object encoding: C3 01, the schema's CRC-64-AVRO fingerprint (8 bytes), the Avro body."
    )
    return {
        "name": _message_name(template).partition(".")[0],
        "title": template.value_schema,
        "summary": framing,
        "contentType": "application/octet-stream",
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": schemas[template.value_schema]},
        "bindings": {"kafka": binding},
    }


def _channel(template: TopicTemplate, catalog: Catalog) -> dict[str, Any]:
    placeholders = [p for p in PARAMETERS if "{" + p + "}" in template.name]
    configs: dict[str, Any] = {
        "cleanup.policy": template.cleanup_policy.split(","),
        "retention.ms": template.retention_ms,
    }
    return {
        "address": template.name,
        "title": template.id,
        "description": template.description.strip()
        + (" One topic per municipality (and ward) of each region pack." if template.for_each else ""),
        "parameters": {
            p: dict(PARAMETERS[p], default=catalog.prefix) if p == "prefix" else dict(PARAMETERS[p])
            for p in placeholders
        },
        "messages": {_message_name(template): {"$ref": f"#/components/messages/{_message_name(template)}"}},
        "bindings": {
            "kafka": {
                "partitions": template.partitions,
                "replicas": catalog.replication_factor,
                "topicConfiguration": configs,
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def document(catalog: Catalog, schemas: Mapping[str, Any], *, version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document: ``schemas`` maps each Avro full name to its schema document (stand-alone)."""
    channels = {t.id: _channel(t, catalog) for t in catalog.templates}
    messages = {_message_name(t): _message(t, schemas) for t in catalog.templates}
    operations: dict[str, Any] = {}
    for template in catalog.templates:
        ref = {"$ref": f"#/channels/{template.id}"}
        message_ref = [{"$ref": f"#/channels/{template.id}/messages/{_message_name(template)}"}]
        operations[f"hubSends.{template.id}"] = {
            "action": "send",
            "channel": ref,
            "summary": f"The hub writes {template.id} (exactly once, in Kafka transactions).",
            "messages": message_ref,
        }
        if template.id in CLIENT_TOPICS:
            operations[f"clientsReceive.{template.id}"] = {
                "action": "receive",
                "channel": ref,
                "summary": f"Clients read {template.id} with their credential (isolation.level=read_committed).",
                "messages": message_ref,
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "bosai hub topics",
            "version": version,
            "description": "Every Kafka topic of the hub (topics/catalog.yaml) and its Avro schema (avro/). "
            "Generated by `bosai asyncapi`; do not edit. Clients read the alert topics on the CLIENTS listener "
            "(SASL/SCRAM-SHA-512 over TLS; `bosai access issue`) and decode them with the schema registry.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/octet-stream",
        "servers": {
            "clients": {
                "host": "{host}",
                "protocol": "kafka-secure",
                "description": "The authenticated listener (CLIENTS); `bosai access issue` names its address.",
                "variables": {"host": {"description": "The hub's public host:port (bosai broker status)."}},
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "The principal's SCRAM credential over TLS (the CA is in the issued config).",
                }
            },
        },
    }
