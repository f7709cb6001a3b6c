"""Every Prometheus metric of the hub, in one place (prometheus-client; one endpoint per worker).

Names follow Prometheus conventions (``bosai_`` prefix, ``_total`` counters, base units); labels
are bounded: region, stage, reason code, rule, level, message type, municipality code (a region
has at most a few dozen), topic kind.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.kernel.batch import BatchResult, ChangeT, StateT
from streams.kernel.messages import OutRecord
from streams.kernel.region import RegionPack

READINGS = Counter("bosai_readings_total", "Readings through each stage.", ["region", "stage"])
DEAD_LETTERS = Counter("bosai_dead_letters_total", "Messages dead-lettered, by reason code.", ["region", "reason"])
ALERT_EVENTS = Counter(
    "bosai_alert_events_total",
    "Alert lifecycle events emitted.",
    ["region", "rule", "level", "msg_type", "municipality"],
)
GEOFENCE_FALLBACKS = Counter(
    "bosai_geofence_fallbacks_total",
    "Readings located by the nearest-municipality fallback (method=nearest) or not at all (none).",
    ["region", "method"],
)
DELIVERED_MESSAGES = Counter(
    "bosai_delivered_messages_total",
    "Messages written per topic kind and municipality.",
    ["region", "topic_kind", "municipality"],
)
DELIVERED_BYTES = Counter(
    "bosai_delivered_bytes_total",
    "Bytes written per topic kind and municipality.",
    ["region", "topic_kind", "municipality"],
)
LATENCY = Histogram(
    "bosai_processing_latency_seconds",
    "Ingest (produced_at) to fan-out acknowledged.",
    ["region"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SECONDS = Histogram(
    "bosai_batch_duration_seconds",
    "Time to process and write one batch.",
    ["region"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_TIME = Gauge("bosai_event_time_seconds", "Latest event time (observed_at) processed, Unix seconds.", ["region"])
EVENT_TIME_LAG = Gauge("bosai_event_time_lag_seconds", "Wall clock minus the latest event time processed.", ["region"])
CONSUMER_LAG = Gauge(
    "bosai_consumer_lag_messages",
    "Input messages of this worker's partitions not yet processed (last stable offset - position); sum over workers.",
    ["region", "topic"],
)
OPEN_ALERTS = Gauge(
    "bosai_open_alerts",
    "Alert episodes open now, by rule, level and the station's municipality.",
    ["region", "rule", "level", "municipality"],
)
STATION_INFO = Gauge(
    "bosai_station_info",
    "Stations of the region pack (value 1), with position for map panels.",
    ["region", "station", "name", "kind", "municipality", "lat", "lon"],
)
WORKER = Info("bosai_worker", "The worker process.")

# Official reports (JMA's 気象庁防災情報XML) through a region's worker; rule is jma_landslide, jma_flood,
# jma_record_rain; outcome applied, duplicate, older, superseded, withdrawn, nothing_to_withdraw,
# other_prefecture (dead letters are counted in bosai_dead_letters_total).
OFFICIAL_REPORTS = Counter(
    "bosai_official_reports_total", "Official reports processed, by rule and outcome.", ["region", "rule", "outcome"]
)
OFFICIAL_AREAS_SKIPPED = Counter(
    "bosai_official_areas_skipped_total", "Areas of other prefectures named in official reports (skipped).", ["region"]
)

# The pollers (bosai jma watch, bosai amedas watch): poller is jma or amedas.
POLL_REQUESTS = Counter(
    "bosai_poll_requests_total",
    "HTTP requests of the pollers by result (ok, not_modified, not_found, http_error, timeout, "
    "connection_error, truncated, too_large).",
    ["poller", "result"],
)
POLL_LAST_SUCCESS = Gauge(
    "bosai_poll_last_success_timestamp_seconds", "Wall-clock time of the poller's last successful poll.", ["poller"]
)
POLL_LAYOUT_ERRORS = Counter(
    "bosai_poll_layout_errors_total",
    "Responses whose layout the poller does not know (JMA changed a file's layout): never silently ignored.",
    ["poller"],
)
JMA_FEED_ENTRIES = Counter(
    "bosai_jma_feed_entries_total",
    "Entries of JMA's Atom feed by what became of them (produced, already_produced, other_title, "
    "other_prefecture, fetch_failed).",
    ["outcome"],
)
AMEDAS_FILES = Counter(
    "bosai_amedas_files_total",
    "AMeDAS 10-minute map files by outcome (produced, empty, missing, layout_error, fetch_failed).",
    ["outcome"],
)
POLLER_RECORDS = Counter("bosai_poller_records_total", "Records the pollers wrote, per region.", ["poller", "region"])

# Webhook sink (bosai sink run): labels are the configured subscriber ids (bounded by the config file).
WEBHOOK_DELIVERIES = Counter(
    "bosai_webhook_deliveries_total",
    "Alert events handed to a subscriber: delivered, or dead_lettered past the retry limit.",
    ["subscriber", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "bosai_webhook_attempts_total", "HTTP delivery attempts by result.", ["subscriber", "result"]
)
WEBHOOK_RETRIES = Counter("bosai_webhook_retries_total", "Attempts after the first one.", ["subscriber"])
WEBHOOK_LATENCY = Histogram(
    "bosai_webhook_delivery_latency_seconds",
    "Alert written to its topic to acknowledged by the subscriber (2xx).",
    ["subscriber"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WEBHOOK_LAG = Gauge(
    "bosai_webhook_consumer_lag_messages", "Alert events not yet handled per subscriber.", ["subscriber"]
)

# E-mail and chat channels of the sink (bosai sink run): labels are the configured channel ids and their kind
# (email, teams, slack, lineworks, template), bounded by the config file. Never an address or a URL.
CHANNEL_DELIVERIES = Counter(
    "bosai_channel_deliveries_total",
    "Alert events handed to an e-mail or chat channel: delivered, or dead_lettered (permanent or past the retries).",
    ["kind", "channel", "outcome"],
)
CHANNEL_ATTEMPTS = Counter(
    "bosai_channel_attempts_total",
    "Delivery attempts by result: ok, smtp_4xx, smtp_5xx, http_4xx, http_429, http_5xx, timeout, connection, "
    "template (every result but ok is a failure).",
    ["kind", "channel", "result"],
)
CHANNEL_RETRIES = Counter("bosai_channel_retries_total", "Attempts after the first one.", ["kind", "channel"])
CHANNEL_SUPPRESSED = Counter(
    "bosai_channel_suppressed_recipients_total",
    "Recipients skipped because their address is on the suppression list (bounces, unsubscribes).",
    ["channel"],
)
CHANNEL_REFUSED = Counter(
    "bosai_channel_refused_recipients_total",
    "Recipients the SMTP relay refused for good (5xx) while the message went to the others.",
    ["channel"],
)

# Orion bridge (bosai bridge orion): labels are the configured Orion ids (bounded by the bridge file).
ORION_ENTITIES = Counter(
    "bosai_orion_entities_total",
    "Entities for an Orion: sent, dead_lettered, superseded (it has something newer), not_visible (not its to see).",
    ["orion", "entity_type", "outcome"],
)
ORION_REQUESTS = Counter(
    "bosai_orion_requests_total",
    "NGSI-v2 batch updates by result (ok, http_4xx, http_5xx, timeout, connection).",
    ["orion", "result"],
)
ORION_RETRIES = Counter("bosai_orion_retries_total", "Batch update attempts after the first one.", ["orion"])
ORION_LATENCY = Histogram(
    "bosai_orion_delivery_latency_seconds",
    "Event written to its topic to accepted by the Orion (204).",
    ["orion"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ORION_LAG = Gauge(
    "bosai_orion_consumer_lag_messages", "Alert events and readings not yet handled per Orion.", ["orion"]
)

# Every delivery connector (streams.delivery.connector): webhooks (stage sink.webhook), Orions (bridge.orion),
# e-mail and chat channels, whatever their own metrics; target is the configured id (bounded by the config).
DELIVERY_OUTCOMES = Counter(
    "bosai_delivery_outcomes_total",
    "Messages a delivery target handled, by outcome: delivered, dead_lettered (failed past its retries).",
    ["stage", "target", "outcome"],
)
DELIVERY_LAG = Gauge(
    "bosai_delivery_consumer_lag_messages",
    "Messages waiting for a delivery target (its consumer group).",
    ["stage", "target"],
)

# The archiver (`bosai archive`): what it has not archived yet, and when it last committed. The alert
# BosaiArchiveFallingBehind (deploy/prometheus/rules.yml) watches both; the archiver sets them.
ARCHIVE_LAG = Gauge(
    "bosai_archive_lag_messages", "Records of an archived topic not yet in the archive (committed offsets).", ["topic"]
)
ARCHIVE_LAST_WRITE = Gauge(
    "bosai_archive_last_write_timestamp_seconds", "Wall-clock time of the archiver's last committed write, Unix s."
)

# Gateway (bosai gateway): door is readings or orion; subject an owner or Orion id of the config files.
REGISTRY_REQUESTS = Counter(
    "bosai_registry_requests_total",
    "Schema registry requests (bosai registry serve) by route and status code.",
    ["route", "status"],
)
GATEWAY_REQUESTS = Counter("bosai_gateway_requests_total", "HTTP requests by door and status code.", ["door", "status"])
GATEWAY_READINGS = Counter(
    "bosai_gateway_readings_total",
    "Readings received by door and subject: accepted (on Kafka) or invalid (dead-lettered).",
    ["door", "subject", "outcome"],
)
GATEWAY_ACCEPT_SECONDS = Histogram(
    "bosai_gateway_accept_seconds",
    "Request received to answered 2xx (the readings acknowledged by Kafka, acks=all).",
    ["door"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Logins at the HTTP doors: door is feed (bosai feed), gateway (POST /v1/readings) or orion (Orion
# notifications). Never a principal, token or address as a label value: unbounded, and secrets have no
# place in labels.
LOGIN_FAILURES = Counter(
    "bosai_login_failures_total",
    "Refused logins by door and outcome: wrong (checked), cached (wrong, answered from the failure cache), "
    "unknown (no such user or token), malformed, limited (429 before any check).",
    ["door", "outcome"],
)
LOGIN_LIMITED = Counter(
    "bosai_login_limited_total",
    "Logins answered 429, by reason: pair (address and principal), address, handshakes (the broker budget).",
    ["door", "reason"],
)
LOGIN_SUCCESSES = Counter(
    "bosai_login_successes_total", "Accepted logins by door and source (checked, cached).", ["door", "source"]
)
LOGIN_HANDSHAKES = Counter(
    "bosai_login_handshakes_total",
    "SCRAM handshakes sent to the broker to check a login, by result (accepted, refused, error).",
    ["door", "result"],
)
LOGIN_TRACKED = Gauge("bosai_login_tracked_keys", "Entries the door's login limits hold now (bounded).", ["door"])

# The residents' map (bosai web): labels are fixed code lists.
WEB_CLIENTS = Gauge("bosai_web_live_clients", "Pages connected to the live stream now.")
WEB_EVENTS = Counter("bosai_web_events_total", "Live-stream events sent, by kind (alerts, stations).", ["kind"])
WEB_DROPPED = Counter(
    "bosai_web_dropped_clients_total",
    "Live clients ended by the server: slow (queue full), write_timeout, refused (too many), shutdown.",
    ["reason"],
)
WEB_IGNORED = Counter(
    "bosai_web_ignored_records_total",
    "Records the map did not show: undecodable, or not public (sharing level, status, station).",
    ["topic_kind", "reason"],
)

SILENCE_LIMIT_S = 3600.0


def worker_info(region: str, app_id: str) -> None:
    from streams import __version__

    WORKER.info({"region": region, "app_id": app_id, "version": __version__, "python": platform.python_version()})


def serve(port: int, host: str = "127.0.0.1") -> int:
    """Start the process's endpoint (/metrics, /healthz, /readyz: :mod:`streams.platform.health`); port 0 picks
    a free one. Returns the port."""
    from streams.platform import health

    return health.serve(port, host)


def observe_batch(
    region: str,
    result: BatchResult[StateT, ChangeT],
    *,
    started_s: float,
    finished_s: float,
    bytes_written: int,
    records: Sequence[OutRecord],
) -> None:
    dead = sum(result.dead_letters.values())
    READINGS.labels(region, "received").inc(result.readings_valid + dead)
    READINGS.labels(region, "valid").inc(result.readings_valid)
    READINGS.labels(region, "missing_value").inc(result.readings_missing)
    READINGS.labels(region, "stale").inc(result.readings_stale)
    if result.geofence_nearest:
        GEOFENCE_FALLBACKS.labels(region, "nearest").inc(result.geofence_nearest)
    if result.geofence_none:
        GEOFENCE_FALLBACKS.labels(region, "none").inc(result.geofence_none)
    _observe_outputs(region, result, records)
    BATCH_SECONDS.labels(region).observe(finished_s - started_s)
    for produced_ms in result.produced_at:
        LATENCY.labels(region).observe(max(0.0, finished_s - produced_ms / 1000))
    if result.event_time_max is not None:
        EVENT_TIME.labels(region).set(result.event_time_max / 1000)
        EVENT_TIME_LAG.labels(region).set(time.time() - result.event_time_max / 1000)


def observe_official_batch(
    region: str,
    result: BatchResult[StateT, ChangeT],
    *,
    started_s: float,
    finished_s: float,
    bytes_written: int,
    records: Sequence[OutRecord],
) -> None:
    """A batch of official reports: outcomes per rule, skipped areas, dead letters, alert events, deliveries."""
    for key, count in result.reports.items():
        rule, _, outcome = key.partition("/")
        OFFICIAL_REPORTS.labels(region, rule, outcome).inc(count)
    if result.areas_skipped:
        OFFICIAL_AREAS_SKIPPED.labels(region).inc(result.areas_skipped)
    _observe_outputs(region, result, records)
    BATCH_SECONDS.labels(region).observe(finished_s - started_s)


def _observe_outputs(region: str, result: BatchResult[StateT, ChangeT], records: Sequence[OutRecord]) -> None:
    """Dead letters, alert events and what was delivered where (both pipelines)."""
    for reason, count in result.dead_letters.items():
        DEAD_LETTERS.labels(region, reason).inc(count)
    for out in result.alerts:
        alert = out.record
        for code in alert["municipality_codes"]:
            ALERT_EVENTS.labels(region, alert["rule"], alert["level"], alert["msg_type"], code).inc()
    per_topic: dict[str, list[int]] = {}
    for record in records:
        tally = per_topic.setdefault(record.topic, [0, 0])
        tally[0] += 1
        tally[1] += len(record.value) + len(record.key)
    for topic, (count, size) in per_topic.items():
        kind, municipality = _topic_kind(topic)
        DELIVERED_MESSAGES.labels(region, kind, municipality).inc(count)
        DELIVERED_BYTES.labels(region, kind, municipality).inc(size)


def _topic_kind(topic: str) -> tuple[str, str]:
    tail = topic.rsplit(".", 2)
    if tail[-1].isdigit():
        return "alerts_municipality", tail[-1]
    if tail[-1] == "public":
        return "alerts_public", ""
    return tail[-1], ""


class StationClock:
    """Latest event time per station, for the silence gauges, exported when Prometheus scrapes.

    Silence is measured in event time against the region's latest reading, so a replay at any speed
    reads the same as live operation; a station never heard from counts from the first event time
    seen. A batch only updates numbers here; the per-station series are built at scrape time (with
    100,000 stations, setting 200,000 gauge children every second took a third of a worker's time).
    """

    def __init__(self, region: str, station_ids: Iterable[str]):
        self.region = region
        self.last: dict[str, float | None] = {sid: None for sid in station_ids}
        self.first: float | None = None
        self.latest: float | None = None
        _STATION_CLOCKS.clocks[region] = self

    def update(self, readings_by_station: Mapping[str, int]) -> None:
        last = self.last
        for station_id, observed_ms in readings_by_station.items():
            seconds = observed_ms / 1000
            known = last.get(station_id)
            if known is None or seconds > known:
                last[station_id] = seconds
        if readings_by_station:
            times = [ms / 1000 for ms in readings_by_station.values()]
            low, high = min(times), max(times)
            self.first = low if self.first is None else min(self.first, low)
            self.latest = high if self.latest is None else max(self.latest, high)

    def export(self, silence: GaugeMetricFamily, last_reading: GaugeMetricFamily, silent: GaugeMetricFamily) -> None:
        silent_count = 0
        if self.latest is not None and self.first is not None:  # both set by the first update
            latest, first = self.latest, self.first
            for station_id, seconds in list(self.last.items()):
                since = seconds if seconds is not None else first
                silence.add_metric([self.region, station_id], latest - since)
                if seconds is not None:
                    last_reading.add_metric([self.region, station_id], seconds)
                silent_count += latest - since > SILENCE_LIMIT_S
        silent.add_metric([self.region], silent_count)


class _StationClocks(Collector):
    """The regions' station clocks as three metric families, built on each scrape."""

    def __init__(self) -> None:
        self.clocks: dict[str, StationClock] = {}

    def describe(self) -> list[Metric]:
        return []  # built at scrape time; one instance per process, so no name can clash

    def collect(self) -> Iterable[GaugeMetricFamily]:
        silence = GaugeMetricFamily(
            "bosai_station_silence_seconds",
            "Event time since each station's latest reading, against the region's latest event time.",
            labels=["region", "station"],
        )
        last_reading = GaugeMetricFamily(
            "bosai_station_last_reading_timestamp_seconds",
            "Event time of each station's latest reading, Unix seconds.",
            labels=["region", "station"],
        )
        silent = GaugeMetricFamily(
            "bosai_silent_stations", "Stations without a reading for over an hour of event time.", labels=["region"]
        )
        for clock in list(self.clocks.values()):
            clock.export(silence, last_reading, silent)
        return [silence, last_reading, silent]


_STATION_CLOCKS = _StationClocks()
REGISTRY.register(_STATION_CLOCKS)


def initialise(pack: RegionPack, *, dead_letter_reasons: Iterable[str], official_rules: Iterable[str]) -> None:
    """Create every bounded label set at 0, so dashboards and rules see series before the first event
    (the reasons a reading is refused for, and the rules of relayed official reports, are the features')."""
    for stage in ("received", "valid", "missing_value", "stale"):
        READINGS.labels(pack.name, stage)
    for reason in dead_letter_reasons:
        DEAD_LETTERS.labels(pack.name, reason)
    for official_rule in official_rules:
        OFFICIAL_REPORTS.labels(pack.name, official_rule, "applied")
    OFFICIAL_AREAS_SKIPPED.labels(pack.name)
    for method in ("nearest", "none"):
        GEOFENCE_FALLBACKS.labels(pack.name, method)
    # rules x levels x municipalities with stations: a few hundred series per region, all at 0
    for code in {s.municipality_code for s in pack.stations.values()}:
        for rule in pack.rules.rules:
            for level in rule.levels:
                OPEN_ALERTS.labels(pack.name, rule.id, level.name, code).set(0)


def station_info(pack: RegionPack) -> None:
    for station in pack.stations.values():
        STATION_INFO.labels(
            pack.name,
            station.station_id,
            station.name,
            station.kind.value,
            station.municipality_code,
            f"{station.lat:.5f}",
            f"{station.lon:.5f}",
        ).set(1)
