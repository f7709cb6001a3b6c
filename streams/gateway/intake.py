"""The HTTP gateway's pure part: sensor readings as JSON -> SensorReading records, bearer tokens, rates.

``POST /v1/readings`` takes one reading or a batch (a list, or ``{"readings": [...]}``), each::

    {"station_id": "R-09-001", "observed_at": "2026-07-01T10:00:00+09:00",
     "measurements": [{"quantity": "water_level", "value": 1.23, "unit": "m"}],
     "quality": "OK"}                      # optional; location {lat, lon} optional too

``observed_at`` is ISO 8601 with a zone (or epoch milliseconds). A reading that is not usable raises
``InvalidReading`` with the hub's reason codes, as any other input.

Tokens are ``bst.<token id>.<secret>``: the id finds the stored entry, the secret is kept only as its
SHA-256 (a 256-bit random secret needs no slow hash: it cannot be guessed), compared in constant time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.kernel import json_input
from streams.kernel.json_input import JsonInputError
from streams.kernel.messages import AvroRecord
from streams.observed.readings import IMPOSSIBLE_VALUE, MISSING_FIELD, UNDECODABLE, InvalidReading, finite_number

QUALITIES = ("OK", "ESTIMATED", "INCOMPLETE", "MISSING", "SUSPECT")
READING_KEYS = {"station_id", "observed_at", "measurements", "quality", "location"}
MEASUREMENT_KEYS = {"quantity", "value", "unit"}


def readings_in(body: bytes) -> list[Any]:
    """The readings of a request body; InvalidReading (undecodable) when it is not JSON the hub reads."""
    try:
        document = json_input.loads(body)
    except JsonInputError as exc:
        raise InvalidReading(UNDECODABLE, str(exc)) from None
    return readings_of(document)


def readings_of(document: Any) -> list[Any]:
    """The readings of a request body: one object, a list, or {"readings": [...]}."""
    if isinstance(document, dict) and "readings" in document:
        document = document["readings"]
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return document
    raise InvalidReading(UNDECODABLE, 'expected a reading object, a list of them, or {"readings": [...]}')


def _observed_at(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise InvalidReading(IMPOSSIBLE_VALUE, f"observed_at {value!r}: expected ISO 8601 with a zone, or epoch ms")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"observed_at {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"observed_at {value!r} has no time zone (+09:00 or Z)")
    return int(moment.timestamp() * 1000)


def _measurement(raw: Any, i: int) -> AvroRecord:
    if not isinstance(raw, dict):
        raise InvalidReading(MISSING_FIELD, f"measurements[{i}] is {raw!r}, expected {{quantity, value, unit}}")
    unknown = set(raw) - MEASUREMENT_KEYS
    if unknown:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"measurements[{i}]: unknown keys {sorted(unknown)}")
    value = raw.get("value")
    number = finite_number(value)
    if value is not None and number is None:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"measurements[{i}].value is {value!r:.80}, expected a number or null")
    for key in ("quantity", "unit"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidReading(MISSING_FIELD, f"measurements[{i}] has no {key}")
    return {"quantity": raw["quantity"], "value": number, "unit": raw["unit"]}


def _location(raw: Any) -> AvroRecord | None:
    if raw is None:
        return None
    lat, lon = (finite_number(raw.get("lat")), finite_number(raw.get("lon"))) if isinstance(raw, dict) else (None, None)
    if lat is None or lon is None:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"location {raw!r:.80}: expected {{lat, lon}} in degrees")
    return {"lat": lat, "lon": lon, "alt_m": None}


def reading_record(raw: Any, *, sensor_kinds: Mapping[str, str], source: str, produced_at: int) -> AvroRecord:
    """One JSON reading as a SensorReading record (validated further by core.readings.validate)."""
    if not isinstance(raw, dict):
        raise InvalidReading(UNDECODABLE, f"reading is {str(raw)[:80]!r}, expected an object")
    unknown = set(raw) - READING_KEYS
    if unknown:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"unknown keys {sorted(unknown)} (known: {sorted(READING_KEYS)})")
    station_id = raw.get("station_id")
    if not isinstance(station_id, str) or not station_id:
        raise InvalidReading(MISSING_FIELD, "station_id is missing or empty")
    if "observed_at" not in raw:
        raise InvalidReading(MISSING_FIELD, f"station {station_id}: observed_at is missing")
    measurements = raw.get("measurements")
    if not isinstance(measurements, list) or not measurements:
        raise InvalidReading(MISSING_FIELD, f"station {station_id}: measurements must be a non-empty list")
    quality = raw.get("quality", "OK")
    if quality not in QUALITIES:
        raise InvalidReading(
            IMPOSSIBLE_VALUE, f"station {station_id}: quality {quality!r} (one of {', '.join(QUALITIES)})"
        )
    return {
        "station_id": station_id,
        "sensor_kind": sensor_kinds.get(station_id, "UNKNOWN"),
        "observed_at": _observed_at(raw["observed_at"]),
        "location": _location(raw.get("location")),
        "measurements": [_measurement(m, i) for i, m in enumerate(measurements)],
        "quality": quality,
        "source": source,
        "produced_at": produced_at,
    }


# -- rates -------------------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """Readings per second with a burst; the caller passes the clock (seconds)."""

    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated_s: float = 0.0

    def take(self, count: int, now_s: float) -> float:
        """0 when ``count`` may pass now (and takes them), else the seconds to wait before asking again."""
        if self.tokens < 0:
            self.tokens, self.updated_s = self.burst, now_s
        self.tokens = min(self.burst, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if count <= self.tokens:
            self.tokens -= count
            return 0.0
        if count > self.burst:
            return math.inf
        return (count - self.tokens) / self.rate_per_s
