"""AMeDAS observations in CSV (``data/amedas/*.csv.gz``): rows into SensorReading records, in event-time order.

Two layouts, gzip'd (``.gz``) or not:

- **wide** (``data/amedas/*.csv.gz``): ``observed_at`` (ISO 8601 with +09:00), ``station_id``, ``name_ja``,
  ``name_en``, ``lat``, ``lon``, ``alt_m``, ``precip_1h_mm``, ``precip_24h_mm``: each row carries its station;
- **narrow** (the national file, ``japan-2023-hourly.csv.gz``): ``observed_at``, ``station_id``,
  ``precip_1h_mm``, ``precip_24h_mm``: the station's position comes from the region packs that hold it
  (``stations``); a row of a station no pack holds is counted and skipped.

An empty value is a gap JMA published no value for: kept as missing (``None``; the reading has quality MISSING
when the 1-hour value is missing), never 0. :func:`readings_by_pack` routes each reading to the pack that holds
its station (what a replay of the whole country produces to each region's topic).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from streams.kernel.errors import ConfigError
from streams.kernel.messages import AvroRecord
from streams.kernel.model import Station
from streams.kernel.region import RegionPack

VALUES = {"observed_at", "station_id", "precip_1h_mm", "precip_24h_mm"}
COLUMNS = VALUES | {"lat", "lon"}  # the wide layout
NARROW = "observed_at,station_id,precip_1h_mm,precip_24h_mm"


def _value(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def _observed_at(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (+09:00)")
    return int(moment.timestamp() * 1000)


def read_amedas(
    path: Path,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    stations: Mapping[str, Station] | None = None,
) -> list[AvroRecord]:
    """SensorReading records from an AMeDAS CSV (or .csv.gz, wide or narrow layout), in event-time order;
    ConfigError (file, row, what was expected) for anything else: not UTF-8, a broken gzip stream, not CSV, a
    bad value, a narrow file without ``stations``. Rows of stations ``stations`` lacks are left out of a
    narrow file (:func:`readings_by_pack` counts them)."""
    skipped: Counter[str] = Counter()
    records = list(_guarded(path, lambda: _rows(path, since_ms, until_ms, stations, skipped)))
    records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    return records


@dataclass
class PackReadings:
    """A CSV's readings routed to the packs holding their stations."""

    by_pack: dict[str, list[AvroRecord]] = field(default_factory=dict)  # pack name -> records, event-time order
    unknown: Counter[str] = field(default_factory=Counter)  # station id -> rows of a station no pack holds
    missing_1h: int = 0  # readings without a 1-hour value (kept, quality MISSING)

    @property
    def readings(self) -> int:
        return sum(len(r) for r in self.by_pack.values())


def readings_by_pack(
    path: Path, packs: Sequence[RegionPack], *, since_ms: int | None = None, until_ms: int | None = None
) -> PackReadings:
    """Every reading of an AMeDAS CSV (either layout) routed to the pack holding its station (the station
    attributes of a narrow file come from that pack); rows of stations no pack holds are counted by station."""
    stations, home = _stations_of(packs)
    result = PackReadings(by_pack={pack.name: [] for pack in packs})
    for record in _guarded(path, lambda: _rows(path, since_ms, until_ms, stations, result.unknown)):
        name = home.get(record["station_id"])
        if name is None:
            result.unknown[record["station_id"]] += 1
            continue
        result.by_pack[name].append(record)
        if record["quality"] == "MISSING":
            result.missing_1h += 1
    for records in result.by_pack.values():
        records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    return result


def is_narrow(path: Path) -> bool:
    """Whether the CSV has the narrow layout (no lat, lon: the national file); ConfigError if unreadable."""

    def header() -> Iterator[AvroRecord]:
        with _open(path) as handle:
            yield {"names": next(csv.reader(handle), [])}

    names = next(iter(_guarded(path, header)))["names"]
    return not {"lat", "lon"} <= set(names)


DAY_MS = 86_400_000
JST_OFFSET_MS = 9 * 3_600_000  # windows of a day are JST days (00:00 to 24:00 +09:00)


