"""Region packs: a prefecture as plain data files, validated on load; ``region init`` builds one.

A pack is a folder (``regions/<name>/``) with a ``region.yaml`` manifest naming:

* municipalities — MLIT N03-style GeoJSON (行政区域), codes in ``N03_007``;
* stations — a CSV of every sensor, plus optional per-station settings in YAML;
* hazard zones — GeoJSON files, each with a kind and an attribute mapping (id, name, rank);
* rules — the rule file (see :mod:`streams.rules`).

Loading checks everything and reports every problem it finds, each naming the file, the feature or
row, and what was expected. See the README section "Region packs" for the format.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import string
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import shape

from streams.catalog import RegionTopics
from streams.errors import BosaiError, ConfigError
from streams.geo import RegionIndex, ZoneShape
from streams.model import Municipality, RiverStages, SensorKind, Station, ZoneRef
from streams.rules import RIVER_STAGE_KEYS, RuleSet, load_rules, validate_overrides

MANIFEST = "region.yaml"
JAPAN_LAT = (20.0, 46.0)   # Okinotorishima .. Etorofu, rounded out
JAPAN_LON = (122.0, 154.0)  # Yonaguni .. Minamitorishima
DEFAULT_NEAREST_M = 5000.0
_CODE = re.compile(r"^\d{5}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_STATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class PackError(BosaiError):
    """A region pack failed validation; ``problems`` lists every problem found."""

    def __init__(self, pack: Path, problems: list[ConfigError]):
        self.pack = pack
        self.problems = problems
        lines = [f"region pack {pack} is not valid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"  … and {len(problems) - 50} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class RegionPack:
    path: Path
    name: str
    prefecture_code: str
    prefecture_name: str
    municipalities: tuple[Municipality, ...]
    designated_cities: dict[str, str]  # city code -> city name
    stations: dict[str, Station]
    zones: tuple[ZoneShape, ...]
    rules: RuleSet
    index: RegionIndex

    def municipality(self, code: str) -> Municipality:
        return self.index.municipality(code)

    def affected_codes(self, code: str) -> tuple[str, ...]:
        """A municipality's code, and its designated city's code when it is a ward."""
        m = self.municipality(code)
        return (m.code, m.city_code) if m.city_code else (m.code,)

    def name_of(self, code: str) -> str:
        if code in self.designated_cities:
            return self.designated_cities[code]
        return self.municipality(code).name

    def wards_of(self, city_code: str) -> tuple[str, ...]:
        return tuple(m.code for m in self.municipalities if m.city_code == city_code)

    def find_municipality(self, code_or_name: str) -> str | None:
        """A code from a code or a name (ward names may be given as 横浜市中区 or 中区 when unique)."""
        if code_or_name in self.designated_cities or any(m.code == code_or_name for m in self.municipalities):
            return code_or_name
        hits = [m.code for m in self.municipalities
                if code_or_name in (m.name, f"{m.city_name or ''}{m.name}")]
        hits += [c for c, n in self.designated_cities.items() if n == code_or_name]
        return hits[0] if len(hits) == 1 else None

    def topics_input(self) -> RegionTopics:
        return RegionTopics(self.name, self.prefecture_code, tuple(m.code for m in self.municipalities))


# -- helpers -----------------------------------------------------------------------------------

class _Problems:
    """Collects problems so a pack reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    def add(self, file: Path, problem: str, *, where: str | None = None, expected: str | None = None) -> None:
        self.items.append(ConfigError(file, problem, where=where, expected=expected))


def _read_json(path: Path, problems: _Problems) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.add(path, f"cannot read: {exc.strerror}")
    except ValueError as exc:
        problems.add(path, f"not valid JSON: {exc}")
    return None


def _features(path: Path, problems: _Problems) -> list[dict]:
    doc = _read_json(path, problems)
    if doc is None:
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        problems.add(path, "not a GeoJSON FeatureCollection", expected='{"type": "FeatureCollection", "features": [...]}')
        return []
    return doc["features"]


