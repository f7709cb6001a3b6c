"""A principal's client configuration, as ``bosai access issue`` prints it (JSON or Kafka properties).

Kafka properties work for the Java client, librdkafka-based clients (kcat, confluent-kafka) from 2.6.1
on, and anything that reads ``client.properties``; see docs/municipalities.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from streams.kernel.access import Principal


class ClientConfig(TypedDict):
    """What a municipality's client needs to connect (``bosai access issue --format json``)."""

    principal: str
    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str
    ca_file: str
    group_prefix: str
    topics: list[str]


def client_config(principal: Principal, password: str, *, clients_bootstrap: str, ca_file: Path | str) -> ClientConfig:
    """What a municipality's IT staff need to connect (the JSON form of ``bosai access issue``)."""
    return {
        "principal": principal.name,
        "bootstrap_servers": clients_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "username": principal.name,
        "password": password,
        "ca_file": str(ca_file),
        "group_prefix": principal.group_prefix,
        "topics": principal.readable_topics(),
    }


def _header(config: ClientConfig, principal: Principal) -> str:
    return (
        f"# bosai hub credential for {principal.name} ({principal.description})\n"
        f"# Shown once: store the password in your secret store. Rotate with `bosai access issue` again.\n"
    )


def _footer(config: ClientConfig) -> str:
    topics = "\n".join(f"#   {t}" for t in config["topics"]) or "#   (none)"
    return (
        f"# consumer groups must start with {config['group_prefix']}\n"
        f"# read only committed records (isolation.level=read_committed)\n"
        f"# topics this principal may read:\n{topics}\n"
    )


def render_librdkafka(config: ClientConfig, principal: Principal) -> str:
    """The same for librdkafka-based clients (kcat -F, confluent-kafka): librdkafka 2.6.1 or newer."""
    return (
        _header(config, principal)
        + "# librdkafka >= 2.6.1: older versions send a SCRAM nonce Kafka 4 rejects (confluentinc/librdkafka#4895)\n"
        f"bootstrap.servers={config['bootstrap_servers']}\n"
        f"security.protocol=SASL_SSL\n"
        f"sasl.mechanisms=SCRAM-SHA-512\n"
        f"sasl.username={config['username']}\n"
        f"sasl.password={config['password']}\n"
        f"ssl.ca.location={config['ca_file']}\n"
        f"group.id={config['group_prefix']}alerts\n"
        f"isolation.level=read_committed\n" + _footer(config)
    )


def render_client_properties(config: ClientConfig, principal: Principal) -> str:
    """The same as Java Kafka client properties (kafka-console-consumer, Kafka Connect, Spring …)."""
    return (
        _header(config, principal) + f"bootstrap.servers={config['bootstrap_servers']}\n"
        f"security.protocol=SASL_SSL\n"
        f"sasl.mechanism=SCRAM-SHA-512\n"
        f"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{config["username"]}" password="{config["password"]}";\n'
        f"ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={config['ca_file']}\n"
        f"group.id={config['group_prefix']}alerts\n"
        f"isolation.level=read_committed\n" + _footer(config)
    )
