"""Validating decoded SensorReading records into Readings, with a reason code for each rejection.

Pure: takes the decoded Avro record (a dict) and the region's stations; no Kafka, no Avro here.
A reading whose value is simply missing (JMA publishes gaps) is valid: it carries quality MISSING
and a None value, and the rules leave alerts as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streams.kernel.messages import AvroRecord
from streams.kernel.model import QUANTITY_UNITS, Station, in_japan

# Dead-letter reason codes of the ingest stage (stable: dashboards and alert rules use them).
UNDECODABLE = "undecodable"  # not Avro, truncated, trailing bytes
UNKNOWN_SCHEMA = "unknown_schema"  # Avro of a schema the hub does not know, or another record type
MISSING_FIELD = "missing_field"  # required content absent (empty station id, no measurements …)
IMPOSSIBLE_VALUE = "impossible_value"  # negative rainfall, absurd levels, NaN, wrong unit, bad time
OUTSIDE_JAPAN = "outside_japan"  # coordinates outside Japan
UNKNOWN_STATION = "unknown_station"  # station id not in the region pack
REASONS = (UNDECODABLE, UNKNOWN_SCHEMA, MISSING_FIELD, IMPOSSIBLE_VALUE, OUTSIDE_JAPAN, UNKNOWN_STATION)

# Plausible ranges: beyond these a value is a sensor or transmission fault, not weather.
# (Japan's 1-hour record is 153 mm, the world's about 305 mm; 24 h: 922.5 mm in Japan.)
RANGES = {
    "precipitation_10min": (0.0, 150.0),
    "precipitation_1h": (0.0, 400.0),
    "precipitation_3h": (0.0, 800.0),
    "precipitation_24h": (0.0, 2000.0),
    "precipitation_increment": (0.0, 400.0),
    "water_level": (-20.0, 100.0),
}
EARLIEST_MS = 946_684_800_000  # 2000-01-01: older readings are a clock fault
LATEST_MS = 4_102_444_800_000  # 2100-01-01


class InvalidReading(Exception):
    """A record that is not a usable reading; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (a bool, text, NaN, ±inf, an int past a double)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # json reads integers of up to 4300 digits
        return None
    return number if math.isfinite(number) else None


class Reading(NamedTuple):
    """A validated reading. Times are epoch milliseconds; values by quantity (None = missing)."""

    station_id: str
    sensor_kind: str
    observed_at: int
    lat: float
    lon: float
    values: Mapping[str, float | None]
    quality: str
    source: str
    produced_at: int | None
    record: AvroRecord  # the decoded record, forwarded unchanged on the enriched topic
    is_missing: bool = False  # no value at all (a JMA gap): neither raises nor clears alerts


def validate(record: AvroRecord, stations: Mapping[str, Station]) -> Reading:
    """The record as a Reading, or InvalidReading with the reason and what exactly was wrong."""
    station_id = record.get("station_id")
    if not station_id:
        raise InvalidReading(MISSING_FIELD, "station_id is empty")
    measurements = record.get("measurements") or []
    if not measurements:
        raise InvalidReading(MISSING_FIELD, f"reading of station {station_id} has no measurements")
    observed_at = record.get("observed_at")
    if not isinstance(observed_at, int) or not EARLIEST_MS <= observed_at < LATEST_MS:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"observed_at {observed_at!r} ms is not between 2000 and 2100")
    station = stations.get(station_id)
    location = record.get("location")
    position = _position(location, station_id) if location is not None else None  # checked before the station
    if station is None:
        raise InvalidReading(UNKNOWN_STATION, f"station {station_id!r} is not in the region pack")
    lat, lon = position if position is not None else (station.lat, station.lon)
    values = _measured_values(station_id, measurements)
    quality = record.get("quality", "OK")
    missing = quality == "MISSING" or all(v is None for v in values.values())
    return Reading(
        station_id,
        record.get("sensor_kind", "UNKNOWN"),
        observed_at,
        lat,
        lon,
        values,
        quality,
        record.get("source", ""),
        record.get("produced_at"),
        record,
        missing,
    )


def _position(location: Mapping[str, Any], station_id: str) -> tuple[float, float]:
    """A reading's own position (a moving or temporary sensor), checked: finite, in Japan."""
    lat, lon = location.get("lat"), location.get("lon")
    if not (isinstance(lat, float) and isinstance(lon, float) and math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidReading(IMPOSSIBLE_VALUE, f"location ({lat}, {lon}) is not a number")
    if not in_japan(lat, lon):
        raise InvalidReading(OUTSIDE_JAPAN, f"location ({lat:.5f}, {lon:.5f}) of station {station_id} is outside Japan")
    return lat, lon


def _measured_values(station_id: str, measurements: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Quantity → value (None: missing), each in its expected unit and plausible range."""
    values: dict[str, float | None] = {}
    for m in measurements:
        quantity, value, unit = m.get("quantity"), m.get("value"), m.get("unit")
        if not quantity or not unit:
            raise InvalidReading(MISSING_FIELD, f"station {station_id}: a measurement lacks quantity or unit")
        expected_unit = QUANTITY_UNITS.get(quantity)
        if expected_unit is None:
            raise InvalidReading(
                IMPOSSIBLE_VALUE,
                f"station {station_id}: unknown quantity {quantity!r} (known: {', '.join(QUANTITY_UNITS)})",
            )
        if unit != expected_unit:
            raise InvalidReading(
                IMPOSSIBLE_VALUE, f"station {station_id}: {quantity} in {unit!r}, expected {expected_unit!r}"
            )
        if value is not None:
            low, high = RANGES[quantity]
            if not math.isfinite(value) or not low <= value <= high:
                raise InvalidReading(
                    IMPOSSIBLE_VALUE,
                    f"station {station_id}: {quantity} = {value} {unit} is outside the plausible range {low}..{high}",
                )
        values[quantity] = value
    return values