def _polygon(feature: Any, path: Path, where: str, problems: _Problems):
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        problems.add(path, "feature has no geometry", where=where, expected="a Polygon or MultiPolygon")
        return None
    try:
        geom = shape(feature["geometry"])
    except Exception as exc:  # shapely raises several types for malformed coordinates
        problems.add(path, f"bad geometry: {exc}", where=where, expected="valid GeoJSON coordinates")
        return None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        problems.add(path, f"geometry is a {geom.geom_type}", where=where, expected="a Polygon or MultiPolygon")
        return None
    if geom.is_empty:
        problems.add(path, "geometry is empty", where=where, expected="a non-empty polygon")
        return None
    if not geom.is_valid:
        problems.add(path, f"bad geometry: {shapely.is_valid_reason(geom)}", where=where,
                     expected="a valid polygon (no self-intersections); fix it, e.g. with shapely.make_valid")
        return None
    minx, miny, maxx, maxy = geom.bounds
    if not (JAPAN_LON[0] <= minx and maxx <= JAPAN_LON[1] and JAPAN_LAT[0] <= miny and maxy <= JAPAN_LAT[1]):
        problems.add(path, f"geometry bounds {geom.bounds} are outside Japan", where=where,
                     expected="WGS84 lon/lat degrees (GeoJSON order: longitude first)")
        return None
    return geom


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN is no number


# -- loading ----------------------------------------------------------------------------------

def _load_municipalities(path: Path, prefecture_code: str, mapping: dict, cities: dict[str, str],
                         problems: _Problems):
    code_key = mapping.get("code_property", "N03_007")
    name_key = mapping.get("name_property", "N03_004")
    city_key = mapping.get("city_property", "N03_003")
    city_codes_by_name = {name: code for code, name in cities.items()}
    by_code: dict[str, tuple[Municipality, list]] = {}
    for i, feature in enumerate(_features(path, problems)):
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        code = props.get(code_key)
        where = f"feature {i} {code_key}={code!r}"
        if not isinstance(code, str) or not _CODE.match(code):
            problems.add(path, f"unknown code {code!r}", where=where,
                         expected=f"a 5-digit JIS X 0402 code in {code_key}")
            continue
        if not code.startswith(prefecture_code):
            problems.add(path, f"code {code} belongs to prefecture {code[:2]}, not {prefecture_code}", where=where,
                         expected=f"codes starting with {prefecture_code}")
            continue
        name = props.get(name_key)
        if not isinstance(name, str) or not name:
            problems.add(path, f"no name in {name_key}", where=where, expected="the municipality's name")
            continue
        geom = _polygon(feature, path, where, problems)
        if geom is None:
            continue
        city_name = props.get(city_key)
        city_code = None
        if isinstance(city_name, str) and city_name.endswith("市") and name.endswith("区"):
            city_code = city_codes_by_name.get(city_name)
            if city_code is None:
                problems.add(path, f"ward {name} ({code}) belongs to designated city {city_name}, "
                                   f"which region.yaml does not list", where=where,
                             expected=f"designated_cities: {{'<code>': {city_name}}} in {MANIFEST}")
                continue
        else:
            city_name = None
        municipality = Municipality(code=code, name=name, city_code=city_code, city_name=city_name)
        if code in by_code:
            known, parts = by_code[code]
            if known != municipality:
                problems.add(path, f"duplicate code {code} with different names ({known.name} / {name})",
                             where=where, expected="one name per code (several features of one code are merged)")
                continue
            parts.append(geom)
        else:
            by_code[code] = (municipality, [geom])
    municipalities, boundaries = [], []
    for code in sorted(by_code):
        municipality, parts = by_code[code]
        municipalities.append(municipality)
        boundaries.append(parts[0] if len(parts) == 1 else shapely.union_all(parts))
    if not municipalities and not problems.items:
        problems.add(path, "no municipalities", expected="at least one N03 feature")
    return municipalities, boundaries


