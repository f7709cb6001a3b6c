"""Every Prometheus metric of the hub, in one place (prometheus-client; one endpoint per worker).

Names follow Prometheus conventions (``bosai_`` prefix, ``_total`` counters, base units); labels
are bounded: region, stage, reason code, rule, level, message type, municipality code (a region
has at most a few dozen), topic kind.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

READINGS = Counter("bosai_readings_total", "Readings through each stage.", ["region", "stage"])
DEAD_LETTERS = Counter("bosai_dead_letters_total", "Messages dead-lettered, by reason code.", ["region", "reason"])
ALERT_EVENTS = Counter("bosai_alert_events_total", "Alert lifecycle events emitted.",
                       ["region", "rule", "level", "msg_type", "municipality"])
GEOFENCE_FALLBACKS = Counter("bosai_geofence_fallbacks_total",
                             "Readings located by the nearest-municipality fallback (method=nearest) or not at all (none).",
                             ["region", "method"])
DELIVERED_MESSAGES = Counter("bosai_delivered_messages_total", "Messages written per topic kind and municipality.",
                             ["region", "topic_kind", "municipality"])
DELIVERED_BYTES = Counter("bosai_delivered_bytes_total", "Bytes written per topic kind and municipality.",
                          ["region", "topic_kind", "municipality"])
LATENCY = Histogram("bosai_processing_latency_seconds", "Ingest (produced_at) to fan-out acknowledged.",
                    ["region"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
BATCH_SECONDS = Histogram("bosai_batch_duration_seconds", "Time to process and write one batch.", ["region"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
EVENT_TIME = Gauge("bosai_event_time_seconds", "Latest event time (observed_at) processed, Unix seconds.", ["region"])
EVENT_TIME_LAG = Gauge("bosai_event_time_lag_seconds", "Wall clock minus the latest event time processed.", ["region"])
WORKER = Info("bosai_worker", "The worker process.")


def worker_info(region: str, app_id: str) -> None:
    from streams import __version__

    WORKER.info({"region": region, "app_id": app_id, "version": __version__, "python": platform.python_version()})


def serve(port: int) -> int:
    """Start the /metrics endpoint; port 0 picks a free one. Returns the port."""
    server, _thread = start_http_server(port, addr="127.0.0.1")
    return server.server_port


def observe_batch(region: str, result, *, started_s: float, finished_s: float, bytes_written: int,
                  records: Sequence) -> None:
    dead = sum(result.dead_letters.values())
    READINGS.labels(region, "received").inc(result.readings_valid + dead)
    READINGS.labels(region, "valid").inc(result.readings_valid)
    READINGS.labels(region, "missing_value").inc(result.readings_missing)
    READINGS.labels(region, "stale").inc(result.readings_stale)
    for reason, count in result.dead_letters.items():
        DEAD_LETTERS.labels(region, reason).inc(count)
    if result.geofence_nearest:
        GEOFENCE_FALLBACKS.labels(region, "nearest").inc(result.geofence_nearest)
    if result.geofence_none:
        GEOFENCE_FALLBACKS.labels(region, "none").inc(result.geofence_none)
    for out in result.alerts:
        t = out.transition
        for code in out.record["municipality_codes"]:
            ALERT_EVENTS.labels(region, t.rule.id, t.level.name, t.msg_type, code).inc()
    per_topic: dict[str, list[int]] = {}
    for record in records:
        tally = per_topic.setdefault(record.topic, [0, 0])
        tally[0] += 1
        tally[1] += len(record.value) + len(record.key)
    for topic, (count, size) in per_topic.items():
        kind, municipality = _topic_kind(topic)
        DELIVERED_MESSAGES.labels(region, kind, municipality).inc(count)
        DELIVERED_BYTES.labels(region, kind, municipality).inc(size)
    BATCH_SECONDS.labels(region).observe(finished_s - started_s)
    for produced_ms in result.produced_at:
        LATENCY.labels(region).observe(max(0.0, finished_s - produced_ms / 1000))
    if result.event_time_max is not None:
        EVENT_TIME.labels(region).set(result.event_time_max / 1000)
        EVENT_TIME_LAG.labels(region).set(time.time() - result.event_time_max / 1000)


def _topic_kind(topic: str) -> tuple[str, str]:
    tail = topic.rsplit(".", 2)
    if tail[-1].isdigit():
        return "alerts_municipality", tail[-1]
    if tail[-1] == "public":
        return "alerts_public", ""
    return tail[-1], ""
