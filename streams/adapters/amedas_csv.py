"""AMeDAS observations in CSV (``data/amedas/*.csv.gz``): rows into SensorReading records, in event-time order.

Columns: ``observed_at`` (ISO 8601 with +09:00), ``station_id``, ``name_ja``, ``name_en``, ``lat``, ``lon``,
``alt_m``, ``precip_1h_mm``, ``precip_24h_mm``; an empty value is a gap JMA published no value for
(kept: the reading has quality MISSING).
"""

from __future__ import annotations

import csv
import gzip
from datetime import datetime
from pathlib import Path

from streams.core.errors import ConfigError

COLUMNS = {"observed_at", "station_id", "lat", "lon", "precip_1h_mm", "precip_24h_mm"}


def _value(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def read_amedas(path: Path, *, since_ms: int | None = None, until_ms: int | None = None) -> list[dict]:
    """SensorReading records from an AMeDAS-format CSV (or .csv.gz), in event-time order."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = COLUMNS - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(
                    path,
                    f"missing columns {sorted(missing)}",
                    where="header",
                    expected="the AMeDAS format: " + ", ".join(sorted(COLUMNS)),
                )
            records = []
            for row_number, row in enumerate(reader, start=2):
                try:
                    observed_at = int(datetime.fromisoformat(row["observed_at"]).timestamp() * 1000)
                    lat, lon = float(row["lat"]), float(row["lon"])
                    alt = _value(row.get("alt_m", ""))
                    p1, p24 = _value(row["precip_1h_mm"]), _value(row["precip_24h_mm"])
                except ValueError as exc:
                    raise ConfigError(
                        path,
                        f"unreadable value: {exc}",
                        where=f"row {row_number}",
                        expected="ISO timestamps and numbers",
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
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror}") from exc
    records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    return records