def _load_zone_file(pack_dir: Path, entry: Any, i: int, manifest: Path, problems: _Problems) -> list[ZoneShape]:
    where = f"hazard_zones[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        problems.add(manifest, f"entry is {entry!r}", where=where, expected="file, kind, id (and name, rank)")
        return []
    kind = entry.get("kind")
    if not isinstance(kind, str) or not re.match(r"^[a-z][a-z0-9_]*$", kind):
        problems.add(manifest, f"kind is {kind!r}", where=where,
                     expected="a zone kind such as flood_inundation or landslide_warning")
        return []
    id_template = entry.get("id")
    if not isinstance(id_template, str) or "{" not in id_template:
        problems.add(manifest, f"id is {id_template!r}", where=where,
                     expected="a template over feature properties, e.g. 'lsld-{A33_004}'")
        return []
    name_template = entry.get("name", id_template)
    rank_key = entry.get("rank")
    keep = entry.get("attributes") or []
    path = pack_dir / entry["file"]
    fields = {f for _, f, _, _ in string.Formatter().parse(id_template + str(name_template)) if f}
    grouped: dict[str, tuple[ZoneRef, str, list, dict]] = {}
    for j, feature in enumerate(_features(path, problems)):
        props = (feature.get("properties") or {}) if isinstance(feature, dict) else {}
        spot = f"feature {j}"
        missing = sorted(f for f in fields | ({rank_key} if rank_key else set()) if props.get(f) is None)
        if missing:
            problems.add(path, f"missing properties {missing}", where=spot,
                         expected=f"the properties named by the mapping in {manifest.name} {where}")
            continue
        zone_id = id_template.format(**props)
        spot = f"feature {j} zone {zone_id}"
        rank = None
        if rank_key:
            rank_value = props[rank_key]
            if isinstance(rank_value, bool) or not isinstance(rank_value, (int, float)) or int(rank_value) != rank_value:
                problems.add(path, f"{rank_key} is {rank_value!r}", where=spot, expected="an integer rank")
                continue
            rank = int(rank_value)
        geom = _polygon(feature, path, spot, problems)
        if geom is None:
            continue
        ref = ZoneRef(zone_id=zone_id, kind=kind, rank=rank)
        if zone_id in grouped:
            if grouped[zone_id][0] != ref:
                problems.add(path, f"duplicate zone id {zone_id} with a different kind or rank", where=spot,
                             expected="an id template that tells zones apart (parts of one zone share id and rank)")
                continue
            grouped[zone_id][2].append(geom)
        else:
            grouped[zone_id] = (ref, str(name_template).format(**props), [geom],
                                {k: props.get(k) for k in keep})
    return [ZoneShape(ref=ref, name=name, attributes=attrs,
                      geometry=parts[0] if len(parts) == 1 else shapely.union_all(parts))
            for ref, name, parts, attrs in grouped.values()]


STATION_COLUMNS = ("station_id", "kind", "name_ja", "name_en", "lat", "lon", "alt_m")


def _load_stations(path: Path, problems: _Problems) -> list[Station]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        problems.add(path, f"cannot read: {exc.strerror}")
        return []
    reader = csv.DictReader(io.StringIO(text))
    required = {"station_id", "lat", "lon", "name_ja"}
    missing = required - set(reader.fieldnames or [])
    if missing:
        problems.add(path, f"missing columns {sorted(missing)}", where="header",
                     expected=f"columns {', '.join(STATION_COLUMNS)}")
        return []
    stations: list[Station] = []
    seen: dict[str, int] = {}
    for row_number, row in enumerate(reader, start=2):
        station_id = (row.get("station_id") or "").strip()
        where = f"row {row_number} station_id={station_id!r}"
        if not _STATION_ID.match(station_id):
            problems.add(path, f"station id {station_id!r}", where=where, expected="letters, digits, '._:-'")
            continue
        if station_id in seen:
            problems.add(path, f"duplicate station id {station_id} (first on row {seen[station_id]})", where=where,
                         expected="one row per station")
            continue
        seen[station_id] = row_number
        kind_text = (row.get("kind") or "rain_gauge").strip()
        try:
            kind = SensorKind(kind_text)
        except ValueError:
            problems.add(path, f"kind is {kind_text!r}", where=where,
                         expected=" | ".join(k.value for k in SensorKind))
            continue
        lat, lon = _float(row.get("lat")), _float(row.get("lon"))
        if lat is None or lon is None or not (JAPAN_LAT[0] <= lat <= JAPAN_LAT[1] and JAPAN_LON[0] <= lon <= JAPAN_LON[1]):
            problems.add(path, f"coordinates ({row.get('lat')}, {row.get('lon')}) are not in Japan", where=where,
                         expected=f"lat in {JAPAN_LAT}, lon in {JAPAN_LON} (WGS84 degrees)")
            continue
        stations.append(Station(station_id=station_id, kind=kind, name=(row.get("name_ja") or "").strip(),
                                name_en=(row.get("name_en") or "").strip(), lat=lat, lon=lon,
                                alt_m=_float(row.get("alt_m"))))
    return stations


