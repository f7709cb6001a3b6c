"""A principal's client configuration, as ``bosai access issue`` writes it: self-contained, for another machine.

Everything a municipality's client needs is in the file: the public bootstrap address, the SCRAM credential,
the CA certificate itself (not a path on the operator's machine), the consumer group prefix, read_committed,
and the schema registry to decode the alert topics with (Confluent wire format). Three forms of one credential:

- ``json`` — for confluent-kafka (Python; librdkafka's property names, so Go and .NET too):
  ``{"kafka": {…}, "schema_registry": {"url": …}, "topics": […], …}``; ``Consumer(config["kafka"] | …)`` and
  ``SchemaRegistryClient(config["schema_registry"])``, with the CA inline as ``ssl.ca.pem``.
- ``properties`` — Java clients (kafka-console-consumer, Kafka Connect, Spring …): the CA inline as
  ``ssl.truststore.certificates`` with ``ssl.truststore.type=PEM``; ``schema.registry.url`` for Confluent's
  ``KafkaAvroDeserializer``.
- ``librdkafka`` — a ``key=value`` file for ``kcat -F`` (librdkafka ≥ 2.6.1). kcat reads lines of at most 511
  bytes and librdkafka needs a PEM's line breaks, so this form names the CA file written beside it
  (``ssl.ca.location``); the registry is in a comment (a kcat built without Avro refuses the key).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from streams.kernel.access import Principal


def _registry(url: str | None) -> dict[str, str] | None:
    """The registry as confluent-kafka's SchemaRegistryClient takes it: credentials in a URL become
    ``basic.auth.user.info``."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return {"url": url}
    bare = parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else ""))
    user_info = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return {"url": urllib.parse.urlunsplit(bare), "basic.auth.user.info": user_info}


def client_config(
    principal: Principal, password: str, *, clients_bootstrap: str, ca_pem: str, registry_url: str | None = None
) -> dict[str, Any]:
    """What a municipality's IT staff need to connect and decode (the JSON form of ``bosai access issue``)."""
    return {
        "principal": principal.name,
        "description": principal.description,
        "topics": principal.readable_topics(),
        "group_prefix": principal.group_prefix,
        "kafka": {
            "bootstrap.servers": clients_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": principal.name,
            "sasl.password": password,
            "ssl.ca.pem": ca_pem,
            "group.id": f"{principal.group_prefix}alerts",
            "isolation.level": "read_committed",
        },
        "schema_registry": _registry(registry_url),
    }


def render_json(config: dict[str, Any], _principal: Principal | None = None) -> str:
    return json.dumps(config, ensure_ascii=False, indent=2) + "\n"


def _header(config: dict[str, Any]) -> str:
    return (
        f"# bosai hub credential for {config['principal']} ({config['description']})\n"
        f"# Shown once: store the password in your secret store. Rotate with `bosai access issue` again.\n"
    )


def _footer(config: dict[str, Any]) -> str:
    topics = "\n".join(f"#   {t}" for t in config["topics"]) or "#   (none)"
    return (
        f"# consumer groups must start with {config['group_prefix']}\n"
        f"# read only committed records (isolation.level=read_committed)\n"
        f"# values: Avro in the Confluent wire format; schemas from the schema registry\n"
        f"# topics this principal may read:\n{topics}\n"
    )


def _java_escape(text: str) -> str:
    """A value for a Java .properties file on one line (Properties.load turns \\n back into line breaks)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render_librdkafka(config: dict[str, Any], ca_location: str) -> str:
    """A ``key=value`` file for ``kcat -F`` (librdkafka 2.6.1 or newer), the CA in the file ``ca_location``."""
    kafka, registry = config["kafka"], config["schema_registry"]
    url = registry["url"] if registry else ""
    note = f"# schema registry: {url} (a kcat built with Avro: kcat -F <this> -s value=avro -r {url})\n" if url else ""
    return (
        _header(config)
        + "# librdkafka >= 2.6.1: older versions send a SCRAM nonce Kafka 4 rejects (confluentinc/librdkafka#4895)\n"
        + f"# the CA certificate is the file {ca_location} (kcat reads lines of at most 511 bytes: no PEM inline)\n"
        + note
        + "".join(f"{key}={value}\n" for key, value in kafka.items() if key != "ssl.ca.pem")
        + f"ssl.ca.location={ca_location}\n"
        + _footer(config)
    )


def render_client_properties(config: dict[str, Any], _principal: Principal | None = None) -> str:
    """The same as Java Kafka client properties, the CA inline (``ssl.truststore.certificates``, PEM)."""
    kafka, registry = config["kafka"], config["schema_registry"]
    lines = [
        f"bootstrap.servers={kafka['bootstrap.servers']}",
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{kafka["sasl.username"]}" password="{kafka["sasl.password"]}";',
        "ssl.truststore.type=PEM",
        f"ssl.truststore.certificates={_java_escape(kafka['ssl.ca.pem'])}",
        f"group.id={kafka['group.id']}",
        "isolation.level=read_committed",
    ]
    if registry:
        lines.append(f"schema.registry.url={registry['url']}")
        if "basic.auth.user.info" in registry:
            user_info = registry["basic.auth.user.info"]
            lines += ["basic.auth.credentials.source=USER_INFO", f"basic.auth.user.info={user_info}"]
    return _header(config) + "\n".join(lines) + "\n" + _footer(config)
