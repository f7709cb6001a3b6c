"""Grafana dashboards as code, built with the grafana-foundation-sdk builders.

`bosai dashboards` writes them to deploy/grafana/dashboards/*.json (committed; a test checks that the
committed JSON is what this module generates). Every query is PromQL over the metrics in
streams/metrics.py; the Prometheus test evaluates each one against a real Prometheus scraping a hub.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK is imported when a dashboard is built (a dev tool, not needed by the hub)
    from grafana_foundation_sdk.builders.dashboard import Dashboard
    from grafana_foundation_sdk.builders.prometheus import Dataquery
    from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.models.dashboard import Panel

DATASOURCE_UID = "bosai-prometheus"
REGION = 'region=~"$region"'


def _require_sdk() -> None:
    """The SDK is a dev tool (the test extra): the hub itself does not need it."""
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        raise SystemExit("grafana-foundation-sdk is not installed: pip install -e '.[test]'")


class _Kit:
    """The SDK's builders, preset for the hub: its Prometheus data source, the region variable."""

    def __init__(self) -> None:
        _require_sdk()
        from grafana_foundation_sdk.models import dashboard as models

        self.source = models.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

    def query(self, expr: str, legend: str = "", *, instant: bool = False, as_table: bool = False) -> Dataquery:
        from grafana_foundation_sdk.builders import prometheus
        from grafana_foundation_sdk.models.prometheus import PromQueryFormat

        q = prometheus.Dataquery().expr(expr).datasource(self.source)
        if legend:
            q = q.legend_format(legend)
        if instant:
            q = q.instant()
        if as_table:
            q = q.format(PromQueryFormat.TABLE)
        return q

    def base(self, title: str, uid: str, tags: list[str]) -> Dashboard:
        from grafana_foundation_sdk.builders import dashboard
        from grafana_foundation_sdk.models import dashboard as models

        region = (
            dashboard.QueryVariable("region")
            .label("Region")
            .datasource(self.source)
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

    def ts(self, title: str, unit: str, *targets: Dataquery, description: str = "") -> TimeSeries:
        from grafana_foundation_sdk.builders import timeseries

        panel = timeseries.Panel().title(title).unit(unit).span(12).height(8).datasource(self.source)
        for target in targets:
            panel = panel.with_target(target)
        return panel.description(description) if description else panel


def _with_panels(board: Dashboard, panels: Sequence[Builder[Panel]]) -> Dashboard:
    for panel in panels:
        board = board.with_panel(panel)
    return board


def _station_map(kit: _Kit) -> Builder[Panel]:
    from grafana_foundation_sdk.builders import common, geomap
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
        .datasource(kit.source)
        .view(geomap.MapViewConfig().id("coords").lat(36).lon(139).zoom(7))
        .basemap(common.MapLayerOptions().type("default").name("Basemap"))
        .layers([markers])
        .with_target(kit.query(f"bosai_station_info{{{REGION}}}", instant=True, as_table=True))
    )


def overview() -> Dashboard:
    kit = _Kit()  # (says so when the SDK is not installed)
    from grafana_foundation_sdk.builders import stat, table

    base, ts, query, source = kit.base, kit.ts, kit.query, kit.source

    def figure(title: str, expr: str) -> Builder[Panel]:
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
            _station_map(kit),
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


def _latency_panels(kit: _Kit) -> list[Builder[Panel]]:
    ts, query = kit.ts, kit.query

    def latency(quantile: str) -> Dataquery:
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


def pipeline() -> Dashboard:
    kit = _Kit()  # (says so when the SDK is not installed)
    from grafana_foundation_sdk.builders import table

    base, ts, query, source = kit.base, kit.ts, kit.query, kit.source
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
            *_latency_panels(kit),
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


def stations() -> Dashboard:
    kit = _Kit()  # (says so when the SDK is not installed)
    from grafana_foundation_sdk.builders import stat, table

    base, ts, query, source = kit.base, kit.ts, kit.query, kit.source
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


def usage() -> Dashboard:
    kit = _Kit()  # (says so when the SDK is not installed)
    from grafana_foundation_sdk.builders import bargauge

    base, ts, query, source = kit.base, kit.ts, kit.query, kit.source
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


def platform() -> Dashboard:
    """Every process of the hub and the brokers: health, pollers, deliveries, the archiver, certificates."""
    kit = _Kit()  # (says so when the SDK is not installed)
    from grafana_foundation_sdk.builders import table

    ts, query, source = kit.ts, kit.query, kit.source
    board = dashboard_base(kit, "bosai — platform (every process, the brokers)", "bosai-platform", ["platform"])
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


def dashboard_base(kit: _Kit, title: str, uid: str, tags: list[str]) -> Dashboard:
    """A board without the region variable (it covers processes, not regions)."""
    board = kit.base(title, uid, tags)
    board._internal.templating.list_val = []
    return board


DASHBOARDS = {"overview": overview, "pipeline": pipeline, "stations": stations, "usage": usage, "platform": platform}
WORKER_DASHBOARDS = ("overview", "pipeline", "stations", "usage")  # what a worker's metrics alone fill


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    _require_sdk()
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    encoder = JSONEncoder(sort_keys=True, indent=2)
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
