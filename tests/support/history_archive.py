"""The archive's tests: records as the hub writes them (decoded), and a small archive made from them without a
broker (tests/unit/history)."""

from __future__ import annotations

from pathlib import Path

from streams.history.layout import Manifest
from streams.history.rows import Source, alert_row, reading_row
from streams.history.store import ArchiveStore
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics

HOUR = 3_600_000
T0 = parse_jst("2023-09-04T14:00", option="t0")


def enriched(station_id: str, observed_at: int, p1: float | None, p24: float | None = 10.0, *, location=None) -> dict:
    return {
        "reading": {
            "station_id": station_id,
            "sensor_kind": "RAIN_GAUGE",
            "observed_at": observed_at,
            "location": location,
            "measurements": [
                {"quantity": "precipitation_1h", "value": p1, "unit": "mm"},
                {"quantity": "precipitation_24h", "value": p24, "unit": "mm"},
            ],
            "quality": "OK" if p1 is not None else "MISSING",
            "source": "jma-amedas",
            "produced_at": None,
        },
        "region": "tochigi",
        "municipality_code": "09201",
        "city_code": None,
        "geofence_method": "contains",
        "distance_m": 0.0,
        "hazard_zones": [],
    }


def alert(sequence: int = 0, *, sharing: str = "PUBLIC", status: str = "Actual", hour: int = 1) -> dict:
    return {
        "alert_id": "tochigi-rain_1h-41277-20230904T15JST",
        "sequence": sequence,
        "msg_type": "ALERT" if sequence == 0 else "UPDATE",
        "transition": "RAISED" if sequence == 0 else "ESCALATED",
        "references": None if sequence == 0 else f"tochigi-rain_1h-41277-20230904T15JST/{sequence - 1}",
        "references_observed_at": None,
        "region": "tochigi",
        "prefecture_code": "09",
        "rule": "rain_1h",
        "level": "very_heavy",
        "level_rank": 3,
        "warning_level": None,
        "event": "非常に激しい雨",
        "headline": "宇都宮 71.0 mm/h",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Observed",
        "sharing_level": sharing,
        "station_id": "41277",
        "observed_at": T0 + hour * HOUR,
        "value": 71.0,
        "unit": "mm",
        "threshold": 50.0,
        "area": {
            "description": "宇都宮市",
            "point": {"lat": 36.55, "lon": 139.87, "alt_m": None},
            "hazard_zone_ids": [],
        },
        "municipality_codes": ["09201"],
        "source_readings": [],
        "source": "hub",
        "status": status,
        "expires": None,
        "official": None,
    }


def stations_of(pack) -> dict:
    return {s.station_id: (s.lon, s.lat, s.alt_m) for s in pack.stations.values()}


def make_archive(root: Path, pack, topics: HubTopics, *, hours: int = 6) -> ArchiveStore:
    """Two stations' readings for ``hours`` hours (41277's third hour missing), flushed once per hour, and three
    alert events (one INTERNAL), committed like the archiver does."""
    store = ArchiveStore(root)
    manifest = Manifest()
    offset = 0
    alerts = [alert(0), alert(1, hour=2), alert(0, sharing="INTERNAL", hour=3)]
    for hour in range(hours):
        sequence = manifest.sequence + 1
        rows_by_key: dict = {}
        for station in ("41277", "41011"):
            value = None if (station == "41277" and hour == 2) else float(hour)
            key, row = reading_row(
                enriched(station, T0 + hour * HOUR, value), Source(topics.enriched, 0, offset), stations_of(pack)
            )
            rows_by_key.setdefault(key, []).append(row)
            offset += 1
        if hour < len(alerts):
            key, row = alert_row(alerts[hour], Source(topics.alerts, 0, hour), topics)
            rows_by_key.setdefault(key, []).append(row)
        written = []
        for index, (key, rows) in enumerate(sorted(rows_by_key.items())):
            ranges: dict = {}
            for row in rows:
                first, last = ranges.get(row["kafka_topic"], {}).get(0, (row["kafka_offset"], row["kafka_offset"]))
                ranges.setdefault(row["kafka_topic"], {})[0] = (
                    min(first, row["kafka_offset"]),
                    max(last, row["kafka_offset"]),
                )
            written.append(store.write(key, rows, sequence=sequence, index=index, offsets=ranges))
        manifest = manifest.committed(
            written, {topics.enriched: {0: offset}, topics.alerts: {0: min(hour + 1, len(alerts))}}, 0
        )
        store.commit(manifest)
    return store
