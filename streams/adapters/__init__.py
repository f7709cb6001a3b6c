"""The outside world, each behind a small interface: Kafka clients (``kafka``: every client is built
there), Kafka administration (``kafka_admin``, ``kafka_protocol``), the embedded broker (``broker``,
``kafka_dist``), the Avro codec, TLS material, Prometheus metrics, Grafana dashboards, XML schemas and
input files such as AMeDAS CSVs.

May import config and core; never pipeline, runtime or cli.
"""
