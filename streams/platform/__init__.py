"""The Kafka platform and the process environment: everything features share that touches the outside world.

Settings and files (``settings``, ``yamlfile`` the one YAML reader, ``checks`` the one place for "file + key +
what was expected", ``durations``, ``secret_files``, ``kafka_security``, ``topic_catalog``); Kafka clients
(``kafka``: every client is built there; ``kafka_errors`` tells their errors apart, ``kafka_retry`` retries
through an outage within the patience), administration (``kafka_admin``, ``kafka_protocol``), the embedded
broker (``broker``, ``kafka_node``, ``kafka_dist``, ``hardening``, ``tls``), the Avro codec (``avro``), every
Prometheus metric (``metrics``), the health endpoint beside them (``health``, ``cert_expiry``) and the
pollers' HTTP (``http_fetch``).
"""

__requires__ = ()

__layers__ = {
    "pure": ["avro_text", "schema_registry", "kafka_errors"],
    "files": [
        "access_file",
        "settings",
        "yamlfile",
        "checks",
        "durations",
        "secret_files",
        "kafka_security",
        "topic_catalog",
        "openapi_docs",
    ],
    "io": [
        "kafka_retry",
        "kafka_protocol",
        "kafka",
        "kafka_admin",
        "kafka_dist",
        "kafka_node",
        "tls",
        "hardening",
        "broker",
        "avro",
        "metrics",
        "cert_expiry",
        "health",
        "http_fetch",
        "wire",
        "registry_client",
        "registry_process",
        "described",
        "conditional_get",
    ],
}
