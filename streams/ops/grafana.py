"""Grafana dashboards as code, built with the grafana-foundation-sdk builders.

`bosai dashboards` writes them to deploy/grafana/dashboards/*.json (committed; a test checks that the
committed JSON is what this module generates). Every query is PromQL over the metrics in
streams/metrics.py; the Prometheus test evaluates each one against a real Prometheus scraping a hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE_UID = "bosai-prometheus"
REGION = 'region=~"$region"'


def _sdk() -> tuple[Any, ...]:
    try:
        from grafana_foundation_sdk.builders import bargauge, dashboard, geomap, prometheus, stat, table, timeseries
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.models import dashboard as models
        from grafana_foundation_sdk.models.prometheus import PromQueryFormat
    except ImportError as exc:  # a dev tool: the hub itself does not need it
        raise SystemExit("grafana-foundation-sdk is not installed: pip install -e '.[test]'") from exc
    return bargauge, dashboard, geomap, prometheus, stat, table, timeseries, JSONEncoder, models, PromQueryFormat


def _builders() -> tuple[Any, ...]:
    bargauge, dashboard, geomap, prometheus, stat, table, timeseries, _, models, fmt = _sdk()
    source = models.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

    def query(expr: str, legend: str = "", *, instant: bool = False, as_table: bool = False) -> Any:
        q = prometheus.Dataquery().expr(expr).datasource(source)
        if legend:
            q = q.legend_format(legend)
        if instant:
            q = q.instant()
        if as_table:
            q = q.format(fmt.TABLE)
        return q

    def base(title: str, uid: str, tags: list[str]) -> Any:
        region = (
            dashboard.QueryVariable("region")
            .label("Region")
            .datasource(source)
            .query("label_values(bosai_readings_total, region)")
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
        return (
            dashboard.Dashboard(title)
            .uid(uid)
            .tags(["bosai", *tags])
            .refresh("10s")
            .time("now-3h", "now")
            .timezone("browser")
            .with_variable(region)
        )

    def ts(title: str, unit: str, *targets: Any, description: str = "") -> Any:
        panel = timeseries.Panel().title(title).unit(unit).span(12).height(8).datasource(source)
        for target in targets:
            panel = panel.with_target(target)
        return panel.description(description) if description else panel

    return base, ts, query, stat, table, geomap, bargauge, source


def _with_panels(board: Any, panels: list[Any]) -> Any:
    for panel in panels:
        board = board.with_panel(panel)
    return board


def _station_map(geomap: Any, query: Any, source: Any) -> Any:
    from grafana_foundation_sdk.builders import common
    from grafana_foundation_sdk.models.common import FrameGeometrySourceMode as mode

    markers = (
        common.MapLayerOptions()
        .type("markers")
        .name("Stations")
        .tooltip(True)
        .location(common.FrameGeometrySource().mode(mode.COORDS).latitude("lat").longitude("lon"))
    )
    return (
        geomap.Panel()
        .title("Stations")
        .span(12)
        .height(10)
        .datasource(source)
        .view(geomap.MapViewConfig().id("coords").lat(36).lon(139).zoom(7))
        .basemap(common.MapLayerOptions().type("default").name("Basemap"))
        .layers([markers])
        .with_target(query(f"bosai_station_info{{{REGION}}}", instant=True, as_table=True))
    )


def overview() -> Any:
    base, ts, query, stat, table, geomap, bargauge, source = _builders()

    def figure(title: str, expr: str) -> Any:
        return stat.Panel().title(title).span(6).height(5).datasource(source).with_target(query(expr, instant=True))

    return _with_panels(
        base("bosai — duty officer overview", "bosai-overview", ["overview"]),
        [
            figure("Alerts open now", f"sum(bosai_open_alerts{{{REGION}}})"),
            figure(
                "Very heavy / extreme / level 4+ open",
                f'sum(bosai_open_alerts{{{REGION},level=~"very_heavy|extreme|level_4|level_5"}})',
            ),
            figure(
                "Alerts raised (time range)",
                f'sum(increase(bosai_alert_events_total{{{REGION},msg_type="ALERT"}}[$__range]))',
            ),
            figure("Silent stations (> 1 h)", f"sum(bosai_silent_stations{{{REGION}}})"),
            table.Panel()
            .title("Open alerts by municipality and level")
            .span(12)
            .height(10)
            .datasource(source)
            .with_target(
                query(
                    f"sum by (municipality, rule, level) (bosai_open_alerts{{{REGION}}}) > 0",
                    instant=True,
                    as_table=True,
                )
            ),
            _station_map(geomap, query, source),
            ts(
                "Alert events by level",
                "short",
                query(
                    f"sum by (level, msg_type) (rate(bosai_alert_events_total{{{REGION}}}[$__rate_interval]))",
                    "{{level}} {{msg_type}}",
                ),
            ),
            ts(
                "Alert events by municipality",
                "short",
                query(
                    f"sum by (municipality) (rate(bosai_alert_events_total{{{REGION}}}[$__rate_interval]))",
                    "{{municipality}}",
                ),
            ),
        ],
    )


def _latency_panels(ts: Any, query: Any) -> list[Any]:
    def latency(quantile: str) -> Any:
        return query(
            f"histogram_quantile({quantile}, sum by (le) "
            f"(rate(bosai_processing_latency_seconds_bucket{{{REGION}}}[$__rate_interval])))",
            f"p{quantile[2:].ljust(2, '0')}",
        )

    return [
        ts(
            "Processing latency (produce → fan-out acknowledged)", "s", latency("0.5"), latency("0.95"), latency("0.99")
        ),
        ts(
            "Batch duration p95",
            "s",
            query(
                f"histogram_quantile(0.95, sum by (le, region) "
                f"(rate(bosai_batch_duration_seconds_bucket{{{REGION}}}[$__rate_interval])))",
                "{{region}}",
            ),
        ),
    ]


def pipeline() -> Any:
    base, ts, query, stat, table, geomap, bargauge, source = _builders()
    return _with_panels(
        base("bosai — pipeline health", "bosai-pipeline", ["pipeline"]),
        [
            ts(
                "Readings per second by stage",
                "reqps",
                query(f"sum by (stage) (rate(bosai_readings_total{{{REGION}}}[$__rate_interval]))", "{{stage}}"),
            ),
            ts(
                "Dead letters by reason",
                "short",
                query(
                    f"sum by (reason) (increase(bosai_dead_letters_total{{{REGION}}}[$__rate_interval]))", "{{reason}}"
                ),
            ),
            *_latency_panels(ts, query),
            ts(
                "Consumer lag (readings waiting)",
                "short",
                query(f"sum by (region) (bosai_consumer_lag_messages{{{REGION}}})", "{{region}}"),
            ),
            ts(
                "Event-time lag (wall clock − latest observed_at)",
                "s",
                query(f"bosai_event_time_lag_seconds{{{REGION}}}", "{{region}}"),
            ),
            ts(
                "Geofence fallbacks",
                "short",
                query(
                    f"sum by (method) (increase(bosai_geofence_fallbacks_total{{{REGION}}}[$__rate_interval]))",
                    "{{method}}",
                ),
            ),
            table.Panel()
            .title("Workers")
            .span(12)
            .height(6)
            .datasource(source)
            .with_target(query("bosai_worker_info", instant=True, as_table=True)),
        ],
    )


def stations() -> Any:
    base, ts, query, stat, table, geomap, bargauge, source = _builders()
    return (
        base("bosai — station health", "bosai-stations", ["stations"])
        .with_panel(
            stat.Panel()
            .title("Silent stations (> 1 h of event time)")
            .span(8)
            .height(5)
            .datasource(source)
            .with_target(query(f"sum(bosai_silent_stations{{{REGION}}})", instant=True))
        )
        .with_panel(
            stat.Panel()
            .title("Stations reporting")
            .span(8)
            .height(5)
            .datasource(source)
            .with_target(query(f"count(bosai_station_last_reading_timestamp_seconds{{{REGION}}})", instant=True))
        )
        .with_panel(
            stat.Panel()
            .title("Stations in the packs")
            .span(8)
            .height(5)
            .datasource(source)
            .with_target(query(f"count(bosai_station_info{{{REGION}}})", instant=True))
        )
        .with_panel(
            table.Panel()
            .title("Seconds since each station's last reading")
            .span(12)
            .height(12)
            .unit("s")
            .datasource(source)
            .with_target(query(f"sort_desc(bosai_station_silence_seconds{{{REGION}}})", instant=True, as_table=True))
        )
        .with_panel(ts("Silence by station", "s", query(f"bosai_station_silence_seconds{{{REGION}}}", "{{station}}")))
    )


def usage() -> Any:
    base, ts, query, stat, table, geomap, bargauge, source = _builders()
    return (
        base("bosai — usage per municipality (費用負担)", "bosai-usage", ["usage"])
        .with_panel(
            bargauge.Panel()
            .title("Messages delivered per municipality topic (time range)")
            .span(12)
            .height(12)
            .datasource(source)
            .with_target(
                query(
                    "sum by (municipality) "
                    f'(increase(bosai_delivered_messages_total{{{REGION},topic_kind="alerts_municipality"}}[$__range]))',
                    "{{municipality}}",
                    instant=True,
                )
            )
        )
        .with_panel(
            bargauge.Panel()
            .title("Bytes delivered per municipality topic (time range)")
            .span(12)
            .height(12)
            .unit("bytes")
            .datasource(source)
            .with_target(
                query(
                    "sum by (municipality) "
                    f'(increase(bosai_delivered_bytes_total{{{REGION},topic_kind="alerts_municipality"}}[$__range]))',
                    "{{municipality}}",
                    instant=True,
                )
            )
        )
        .with_panel(
            ts(
                "Bytes written per topic kind",
                "Bps",
                query(
                    f"sum by (topic_kind) (rate(bosai_delivered_bytes_total{{{REGION}}}[$__rate_interval]))",
                    "{{topic_kind}}",
                ),
            )
        )
    )


def platform() -> Any:
    """Every process of the hub and the brokers: health, pollers, deliveries, the archiver, certificates."""
    base, ts, query, stat, table, geomap, bargauge, source = _builders()
    board = dashboard_base(base, "bosai — platform (every process, the brokers)", "bosai-platform", ["platform"])
    return _with_panels(
        board,
        [
            table.Panel()
            .title("Processes: up and ready (by job and instance)")
            .span(12)
            .height(8)
            .datasource(source)
            .with_target(query('min by (job, instance) (up{job=~"bosai-.*"})', instant=True, as_table=True))
            .with_target(query("min by (job, instance, check) (bosai_ready)", instant=True, as_table=True)),
            ts("Event-loop heartbeat age (liveness)", "s", query("bosai_heartbeat_age_seconds", "{{instance}}")),
            ts(
                "Pollers: seconds since the last successful poll",
                "s",
                query("time() - max by (poller) (bosai_poll_last_success_timestamp_seconds)", "{{poller}}"),
            ),
            ts(
                "Poll requests by result",
                "short",
                query(
                    "sum by (poller, result) (rate(bosai_poll_requests_total[$__rate_interval]))",
                    "{{poller}} {{result}}",
                ),
            ),
            ts(
                "Deliveries by target and outcome (webhooks, Orion, channels)",
                "short",
                query(
                    "sum by (stage, target, outcome) (increase(bosai_delivery_outcomes_total[$__rate_interval]))",
                    "{{stage}} {{target}} {{outcome}}",
                ),
            ),
            ts(
                "Deliveries waiting (consumer lag)",
                "short",
                query("max by (stage, target) (bosai_delivery_consumer_lag_messages)", "{{stage}} {{target}}"),
            ),
            ts(
                "Archiver: records not archived, seconds since its last write",
                "short",
                query("sum by (instance) (bosai_archive_lag_messages)", "lag {{instance}}"),
                query("time() - bosai_archive_last_write_timestamp_seconds", "since write {{instance}}"),
            ),
            ts(
                "Kafka: under-replicated, under min ISR, offline partitions; active controllers",
                "short",
                query("sum(kafka_server_replicamanager_underreplicatedpartitions)", "under-replicated"),
                query("sum(kafka_server_replicamanager_underminisrpartitioncount)", "under min ISR"),
                query("max(kafka_controller_kafkacontroller_offlinepartitionscount)", "offline"),
                query("sum(kafka_controller_kafkacontroller_activecontrollercount)", "active controllers"),
            ),
            ts("Kafka: log size per node", "bytes", query("sum by (instance) (kafka_log_log_size)", "{{instance}}")),
            table.Panel()
            .title("TLS certificates: days left")
            .span(12)
            .height(6)
            .datasource(source)
            .with_target(
                query(
                    "(min by (file, subject) (bosai_tls_certificate_expiry_timestamp_seconds) - time()) / 86400",
                    instant=True,
                    as_table=True,
                )
            ),
        ],
    )


def dashboard_base(base: Any, title: str, uid: str, tags: list[str]) -> Any:
    """A board without the region variable (it covers processes, not regions)."""
    board = base(title, uid, tags)
    board._internal.templating.list_val = []
    return board


DASHBOARDS = {"overview": overview, "pipeline": pipeline, "stations": stations, "usage": usage, "platform": platform}
WORKER_DASHBOARDS = ("overview", "pipeline", "stations", "usage")  # what a worker's metrics alone fill


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    encoder = _sdk()[7](sort_keys=True, indent=2)
    return {f"bosai-{name}.json": encoder.encode(build().build()) + "\n" for name, build in DASHBOARDS.items()}


def dashboards_dir() -> Path:
    from streams.platform.settings import project_root

    return project_root() / "deploy" / "grafana" / "dashboards"


def queries(dashboard_json: str) -> list[str]:
    """Every PromQL expression of a dashboard (panels and variables)."""
    doc = json.loads(dashboard_json)
    exprs = [t["expr"] for p in doc.get("panels", []) for t in p.get("targets", []) if t.get("expr")]
    for variable in doc.get("templating", {}).get("list", []):
        q = variable.get("query")
        if isinstance(q, str) and q.startswith("label_values("):
            exprs.append(q[len("label_values(") :].rsplit(",", 1)[0])
    return exprs
