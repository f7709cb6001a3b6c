"""Decoded records into the archive's rows, and rows back into the hub's own words.

One row per archived Kafka record, with where it came from (``kafka_topic``, ``kafka_partition``,
``kafka_offset``: together unique in the archive, which is how exactly-once is checked). A value the source did
not publish stays missing (None, never 0) and the reading keeps its quality flag (``MISSING`` …). Readings and
alerts carry their point as WKB (``geometry``, lon/lat, OGC:CRS84) and as ``lon``/``lat`` columns.

Back out: a reading as a row of ``observed_at`` (ISO 8601, JST), ``station_id`` and one column per quantity
as the hub names it (``precipitation_1h`` …); an alert as the line ``bosai replay --alerts-out`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely

from streams.history.layout import PartitionKey, jst_date
from streams.kernel.alerts import alert_line as kernel_alert_line
from streams.kernel.alerts import topics_for_alert
from streams.kernel.messages import AvroRecord
from streams.kernel.model import QUANTITY_UNITS
from streams.kernel.times import jst_iso
from streams.kernel.topics import HubTopics

Row = dict[str, Any]
QUANTITIES = tuple(QUANTITY_UNITS)  # one column each in the readings dataset
Position = tuple[float, float, float | None]  # lon, lat, altitude (m) of a station in its pack


@dataclass(frozen=True)
class Source:
    """Where a record was read: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def columns(self) -> Row:
        return {"kafka_topic": self.topic, "kafka_partition": self.partition, "kafka_offset": self.offset}


def point_wkb(lon: float | None, lat: float | None) -> bytes | None:
    if lon is None or lat is None:
        return None
    return bytes(shapely.to_wkb(shapely.Point(lon, lat)))


def reading_row(record: AvroRecord, source: Source, stations: Mapping[str, Position]) -> tuple[PartitionKey, Row]:
    """An enriched reading's row; its position is the reading's own, else its station's in the pack."""
    reading = record["reading"]
    location = reading.get("location")
    station = stations.get(reading["station_id"])
    if location is not None:
        lon, lat, alt = location["lon"], location["lat"], location.get("alt_m")
    elif station is not None:
        lon, lat, alt = station
    else:
        lon = lat = alt = None
    measurements = [
        {"quantity": m["quantity"], "value": m["value"], "unit": m["unit"]} for m in reading["measurements"]
    ]
    by_quantity = {m["quantity"]: m["value"] for m in measurements}
    row: Row = {
        **source.columns(),
        "region": record["region"],
        "station_id": reading["station_id"],
        "sensor_kind": reading["sensor_kind"],
        "observed_at": reading["observed_at"],
        "quality": reading["quality"],
        "source": reading.get("source", ""),
        "produced_at": reading.get("produced_at"),
        "municipality_code": record.get("municipality_code"),
        "city_code": record.get("city_code"),
        "geofence_method": record.get("geofence_method", ""),
        "distance_m": record.get("distance_m"),
        "hazard_zone_ids": [z["zone_id"] for z in record.get("hazard_zones", ())],
        "measurements": measurements,
        **{q: by_quantity.get(q) for q in QUANTITIES},
        "lon": lon,
        "lat": lat,
        "alt_m": alt,
        "geometry": point_wkb(lon, lat),
    }
    return PartitionKey("readings", record["region"], jst_date(reading["observed_at"])), row


def alert_row(record: AvroRecord, source: Source, topics: HubTopics) -> tuple[PartitionKey, Row]:
    """An alert event's row, with the topics the hub delivered it to (the prefecture's, its municipalities',
    the public one: :func:`streams.kernel.alerts.topics_for_alert`, the hub's own routing)."""
    point = record["area"].get("point")
    lon, lat = (point["lon"], point["lat"]) if point else (None, None)
    delivered = topics_for_alert(
        topics.alerts,
        topics.municipal,
        topics.public,
        record["municipality_codes"],
        sharing_level=record["sharing_level"],
        status=record.get("status", "Actual"),
    )
    official = record.get("official")
    row: Row = {
        **source.columns(),
        "region": record["region"],
        "alert_id": record["alert_id"],
        "sequence": record["sequence"],
        "msg_type": record["msg_type"],
        "transition": record["transition"],
        "references": record.get("references"),
        "references_observed_at": record.get("references_observed_at"),
        "prefecture_code": record["prefecture_code"],
        "rule": record["rule"],
        "level": record["level"],
        "level_rank": record["level_rank"],
        "warning_level": record.get("warning_level"),
        "event": record["event"],
        "headline": record["headline"],
        "severity": record["severity"],
        "urgency": record["urgency"],
        "certainty": record["certainty"],
        "sharing_level": record["sharing_level"],
        "station_id": record["station_id"],
        "observed_at": record["observed_at"],
        "value": record.get("value"),
        "unit": record.get("unit", ""),
        "threshold": record.get("threshold"),
        "area_description": record["area"]["description"],
        "hazard_zone_ids": list(record["area"].get("hazard_zone_ids", ())),
        "municipality_codes": list(record["municipality_codes"]),
        "source_readings": json.dumps(record.get("source_readings", []), ensure_ascii=False),
        "source": record.get("source", "hub"),
        "status": record.get("status", "Actual"),
        "expires": record.get("expires"),
        "official": json.dumps(official, ensure_ascii=False) if official else None,
        "topics": sorted(delivered),
        "lon": lon,
        "lat": lat,
        "geometry": point_wkb(lon, lat),
    }
    return PartitionKey("alerts", record["region"], jst_date(record["observed_at"])), row