def _apply_station_settings(stations: dict[str, Station], path: Path, rules: RuleSet, known_codes: set[str],
                            zone_ids: set[str], problems: _Problems) -> None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        problems.add(path, f"cannot read: {exc.strerror}")
        return
    except yaml.YAMLError as exc:
        problems.add(path, f"not valid YAML: {exc}")
        return
    if not isinstance(doc, dict):
        problems.add(path, "not a mapping", expected="station id -> settings")
        return
    for station_id, settings in doc.items():
        station_id = str(station_id)
        where = f"station {station_id}"
        if station_id not in stations:
            problems.add(path, f"unknown station {station_id}", where=where, expected="an id from the stations CSV")
            continue
        if not isinstance(settings, dict):
            problems.add(path, f"settings are {settings!r}", where=where, expected="a mapping")
            continue
        unknown = set(settings) - {"river_stages", "downstream_municipalities", "hazard_zones", "rules"}
        if unknown:
            problems.add(path, f"unknown keys {sorted(unknown)}", where=where,
                         expected="river_stages, downstream_municipalities, hazard_zones, rules")
            continue
        station = stations[station_id]
        stages = None
        if "river_stages" in settings:
            raw = settings["river_stages"]
            if station.kind is not SensorKind.RIVER_LEVEL_GAUGE:
                problems.add(path, "river_stages on a station that is not a river_level_gauge", where=where,
                             expected="kind river_level_gauge in the stations CSV")
                continue
            if not isinstance(raw, dict) or set(raw) - {f"{k}_m" for k in RIVER_STAGE_KEYS}:
                problems.add(path, f"river_stages is {raw!r}", where=where,
                             expected="standby_m, caution_m, evacuation_m, danger_m (and optional overflow_m) in metres")
                continue
            values = {k: _float(raw.get(f"{k}_m")) for k in RIVER_STAGE_KEYS}
            absent = [f"{k}_m" for k in RIVER_STAGE_KEYS[:4] if values[k] is None]
            if absent:
                problems.add(path, f"river_stages lacks {absent}", where=where, expected="numbers in metres")
                continue
            ordered = [values[k] for k in RIVER_STAGE_KEYS if values[k] is not None]
            if any(b <= a for a, b in zip(ordered, ordered[1:])):
                problems.add(path, f"river stages {ordered} do not rise", where=where,
                             expected="水防団待機 < 氾濫注意 < 避難判断 < 氾濫危険 (< 氾濫発生)")
                continue
            stages = RiverStages(values["standby"], values["caution"], values["evacuation"], values["danger"],
                                 values["overflow"])
        elif station.kind is SensorKind.RIVER_LEVEL_GAUGE:
            problems.add(path, "a river_level_gauge without river_stages", where=where,
                         expected="river_stages: {standby_m, caution_m, evacuation_m, danger_m}")
            continue
        downstream = tuple(str(c) for c in settings.get("downstream_municipalities") or [])
        bad = [c for c in downstream if c not in known_codes]
        if bad:
            problems.add(path, f"unknown municipality code(s) {bad}", where=f"{where} downstream_municipalities",
                         expected="codes of this pack's municipalities")
            continue
        zones = tuple(str(z) for z in settings.get("hazard_zones") or [])
        bad = [z for z in zones if z not in zone_ids]
        if bad:
            problems.add(path, f"unknown hazard zone id(s) {bad[:5]}", where=f"{where} hazard_zones",
                         expected="zone ids of this pack's hazard zone files")
            continue
        try:
            overrides = validate_overrides(rules, settings.get("rules"), file=path, where=where)
        except ConfigError as exc:
            problems.items.append(exc)
            continue
        stations[station_id] = replace(station, river_stages=stages, downstream_municipalities=downstream,
                                       hazard_zone_ids=zones, rule_overrides=overrides)
    for station in stations.values():
        if station.kind is SensorKind.RIVER_LEVEL_GAUGE and station.river_stages is None and station.station_id not in doc:
            problems.add(path, "a river_level_gauge without river_stages", where=f"station {station.station_id}",
                         expected="river_stages: {standby_m, caution_m, evacuation_m, danger_m}")


