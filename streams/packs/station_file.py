"""A region pack's stations: ``stations.csv`` (every sensor) and the optional ``stations.yaml`` settings
(river stages, downstream municipalities, linked hazard zones, per-station rule overrides).

Problems are recorded with the file, the row or station, and what was expected, so a pack reports
all of them at once.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from streams.kernel.errors import ConfigError
from streams.kernel.model import (
    DEFAULT_STATION_SHARING,
    JAPAN_LAT,
    JAPAN_LON,
    STATION_SHARING,
    RiverStages,
    SensorKind,
    Station,
    in_japan,
)
from streams.kernel.rules import RIVER_STAGE_KEYS, RuleSet
from streams.packs.geojson import number_or_none
from streams.packs.rule_file import validate_overrides
from streams.platform.checks import Problems, read_csv

STATION_COLUMNS = ("station_id", "kind", "name_ja", "name_en", "lat", "lon", "alt_m", "sharing", "jma_station_code")
REQUIRED_COLUMNS = {"station_id", "lat", "lon", "name_ja"}
STATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
JMA_STATION_CODE = re.compile(r"^\d{17}$")  # 水位観測所 code of JMA's flood forecasts
SETTINGS_KEYS = ("river_stages", "downstream_municipalities", "hazard_zones", "rules")


def _station(row: dict[str, str], path: Path, where: str) -> Station:
    kind_text = (row.get("kind") or "rain_gauge").strip()
    try:
        kind = SensorKind(kind_text)
    except ValueError:
        raise ConfigError(
            path, f"kind is {kind_text!r}", where=where, expected=" | ".join(k.value for k in SensorKind)
        ) from None
    sharing = (row.get("sharing") or "").strip() or DEFAULT_STATION_SHARING
    if sharing not in STATION_SHARING:
        raise ConfigError(
            path,
            f"sharing is {sharing!r}",
            where=where,
            expected=" | ".join(STATION_SHARING) + f" (empty or no column: {DEFAULT_STATION_SHARING})",
        )
    lat, lon = number_or_none(row.get("lat")), number_or_none(row.get("lon"))
    if lat is None or lon is None or not in_japan(lat, lon):
        raise ConfigError(
            path,
            f"coordinates ({row.get('lat')}, {row.get('lon')}) are not in Japan",
            where=where,
            expected=f"lat in {JAPAN_LAT}, lon in {JAPAN_LON} (WGS84 degrees)",
        )
    jma_code = (row.get("jma_station_code") or "").strip() or None
    if jma_code is not None and (not JMA_STATION_CODE.match(jma_code) or kind is not SensorKind.RIVER_LEVEL_GAUGE):
        raise ConfigError(
            path,
            f"jma_station_code is {jma_code!r} on a {kind.value}",
            where=f"{where} jma_station_code",
            expected="the 17-digit 水位観測所 code of JMA's flood forecasts, on a river_level_gauge (or empty)",
        )
    return Station(
        station_id=row["station_id"].strip(),
        kind=kind,
        name=(row.get("name_ja") or "").strip(),
        name_en=(row.get("name_en") or "").strip(),
        lat=lat,
        lon=lon,
        alt_m=number_or_none(row.get("alt_m")),
        sharing=sharing,
        jma_station_code=jma_code,
    )


def load_stations(path: Path, problems: Problems) -> list[Station]:
    """Every valid row of a stations CSV; the others are recorded as problems."""
    header, rows = read_csv(path, problems, expected=f"a CSV with columns {', '.join(STATION_COLUMNS)}")
    if not header and problems:
        return []
    missing = REQUIRED_COLUMNS - set(header)
    if missing:
        problems.add(
            path, f"missing columns {sorted(missing)}", where="header", expected=f"columns {', '.join(STATION_COLUMNS)}"
        )
        return []
    stations: list[Station] = []
    seen: dict[str, int] = {}
    jma_codes: dict[str, int] = {}
    for row_number, row in rows:
        station_id = (row.get("station_id") or "").strip()
        where = f"row {row_number} station_id={station_id!r}"
        if not STATION_ID.match(station_id):
            problems.add(path, f"station id {station_id!r}", where=where, expected="letters, digits, '._:-'")
        elif station_id in seen:
            problems.add(
                path,
                f"duplicate station id {station_id} (first on row {seen[station_id]})",
                where=where,
                expected="one row per station",
            )
        else:
            seen[station_id] = row_number
            try:
                station = _station(row, path, where)
            except ConfigError as exc:
                problems.items.append(exc)
                continue
            code = station.jma_station_code
            if code is not None and code in jma_codes:
                problems.add(
                    path,
                    f"duplicate jma_station_code {code} (first on row {jma_codes[code]})",
                    where=f"{where} jma_station_code",
                    expected="one station per JMA 水位観測所",
                )
                continue
            if code is not None:
                jma_codes[code] = row_number
            stations.append(station)
    return stations


def _river_stages(raw: Any, path: Path, where: str) -> RiverStages:
    if not isinstance(raw, dict) or set(raw) - {f"{k}_m" for k in RIVER_STAGE_KEYS}:
        raise ConfigError(
            path,
            f"river_stages is {raw!r}",
            where=where,
            expected="standby_m, caution_m, evacuation_m, danger_m (and optional overflow_m) in metres",
        )
    stages = [number_or_none(raw.get(f"{k}_m")) for k in RIVER_STAGE_KEYS]
    standby, caution, evacuation, danger, overflow = stages
    if standby is None or caution is None or evacuation is None or danger is None:
        absent = [f"{k}_m" for k, value in zip(RIVER_STAGE_KEYS[:4], stages, strict=False) if value is None]
        raise ConfigError(path, f"river_stages lacks {absent}", where=where, expected="numbers in metres")
    ordered = [value for value in stages if value is not None]
    if any(b <= a for a, b in zip(ordered, ordered[1:], strict=False)):
        raise ConfigError(
            path,
            f"river stages {ordered} do not rise",
            where=where,
            expected="水防団待機 < 氾濫注意 < 避難判断 < 氾濫危険 (< 氾濫発生)",
        )
    return RiverStages(standby, caution, evacuation, danger, overflow)


def _with_settings(
    station: Station, settings: Any, path: Path, rules: RuleSet, known_codes: set[str], zone_ids: set[str]
) -> Station:
    """The station with its stations.yaml settings applied; ConfigError says what is wrong."""
    where = f"station {station.station_id}"
    if not isinstance(settings, dict):
        raise ConfigError(path, f"settings are {settings!r}", where=where, expected="a mapping")
    unknown = set(settings) - set(SETTINGS_KEYS)
    if unknown:
        raise ConfigError(path, f"unknown keys {sorted(unknown)}", where=where, expected=", ".join(SETTINGS_KEYS))
    is_river = station.kind is SensorKind.RIVER_LEVEL_GAUGE
    if "river_stages" in settings and not is_river:
        raise ConfigError(
            path,
            "river_stages on a station that is not a river_level_gauge",
            where=where,
            expected="kind river_level_gauge in the stations CSV",
        )
    if is_river and "river_stages" not in settings:
        raise ConfigError(
            path,
            "a river_level_gauge without river_stages",
            where=where,
            expected="river_stages: {standby_m, caution_m, evacuation_m, danger_m}",
        )
    stages = _river_stages(settings["river_stages"], path, where) if is_river else None
    downstream = tuple(str(c) for c in settings.get("downstream_municipalities") or [])
    bad = [c for c in downstream if c not in known_codes]
    if bad:
        raise ConfigError(
            path,
            f"unknown municipality code(s) {bad}",
            where=f"{where} downstream_municipalities",
            expected="codes of this pack's municipalities",
        )
    zones = tuple(str(z) for z in settings.get("hazard_zones") or [])
    bad = [z for z in zones if z not in zone_ids]
    if bad:
        raise ConfigError(
            path,
            f"unknown hazard zone id(s) {bad[:5]}",
            where=f"{where} hazard_zones",
            expected="zone ids of this pack's hazard zone files",
        )
    overrides = validate_overrides(rules, settings.get("rules"), file=path, where=where)
    return replace(
        station,
        river_stages=stages,
        downstream_municipalities=downstream,
        hazard_zone_ids=zones,
        rule_overrides=overrides,
    )


def apply_station_settings(
    stations: dict[str, Station],
    path: Path,
    rules: RuleSet,
    known_codes: set[str],
    zone_ids: set[str],
    problems: Problems,
) -> None:
    """Apply a pack's stations.yaml in place; every river gauge needs its stages there."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        problems.add(path, f"cannot read: {exc.strerror}")
        return None
    except yaml.YAMLError as exc:
        problems.add(path, f"not valid YAML: {exc}")
        return None
    if not isinstance(doc, dict):
        problems.add(path, "not a mapping", expected="station id -> settings")
        return None
    for station_id, settings in doc.items():
        station = stations.get(str(station_id))
        if station is None:
            problems.add(
                path,
                f"unknown station {station_id}",
                where=f"station {station_id}",
                expected="an id from the stations CSV",
            )
            continue
        try:
            stations[station.station_id] = _with_settings(station, settings, path, rules, known_codes, zone_ids)
        except ConfigError as exc:
            problems.items.append(exc)
    for station in stations.values():
        if station.kind is SensorKind.RIVER_LEVEL_GAUGE and str(station.station_id) not in map(str, doc):
            problems.add(
                path,
                "a river_level_gauge without river_stages",
                where=f"station {station.station_id}",
                expected="river_stages: {standby_m, caution_m, evacuation_m, danger_m}",
            )
    return None