def official_row(record: AvroRecord, source: Source, region: str) -> tuple[PartitionKey, Row]:
    """An official report as received (its XML kept byte for byte); dated by its entry's time, else when fetched."""
    when = record.get("entry_updated") or record["fetched_at"]
    row: Row = {
        **source.columns(),
        "region": region,
        "entry_id": record.get("entry_id", ""),
        "url": record.get("url", ""),
        "entry_title": record.get("entry_title", ""),
        "entry_updated": record.get("entry_updated"),
        "fetched_at": record["fetched_at"],
        "source": record.get("source", ""),
        "xml": record["xml"],
    }
    return PartitionKey("official", region, jst_date(when)), row


def dead_letter_row(record: AvroRecord, source: Source, region: str) -> tuple[PartitionKey, Row]:
    row: Row = {
        **source.columns(),
        "region": region,
        "reason": record["reason"],
        "error_detail": record["error_detail"],
        "stage": record["stage"],
        "source_topic": record["source_topic"],
        "source_partition": record["source_partition"],
        "source_offset": record["source_offset"],
        "source_timestamp": record.get("source_timestamp"),
        "original_key": record.get("original_key"),
        "original_value": record.get("original_value"),
        "failed_at": record["failed_at"],
        "worker": record.get("worker", ""),
    }
    return PartitionKey("deadletters", region, jst_date(record["failed_at"])), row


def undecodable_row(
    source: Source, region: str, key: bytes | None, value: bytes | None, detail: str, now_ms: int
) -> tuple[PartitionKey, Row]:
    """A record the archiver could not decode is archived too, as a dead letter of stage ``archive``."""
    record = {
        "reason": "undecodable",
        "error_detail": detail,
        "stage": "archive",
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "source_timestamp": None,
        "original_key": key,
        "original_value": value,
        "failed_at": now_ms,
        "worker": "archiver",
    }
    return dead_letter_row(record, source, region)


# -- back out ------------------------------------------------------------------------------------------------


def reading_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The CSV's columns: observed_at, station_id, every quantity the rows carry (in the hub's order), quality."""
    seen: set[str] = set()
    for row in rows:
        seen.update(m["quantity"] for m in row["measurements"])
    known = [q for q in QUANTITIES if q in seen]
    return ["observed_at", "station_id", *known, *sorted(seen - set(known)), "quality"]


def reading_line(row: Mapping[str, Any], columns: Sequence[str]) -> Row:
    """One reading in the hub's words: JST time, station, each quantity's value (None stays None), quality."""
    values = {m["quantity"]: m["value"] for m in row["measurements"]}
    line: Row = {"observed_at": jst_iso(row["observed_ms"]), "station_id": row["station_id"]}
    for column in columns[2:-1]:
        line[column] = values.get(column)
    line["quality"] = row["quality"]
    return line


def alert_line(row: Mapping[str, Any]) -> Row:
    """The archived alert as ``bosai replay --alerts-out`` writes it: the row back into the record's shape, then
    the one line (:func:`streams.kernel.alerts.alert_line`)."""
    record = {
        **row,
        "observed_at": row["observed_ms"],
        "expires": row.get("expires_ms"),
        "municipality_codes": list(row["municipality_codes"]),
        "official": json.loads(row["official"]) if row.get("official") else None,
    }
    return kernel_alert_line(record, row["topics"])


def csv_value(value: Any) -> str:
    """A CSV cell: empty for a missing value (never 0), numbers as Python writes them."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def alert_feature(line: Mapping[str, Any], lon: float | None, lat: float | None) -> Row:
    """An alert line as a GeoJSON Feature (its station's point; no geometry for an area-only report)."""
    return {
        "type": "Feature",
        "id": f"{line['alert_id']}.{line['sequence']}",
        "geometry": {"type": "Point", "coordinates": [lon, lat]} if lon is not None and lat is not None else None,
        "properties": dict(line),
    }


RowMaker = Callable[[AvroRecord, Source], tuple[PartitionKey, Row]]