def load_pack(pack_dir: Path | str) -> RegionPack:
    """Load and validate a region pack; raise PackError listing every problem."""
    pack_dir = Path(pack_dir)
    manifest = pack_dir / MANIFEST
    problems = _Problems()
    try:
        doc = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackError(pack_dir, [ConfigError(manifest, f"cannot read the pack manifest: {exc.strerror}",
                                               expected=f"a region pack folder with {MANIFEST}")]) from exc
    except yaml.YAMLError as exc:
        raise PackError(pack_dir, [ConfigError(manifest, f"not valid YAML: {exc}")]) from exc
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise PackError(pack_dir, [ConfigError(manifest, "not a region manifest", where="format",
                                               expected="format: 1, name, prefecture_code, files")])

    def need(key: str, pattern: re.Pattern | None, expected: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or (pattern and not pattern.match(value)):
            problems.add(manifest, f"{key} is {value!r}", where=key, expected=expected)
            return ""
        return value

    name = need("name", _NAME, "a lower-case pack name such as tochigi (it goes into topic names)")
    prefecture_code = need("prefecture_code", re.compile(r"^\d{2}$"), "a 2-digit prefecture code in quotes, e.g. '09'")
    prefecture_name = need("prefecture_name", None, "the prefecture's name, e.g. 栃木県")
    cities_raw = doc.get("designated_cities") or {}
    cities: dict[str, str] = {}
    if not isinstance(cities_raw, dict):
        problems.add(manifest, f"designated_cities is {cities_raw!r}", where="designated_cities",
                     expected="city code -> city name")
    else:
        for code, city in cities_raw.items():
            if not _CODE.match(str(code)) or not isinstance(city, str):
                problems.add(manifest, f"{code!r}: {city!r}", where="designated_cities",
                             expected="a quoted 5-digit code and the city's name")
            else:
                cities[str(code)] = city
    geofence = doc.get("geofence") or {}
    nearest_m = _float(geofence.get("nearest_max_distance_m", DEFAULT_NEAREST_M))
    if nearest_m is None or nearest_m < 0:
        problems.add(manifest, f"nearest_max_distance_m is {geofence.get('nearest_max_distance_m')!r}",
                     where="geofence", expected="metres >= 0 (0 turns the nearest fallback off)")
        nearest_m = 0.0
    files = doc.get("files") or {}
    if not isinstance(files, dict):
        problems.add(manifest, f"files is {files!r}", where="files", expected="municipalities, stations, rules")
        files = {}
    for key in ("municipalities", "stations", "rules"):
        if not isinstance(files.get(key), str):
            problems.add(manifest, f"files.{key} is {files.get(key)!r}", where=f"files.{key}",
                         expected="a file name inside the pack")
    if problems.items:
        raise PackError(pack_dir, problems.items)

    municipalities, boundaries = _load_municipalities(
        pack_dir / files["municipalities"], prefecture_code, doc.get("municipality_properties") or {}, cities,
        problems)
    for code, city in cities.items():
        if not any(m.city_code == code for m in municipalities) and municipalities:
            problems.add(manifest, f"designated city {city} ({code}) has no wards in {files['municipalities']}",
                         where="designated_cities", expected="cities whose wards are in the boundaries file")
    zones: list[ZoneShape] = []
    zone_entries = doc.get("hazard_zones") or []
    if not isinstance(zone_entries, list):
        problems.add(manifest, f"hazard_zones is {zone_entries!r}", where="hazard_zones", expected="a list")
        zone_entries = []
    for i, entry in enumerate(zone_entries):
        zones.extend(_load_zone_file(pack_dir, entry, i, manifest, problems))
    rules = None
    try:
        rules = load_rules(pack_dir / files["rules"])
    except ConfigError as exc:
        problems.items.append(exc)
    station_list = _load_stations(pack_dir / files["stations"], problems)
    if problems.items or rules is None:
        raise PackError(pack_dir, problems.items)

    index = RegionIndex(municipalities, boundaries, zones, nearest_max_distance_m=nearest_m)
    stations: dict[str, Station] = {}
    stations_file = pack_dir / files["stations"]
    if station_list:
        located = index.locate_many([s.lat for s in station_list], [s.lon for s in station_list], with_zones=False)
        for k, station in enumerate(station_list):
            i = int(located.municipality_index[k])
            if i < 0:
                near_code, near_m = index.nearest_municipality(station.lat, station.lon)
                problems.add(stations_file, f"station {station.station_id} ({station.name}) at "
                                            f"({station.lat}, {station.lon}) is outside every municipality, "
                                            f"{near_m:.0f} m from the nearest ({near_code})",
                             where=f"station_id={station.station_id}",
                             expected=f"a point within {nearest_m:.0f} m of a municipality "
                                      f"(geofence.nearest_max_distance_m in {MANIFEST})")
                continue
            stations[station.station_id] = replace(station, municipality_code=municipalities[i].code)
    if isinstance(files.get("station_settings"), str):
        _apply_station_settings(stations, pack_dir / files["station_settings"], rules,
                                {m.code for m in municipalities}, {z.ref.zone_id for z in zones}, problems)
    if problems.items:
        raise PackError(pack_dir, problems.items)
    return RegionPack(path=pack_dir, name=name, prefecture_code=prefecture_code, prefecture_name=prefecture_name,
                      municipalities=tuple(municipalities), designated_cities=cities, stations=stations,
                      zones=tuple(zones), rules=rules, index=index)


def default_pack_dirs() -> list[Path]:
    """Every pack shipped under regions/ (folders starting with '_' are templates)."""
    from streams.settings import project_root

    root = project_root() / "regions"
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_") and (p / MANIFEST).exists())


# -- region init --------------------------------------------------------------------------------

def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_station_list(path: Path) -> list[dict[str, str]]:
    """Stations from a station CSV or an AMeDAS-format observation CSV (repeated rows per station)."""
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            missing = {"station_id", "lat", "lon", "name_ja"} - columns
            if missing:
                raise ConfigError(path, f"missing columns {sorted(missing)}", where="header",
                                  expected="station_id, name_ja, name_en, lat, lon (AMeDAS format is fine)")
            stations: dict[str, dict[str, str]] = {}
            for row_number, row in enumerate(reader, start=2):
                station_id = (row.get("station_id") or "").strip()
                if not station_id:
                    raise ConfigError(path, "empty station_id", where=f"row {row_number}", expected="a station id")
                entry = {"station_id": station_id, "kind": (row.get("kind") or "rain_gauge").strip(),
                         "name_ja": row.get("name_ja", "").strip(), "name_en": row.get("name_en", "").strip(),
                         "lat": row["lat"].strip(), "lon": row["lon"].strip(), "alt_m": (row.get("alt_m") or "").strip()}
                known = stations.setdefault(station_id, entry)
                if (known["lat"], known["lon"]) != (entry["lat"], entry["lon"]):
                    raise ConfigError(path, f"station {station_id} has two positions ({known['lat']}, {known['lon']}) "
                                            f"and ({entry['lat']}, {entry['lon']})", where=f"row {row_number}",
                                      expected="one position per station")
    except OSError as exc:
        raise ConfigError(path, f"cannot read the station list: {exc.strerror}") from exc
    return [stations[k] for k in sorted(stations)]


def _designated_cities_from_n03(features: Iterable[dict]) -> dict[str, str]:
    """City code per designated city: its lowest ward code with the last digit 0 (14101 → 14100)."""
    wards: dict[str, list[str]] = {}
    for feature in features:
        props = feature.get("properties") or {}
        city, name, code = props.get("N03_003"), props.get("N03_004"), props.get("N03_007")
        if isinstance(city, str) and city.endswith("市") and isinstance(name, str) and name.endswith("区") and code:
            wards.setdefault(city, []).append(code)
    return {min(codes)[:4] + "0": city for city, codes in sorted(wards.items())}


def init_pack(name: str, n03: Path, stations_csv: Path, out: Path, *, zones: Iterable[tuple[Path, str, str]] = (),
              nearest_max_distance_m: float = DEFAULT_NEAREST_M, force: bool = False) -> RegionPack:
    """Build a valid pack from an N03 GeoJSON and a station list, with the default JMA rule set.

    Stations outside the prefecture (beyond the nearest-municipality reach) are left out and listed in
    the manifest's header, so one AMeDAS file covering several prefectures serves each of them.
    """
    from streams.settings import project_root

    if not _NAME.match(name):
        raise ConfigError("--name", f"{name!r} is not a pack name", expected="lower-case letters, digits and '-'")
    problems = _Problems()
    features = _features(n03, problems)
    if problems.items:
        raise PackError(n03, problems.items)
    kept = [f for f in features if (f.get("properties") or {}).get("N03_007")]
    skipped = len(features) - len(kept)  # N03 has code-less features for disputed areas (所属未定地)
    codes = sorted({f["properties"]["N03_007"] for f in kept})
    prefectures = sorted({c[:2] for c in codes})
    if len(prefectures) != 1:
        raise ConfigError(n03, f"codes of {len(prefectures)} prefectures {prefectures}",
                          expected="the N03 features of exactly one prefecture")
    pref_names = {(f.get("properties") or {}).get("N03_001") for f in kept} - {None}
    station_rows = read_station_list(stations_csv)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(out, "the output folder exists and is not empty", expected="a new folder, or --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "municipalities.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": kept}, ensure_ascii=False), encoding="utf-8")
    cities = _designated_cities_from_n03(kept)
    municipalities, boundaries = _load_municipalities(out / "municipalities.geojson", prefectures[0], {}, cities,
                                                      problems)
    if problems.items:
        raise PackError(n03, problems.items)
    index = RegionIndex(municipalities, boundaries, nearest_max_distance_m=nearest_max_distance_m)
    located = index.locate_many([_float(r["lat"]) or 0.0 for r in station_rows],
                                [_float(r["lon"]) or 0.0 for r in station_rows], with_zones=False)
    inside = [row for row, i in zip(station_rows, located.municipality_index.tolist()) if i >= 0]
    outside = [row["station_id"] for row, i in zip(station_rows, located.municipality_index.tolist()) if i < 0]
    station_rows = inside
    with open(out / "stations.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(STATION_COLUMNS))
        writer.writeheader()
        writer.writerows(station_rows)
    shutil.copyfile(project_root() / "regions" / "_template" / "rules.yaml", out / "rules.yaml")
    zone_entries = []
    if zones:
        (out / "zones").mkdir(exist_ok=True)
    for zone_file, kind, id_template in zones:
        shutil.copyfile(zone_file, out / "zones" / zone_file.name)
        zone_entries.append({"file": f"zones/{zone_file.name}", "kind": kind, "id": id_template})
    manifest = {
        "format": 1,
        "name": name,
        "prefecture_code": prefectures[0],
        "prefecture_name": sorted(pref_names)[0] if pref_names else "",
        "designated_cities": cities,
        "files": {"municipalities": "municipalities.geojson", "stations": "stations.csv", "rules": "rules.yaml"},
        "hazard_zones": zone_entries,
        "geofence": {"nearest_max_distance_m": nearest_max_distance_m},
    }
    header = (f"# Region pack built by `bosai region init` from {n03.name} and {stations_csv.name}.\n"
              f"# {skipped} N03 feature(s) without a code were left out; {len(outside)} station(s) outside "
              f"this prefecture were left out{': ' + ', '.join(outside) if outside else ''}.\n")
    (out / MANIFEST).write_text(header + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False),
                                encoding="utf-8")
    return load_pack(out)
