"""AMeDAS observations in CSV (``data/amedas/*.csv.gz``): rows into SensorReading records, in event-time order.

Columns: ``observed_at`` (ISO 8601 with +09:00), ``station_id``, ``name_ja``, ``name_en``, ``lat``, ``lon``,
``alt_m``, ``precip_1h_mm``, ``precip_24h_mm``; an empty value is a gap JMA published no value for
(kept: the reading has quality MISSING).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from datetime import datetime
from pathlib import Path

from streams.kernel.errors import ConfigError
from streams.kernel.messages import AvroRecord

COLUMNS = {"observed_at", "station_id", "lat", "lon", "precip_1h_mm", "precip_24h_mm"}


def _value(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def _observed_at(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (+09:00)")
    return int(moment.timestamp() * 1000)


def read_amedas(path: Path, *, since_ms: int | None = None, until_ms: int | None = None) -> list[AvroRecord]:
    """SensorReading records from an AMeDAS-format CSV (or .csv.gz), in event-time order; ConfigError (file,
    row, what was expected) for anything else: not UTF-8, a broken gzip stream, not CSV, a bad value."""
    try:
        return _read(path, since_ms, until_ms)
    except OSError as exc:  # (gzip.BadGzipFile too)
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from exc
    except (EOFError, zlib.error) as exc:
        raise ConfigError(path, f"broken gzip stream: {exc}", expected="a whole .csv.gz file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})", expected="UTF-8 CSV") from None


def _read(path: Path, since_ms: int | None, until_ms: int | None) -> list[AvroRecord]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, restval="")
        try:
            header = reader.fieldnames or []
        except csv.Error as exc:
            raise ConfigError(path, f"not readable as CSV: {exc}", where="header") from None
        missing = COLUMNS - set(header)
        if missing:
            raise ConfigError(
                path,
                f"missing columns {sorted(missing)}",
                where="header",
                expected="the AMeDAS format: " + ", ".join(sorted(COLUMNS)),
            )
        records = []
        row_number = 1
        while True:
            row_number += 1
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise ConfigError(path, f"not readable as CSV: {exc}", where=f"line {reader.line_num}") from None
            if row is None:
                break
            try:
                observed_at = _observed_at(row["observed_at"])
                lat, lon = float(row["lat"]), float(row["lon"])
                alt = _value(row.get("alt_m", ""))
                p1, p24 = _value(row["precip_1h_mm"]), _value(row["precip_24h_mm"])
            except ValueError as exc:
                raise ConfigError(
                    path,
                    f"unreadable value: {exc}",
                    where=f"row {row_number}",
                    expected="ISO timestamps with a zone and numbers",
                ) from None
            if since_ms is not None and observed_at < since_ms or until_ms is not None and observed_at >= until_ms:
                continue
            records.append(
                {
                    "station_id": row["station_id"],
                    "sensor_kind": "RAIN_GAUGE",
                    "observed_at": observed_at,
                    "location": {"lat": lat, "lon": lon, "alt_m": alt},
                    "measurements": [
                        {"quantity": "precipitation_1h", "value": p1, "unit": "mm"},
                        {"quantity": "precipitation_24h", "value": p24, "unit": "mm"},
                    ],
                    "quality": "OK" if p1 is not None else "MISSING",
                    "source": "jma-amedas",
                    "produced_at": None,
                }
            )
    records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    return records