def windows_by_pack(
    path: Path,
    packs: Sequence[RegionPack],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    window_ms: int = DAY_MS,
) -> Iterator[PackReadings]:
    """:func:`readings_by_pack` a time window at a time (a day by default, 00:00 to 24:00 JST), streaming the file
    once: only one window's readings are held at a time, each in event-time order. The file must be in event-time
    order by window (the national file is ordered by hour); a row of a window already given is a ConfigError.
    ``unknown`` counts the stations no pack holds in each window (its ``by_pack`` lists only packs with readings
    in the window); windows without a reading are not given."""
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, not {window_ms}")
    stations, home = _stations_of(packs)
    unknown: Counter[str] = Counter()
    current: PackReadings | None = None
    window = None
    for record in _guarded(path, lambda: _rows(path, since_ms, until_ms, stations, unknown)):
        start = (record["observed_at"] + JST_OFFSET_MS) // window_ms  # days in JST
        if window is not None and start < window:
            raise ConfigError(
                path,
                f"a reading of {record['observed_at']} ms comes after the readings of a later window",
                where=f"station {record['station_id']}",
                expected="rows in event-time order",
            )
        if current is None or start != window:
            if current is not None:
                yield _settled(current, unknown)
            current, window = PackReadings(), start
        current.by_pack.setdefault(home[record["station_id"]], []).append(record)
        if record["quality"] == "MISSING":
            current.missing_1h += 1
    if current is not None:
        yield _settled(current, unknown)
    elif unknown:
        yield _settled(PackReadings(), unknown)


def _settled(window: PackReadings, unknown: Counter[str]) -> PackReadings:
    """A finished window: its readings sorted, the unknown stations counted so far moved into it."""
    for records in window.by_pack.values():
        records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    window.unknown = Counter(unknown)
    unknown.clear()
    return window


def _stations_of(packs: Sequence[RegionPack]) -> tuple[dict[str, Station], dict[str, str]]:
    """Every pack's stations, and the pack holding each (a station in two packs is a ConfigError)."""
    stations: dict[str, Station] = {}
    home: dict[str, str] = {}
    for pack in packs:
        for station_id, station in pack.stations.items():
            if station_id in home:
                raise ConfigError(
                    pack.name,
                    f"station {station_id} is in the packs {home[station_id]} and {pack.name}",
                    expected="each station in one pack",
                )
            stations[station_id], home[station_id] = station, pack.name
    return stations, home


def _guarded(path: Path, rows: Callable[[], Iterator[AvroRecord]]) -> Iterator[AvroRecord]:
    """The records, with every failure of reading the file as a ConfigError naming it."""
    try:
        yield from rows()
    except OSError as exc:  # (gzip.BadGzipFile too)
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from exc
    except (EOFError, zlib.error) as exc:
        raise ConfigError(path, f"broken gzip stream: {exc}", expected="a whole .csv.gz file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})", expected="UTF-8 CSV") from None


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _rows(
    path: Path,
    since_ms: int | None,
    until_ms: int | None,
    stations: Mapping[str, Station] | None,
    skipped: Counter[str],
) -> Iterator[AvroRecord]:
    with _open(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise ConfigError(path, f"not readable as CSV: {exc}", where="header") from None
        column = {name: i for i, name in enumerate(header)}  # a repeated name: the last, like csv.DictReader
        missing = VALUES - set(column)
        wide = {"lat", "lon"} <= set(column)
        if missing:
            raise ConfigError(
                path,
                f"missing columns {sorted(missing)}",
                where="header",
                expected="the AMeDAS format: " + ", ".join(sorted(COLUMNS)) + f" (or the narrow layout {NARROW})",
            )
        if not wide and stations is None:
            raise ConfigError(
                path,
                "the narrow layout (no lat, lon) without the stations of the region packs",
                where="header",
                expected="lat and lon columns, or the packs that hold the stations (readings_by_pack)",
            )
        times: dict[str, int] = {}  # an hour's text -> ms: a national file repeats each hour ~1,200 times
        width = len(header)
        row_number = 1
        while True:
            row_number += 1
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise ConfigError(path, f"not readable as CSV: {exc}", where=f"line {reader.line_num}") from None
            if row is None:
                break
            if len(row) < width:
                row += [""] * (width - len(row))
            station_id = row[column["station_id"]]
            try:
                text = row[column["observed_at"]]
                observed_at = times.get(text)
                if observed_at is None:
                    observed_at = times[text] = _observed_at(text)
                if since_ms is not None and observed_at < since_ms or until_ms is not None and observed_at >= until_ms:
                    continue
                if wide:
                    lat, lon = float(row[column["lat"]]), float(row[column["lon"]])
                    alt = _value(row[column["alt_m"]]) if "alt_m" in column else None
                else:
                    station = stations.get(station_id) if stations is not None else None
                    if station is None:
                        skipped[station_id] += 1
                        continue
                    lat, lon, alt = station.lat, station.lon, station.alt_m
                p1, p24 = _value(row[column["precip_1h_mm"]]), _value(row[column["precip_24h_mm"]])
            except ValueError as exc:
                raise ConfigError(
                    path,
                    f"unreadable value: {exc}",
                    where=f"row {row_number}",
                    expected="ISO timestamps with a zone and numbers",
                ) from None
            yield {
                "station_id": station_id,
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
