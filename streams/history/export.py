"""`bosai history export`: the archive's public data as open-data files with a DCAT catalog.

Writes into a folder: ``readings.parquet`` (GeoParquet) and ``readings.csv`` (the public stations' readings,
columns as ``bosai history readings`` writes them), ``alerts.parquet`` (GeoParquet) and ``alerts.geojson``
(alert events of sharing level PUBLIC and status Actual), and ``catalog.jsonld`` (:mod:`streams.history.dcat`)
describing them with sizes and SHA-256. The hub's internals (Kafka coordinates, topic names) are left out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.history import dcat, ogc
from streams.history.query import Filter
from streams.history.reader import ArchiveReader
from streams.history.rows import alert_line, csv_value, reading_columns, reading_line
from streams.history.store import write_export
from streams.kernel.region import RegionPack

INTERNAL = ("kafka_topic", "kafka_partition", "kafka_offset", "topics", "produced_at")


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    readings: int
    alerts: int
    files: tuple[str, ...]


def _distribution(folder: Path, name: str, rows: int) -> dcat.Distribution:
    data = (folder / name).read_bytes()
    return dcat.Distribution(name, len(data), hashlib.sha256(data).hexdigest(), rows)


def _bbox(rows: Sequence[dict[str, object]]) -> tuple[float, float, float, float] | None:
    points = [(r["lon"], r["lat"]) for r in rows if isinstance(r["lon"], float) and isinstance(r["lat"], float)]
    if not points:
        return None
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lons), min(lats), max(lons), max(lats)


def export(
    history: Path,
    packs: Sequence[RegionPack],
    folder: Path,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    base_url: str = "",
    publisher: str = "bosai hub",
) -> ExportResult:
    reader = ArchiveReader(history)
    folder.mkdir(parents=True, exist_ok=True)
    public = tuple(sorted(s.station_id for p in packs for s in p.stations.values() if s.is_public))
    readings_where = Filter("readings", since_ms=since_ms, until_ms=until_ms, station_ids=public)
    alerts_where = Filter("alerts", since_ms=since_ms, until_ms=until_ms, public=True)
    datasets = []
    written: list[str] = []

    rows = reader.rows(readings_where)
    columns = reading_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_value(line[c]) for c in columns] for line in (reading_line(r, columns) for r in rows))
    (folder / "readings.csv").write_text(buffer.getvalue(), encoding="utf-8")
    distributions = [_distribution(folder, "readings.csv", len(rows))]
    table = reader.table(readings_where)
    if table is not None:
        write_export(
            "readings",
            table.drop_columns([c for c in INTERNAL if c in table.column_names]),
            folder / "readings.parquet",
        )
        distributions.append(_distribution(folder, "readings.parquet", table.num_rows))
    datasets.append(
        dcat.ExportedDataset(
            "readings",
            "Observations of the public gauges",
            "Hourly and 10-minute rainfall and river levels of the public stations, as the hub received them; a "
            "value the source did not publish is empty (quality MISSING), never 0.",
            tuple(distributions),
            min((r["observed_ms"] for r in rows), default=None),
            max((r["observed_ms"] for r in rows), default=None),
            _bbox(rows),
            ("rainfall", "AMeDAS", "river level", "防災"),
        )
    )
    written += [d.file for d in distributions]

    alert_rows = reader.rows(alerts_where)
    features = [
        ogc.alert_feature({k: v for k, v in alert_line(r).items() if k != "topics"}, r["lon"], r["lat"])
        for r in alert_rows
    ]
    (folder / "alerts.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    distributions = [_distribution(folder, "alerts.geojson", len(features))]
    table = reader.table(alerts_where)
    if table is not None:
        write_export(
            "alerts", table.drop_columns([c for c in INTERNAL if c in table.column_names]), folder / "alerts.parquet"
        )
        distributions.append(_distribution(folder, "alerts.parquet", table.num_rows))
    datasets.append(
        dcat.ExportedDataset(
            "alerts",
            "Public alert events",
            "The hub's threshold alerts and JMA's relayed reports, as issued (sharing level public, status Actual).",
            tuple(distributions),
            min((r["observed_ms"] for r in alert_rows), default=None),
            max((r["observed_ms"] for r in alert_rows), default=None),
            _bbox(alert_rows),
            ("alerts", "CAP", "防災"),
        )
    )
    written += [d.file for d in distributions]

    issued = datetime.now(UTC).isoformat(timespec="seconds")
    document = dcat.catalog(
        base_url, datasets, issued=issued, publisher=publisher, title="bosai hub open data (from the archive)"
    )
    (folder / "catalog.jsonld").write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return ExportResult(folder, len(rows), len(alert_rows), (*written, "catalog.jsonld"))
