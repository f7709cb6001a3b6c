"""Region packs: a prefecture as plain data files, validated on load (``region init`` builds one:
:mod:`streams.packs.region_init`).

A pack is a folder (``regions/<name>/``) with a ``region.yaml`` manifest naming:

* municipalities — MLIT N03-style GeoJSON (行政区域), codes in ``N03_007``;
* stations — a CSV of every sensor, plus optional per-station settings in YAML;
* hazard zones — GeoJSON files, each with a kind and an attribute mapping (id, name, rank);
* rules — the rule file (see :mod:`streams.kernel.rules`).

Loading checks everything and reports every problem it finds, each naming the file, the feature or
row, and what was expected. See docs/region-packs.md for the format.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry.base import BaseGeometry

from streams.kernel.errors import BosaiError, ConfigError
from streams.kernel.geo import RegionIndex, ZoneShape
from streams.kernel.model import Municipality, Station, ZoneRef
from streams.kernel.region import INTENSITY_CLASSES, HierarchyRow, OfficialSettings, RegionPack
from streams.packs.geojson import features, number_or_none, polygon
from streams.packs.jma_area_files import HIERARCHY_KEY, TABLES, load_hierarchy, load_table
from streams.packs.jma_areas import OWN, JmaAreas
from streams.packs.rule_file import load_rules
from streams.packs.station_file import apply_station_settings, load_stations
from streams.platform.checks import Problems
from streams.platform.settings import project_root

MANIFEST = "region.yaml"
DEFAULT_NEAREST_M = 5000.0
_CODE = re.compile(r"^\d{5}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class PackError(BosaiError):
    """A region pack failed validation; ``problems`` lists every problem found."""

    def __init__(self, pack: Path | str, problems: list[ConfigError]):
        self.pack = pack
        self.problems = problems
        lines = [f"region pack {pack} is not valid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"  … and {len(problems) - 50} more")
        super().__init__("\n".join(lines))


# -- helpers -----------------------------------------------------------------------------------

# -- loading ----------------------------------------------------------------------------------


def _union(parts: list[BaseGeometry]) -> BaseGeometry:
    """Several features of one municipality or zone are parts of one shape."""
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


@dataclass(frozen=True)
class _N03Keys:
    code: str
    name: str
    city: str
    prefecture_code: str
    city_codes_by_name: dict[str, str]


def _municipality_of(
    feature: Any, i: int, path: Path, keys: _N03Keys, problems: Problems
) -> tuple[Municipality, BaseGeometry] | None:
    """One N03 feature as a municipality (or ward) and its polygon; None after recording what is wrong."""
    props = feature.get("properties") or {} if isinstance(feature, dict) else {}
    code, name = props.get(keys.code), props.get(keys.name)
    where = f"feature {i} {keys.code}={code!r}"
    if not isinstance(code, str) or not _CODE.match(code):
        problems.add(path, f"unknown code {code!r}", where=where, expected=f"a 5-digit JIS X 0402 code in {keys.code}")
        return None
    if not code.startswith(keys.prefecture_code):
        problems.add(
            path,
            f"code {code} belongs to prefecture {code[:2]}, not {keys.prefecture_code}",
            where=where,
            expected=f"codes starting with {keys.prefecture_code}",
        )
        return None
    if not isinstance(name, str) or not name:
        problems.add(path, f"no name in {keys.name}", where=where, expected="the municipality's name")
        return None
    geom = polygon(feature, path, where, problems)
    if geom is None:
        return None
    city_name, city_code = props.get(keys.city), None
    if not (isinstance(city_name, str) and city_name.endswith("市") and name.endswith("区")):
        city_name = None
    elif (city_code := keys.city_codes_by_name.get(city_name)) is None:
        problems.add(
            path,
            f"ward {name} ({code}) belongs to designated city {city_name}, which region.yaml does not list",
            where=where,
            expected=f"designated_cities: {{'<code>': {city_name}}} in {MANIFEST}",
        )
        return None
    return Municipality(code=code, name=name, city_code=city_code, city_name=city_name), geom


def _load_municipalities(
    path: Path, prefecture_code: str, mapping: dict[str, Any], cities: dict[str, str], problems: Problems
) -> tuple[list[Municipality], list[BaseGeometry]]:
    keys = _N03Keys(
        code=mapping.get("code_property", "N03_007"),
        name=mapping.get("name_property", "N03_004"),
        city=mapping.get("city_property", "N03_003"),
        prefecture_code=prefecture_code,
        city_codes_by_name={name: code for code, name in cities.items()},
    )
    by_code: dict[str, tuple[Municipality, list[BaseGeometry]]] = {}
    for i, feature in enumerate(features(path, problems)):
        found = _municipality_of(feature, i, path, keys, problems)
        if found is None:
            continue
        municipality, geom = found
        known, parts = by_code.setdefault(municipality.code, (municipality, []))
        if known != municipality:
            problems.add(
                path,
                f"duplicate code {municipality.code} with different names ({known.name} / {municipality.name})",
                where=f"feature {i} {keys.code}={municipality.code!r}",
                expected="one name per code (several features of one code are merged)",
            )
            continue
        parts.append(geom)
    if not by_code and not problems.items:
        problems.add(path, "no municipalities", expected="at least one N03 feature")
    return [by_code[c][0] for c in sorted(by_code)], [_union(by_code[c][1]) for c in sorted(by_code)]


@dataclass(frozen=True)
class _ZoneMapping:
    """How one hazard-zone file's features become zones (region.yaml hazard_zones[i])."""

    path: Path
    where: str
    kind: str
    id_template: str
    name_template: str
    rank_key: str | None
    keep: tuple[str, ...]

    @property
    def fields(self) -> set[str]:
        named = {f for _, f, _, _ in string.Formatter().parse(self.id_template + self.name_template) if f}
        return named | ({self.rank_key} if self.rank_key else set())


def _zone_mapping(pack_dir: Path, entry: Any, i: int, manifest: Path, problems: Problems) -> _ZoneMapping | None:
    where = f"hazard_zones[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        problems.add(manifest, f"entry is {entry!r}", where=where, expected="file, kind, id (and name, rank)")
        return None
    kind, id_template = entry.get("kind"), entry.get("id")
    if not isinstance(kind, str) or not re.match(r"^[a-z][a-z0-9_]*$", kind):
        problems.add(
            manifest,
            f"kind is {kind!r}",
            where=where,
            expected="a zone kind such as flood_inundation or landslide_warning",
        )
        return None
    if not isinstance(id_template, str) or "{" not in id_template:
        problems.add(
            manifest,
            f"id is {id_template!r}",
            where=where,
            expected="a template over feature properties, e.g. 'lsld-{A33_004}'",
        )
        return None
    return _ZoneMapping(
        path=pack_dir / entry["file"],
        where=where,
        kind=kind,
        id_template=id_template,
        name_template=str(entry.get("name", id_template)),
        rank_key=entry.get("rank"),
        keep=tuple(entry.get("attributes") or []),
    )


def _zone_of(
    feature: Any, j: int, mapping: _ZoneMapping, manifest: Path, problems: Problems
) -> tuple[ZoneRef, str, BaseGeometry, dict[str, Any]] | None:
    """One feature as (zone, name, polygon, kept attributes); None after recording what is wrong."""
    path = mapping.path
    props = (feature.get("properties") or {}) if isinstance(feature, dict) else {}
    missing = sorted(f for f in mapping.fields if props.get(f) is None)
    if missing:
        problems.add(
            path,
            f"missing properties {missing}",
            where=f"feature {j}",
            expected=f"the properties named by the mapping in {manifest.name} {mapping.where}",
        )
        return None
    zone_id = mapping.id_template.format(**props)
    spot = f"feature {j} zone {zone_id}"
    rank = None
    if mapping.rank_key:
        value = props[mapping.rank_key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            problems.add(path, f"{mapping.rank_key} is {value!r}", where=spot, expected="an integer rank")
            return None
        rank = int(value)
    geom = polygon(feature, path, spot, problems)
    if geom is None:
        return None
    return (
        ZoneRef(zone_id=zone_id, kind=mapping.kind, rank=rank),
        mapping.name_template.format(**props),
        geom,
        {k: props.get(k) for k in mapping.keep},
    )


def _load_zone_file(pack_dir: Path, entry: Any, i: int, manifest: Path, problems: Problems) -> list[ZoneShape]:
    mapping = _zone_mapping(pack_dir, entry, i, manifest, problems)
    if mapping is None:
        return []
    grouped: dict[str, tuple[ZoneRef, str, list[BaseGeometry], dict[str, Any]]] = {}
    for j, feature in enumerate(features(mapping.path, problems)):
        found = _zone_of(feature, j, mapping, manifest, problems)
        if found is None:
            continue
        ref, name, geom, attributes = found
        known = grouped.setdefault(ref.zone_id, (ref, name, [], attributes))
        if known[0] != ref:
            problems.add(
                mapping.path,
                f"duplicate zone id {ref.zone_id} with a different kind or rank",
                where=f"feature {j} zone {ref.zone_id}",
                expected="an id template that tells zones apart (parts of one zone share id and rank)",
            )
            continue
        known[2].append(geom)
    return [
        ZoneShape(ref=ref, name=name, attributes=attrs, geometry=_union(parts))
        for ref, name, parts, attrs in grouped.values()
    ]


@dataclass(frozen=True)
class Manifest:
    """What region.yaml says, checked."""

    path: Path
    name: str
    prefecture_code: str
    prefecture_name: str
    designated_cities: dict[str, str]
    nearest_max_distance_m: float
    files: dict[str, Any]  # file names by key (municipalities, stations, rules checked to be names)
    municipality_properties: dict[str, Any]
    hazard_zones: list[Any]  # the entries, each checked when its zone file is loaded
    official: OfficialSettings = OfficialSettings()


def _manifest_document(pack_dir: Path) -> dict[str, Any]:
    """region.yaml parsed; a pack that has none, or not a manifest, stops here."""
    manifest = pack_dir / MANIFEST
    try:
        doc = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        problem = ConfigError(
            manifest, f"cannot read the pack manifest: {exc.strerror}", expected=f"a region pack folder with {MANIFEST}"
        )
        raise PackError(pack_dir, [problem]) from exc
    except yaml.YAMLError as exc:
        raise PackError(pack_dir, [ConfigError(manifest, f"not valid YAML: {exc}")]) from exc
    if not isinstance(doc, dict) or doc.get("format") != 1:
        problem = ConfigError(
            manifest, "not a region manifest", where="format", expected="format: 1, name, prefecture_code, files"
        )
        raise PackError(pack_dir, [problem])
    return doc


def _designated_cities(raw: Any, manifest: Path, problems: Problems) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.add(
            manifest, f"designated_cities is {raw!r}", where="designated_cities", expected="city code -> city name"
        )
        return {}
    cities: dict[str, str] = {}
    for code, city in raw.items():
        if not _CODE.match(str(code)) or not isinstance(city, str):
            problems.add(
                manifest,
                f"{code!r}: {city!r}",
                where="designated_cities",
                expected="a quoted 5-digit code and the city's name",
            )
        else:
            cities[str(code)] = city
    return cities


def _files(raw: Any, manifest: Path, problems: Problems) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.add(manifest, f"files is {raw!r}", where="files", expected="municipalities, stations, rules")
        return {}
    for key in ("municipalities", "stations", "rules"):
        if not isinstance(raw.get(key), str):
            problems.add(
                manifest,
                f"files.{key} is {raw.get(key)!r}",
                where=f"files.{key}",
                expected="a file name inside the pack",
            )
    return raw


def _official(raw: Any, manifest: Path, problems: Problems) -> OfficialSettings:
    """region.yaml ``official:``: earthquake_min_intensity (JMA's class: 1 … 4, 5-, 5+, 6-, 6+, 7) and
    earthquake_alert_hours (> 0)."""
    if not isinstance(raw, dict):
        problems.add(manifest, f"official is {raw!r}", where="official", expected="earthquake_min_intensity, …")
        return OfficialSettings()
    unknown = sorted(set(raw) - {"earthquake_min_intensity", "earthquake_alert_hours"})
    if unknown:
        problems.add(
            manifest,
            f"official has {unknown}",
            where="official",
            expected="earthquake_min_intensity and earthquake_alert_hours only",
        )
    minimum = str(raw.get("earthquake_min_intensity", "1"))
    if minimum not in INTENSITY_CLASSES:
        problems.add(
            manifest,
            f"earthquake_min_intensity is {raw.get('earthquake_min_intensity')!r}",
            where="official.earthquake_min_intensity",
            expected=f"one of JMA's intensity classes in quotes: {', '.join(INTENSITY_CLASSES)}",
        )
        minimum = "1"
    hours = number_or_none(raw.get("earthquake_alert_hours", 24))
    if hours is None or hours <= 0:
        problems.add(
            manifest,
            f"earthquake_alert_hours is {raw.get('earthquake_alert_hours')!r}",
            where="official.earthquake_alert_hours",
            expected="hours > 0",
        )
        hours = 24
    return OfficialSettings(minimum, int(hours * 3_600_000))


def _read_manifest(pack_dir: Path, problems: Problems) -> Manifest:
    manifest = pack_dir / MANIFEST
    doc = _manifest_document(pack_dir)

    def need(key: str, pattern: re.Pattern[str] | None, expected: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or (pattern and not pattern.match(value)):
            problems.add(manifest, f"{key} is {value!r}", where=key, expected=expected)
            return ""
        return value

    geofence = doc.get("geofence") or {}
    nearest_m = number_or_none(geofence.get("nearest_max_distance_m", DEFAULT_NEAREST_M))
    if nearest_m is None or nearest_m < 0:
        problems.add(
            manifest,
            f"nearest_max_distance_m is {geofence.get('nearest_max_distance_m')!r}",
            where="geofence",
            expected="metres >= 0 (0 turns the nearest fallback off)",
        )
        nearest_m = 0.0
    zone_entries = doc.get("hazard_zones") or []
    if not isinstance(zone_entries, list):
        problems.add(manifest, f"hazard_zones is {zone_entries!r}", where="hazard_zones", expected="a list")
        zone_entries = []
    return Manifest(
        path=manifest,
        name=need("name", _NAME, "a lower-case pack name such as tochigi (it goes into topic names)"),
        prefecture_code=need(
            "prefecture_code", re.compile(r"^\d{2}$"), "a 2-digit prefecture code in quotes, e.g. '09'"
        ),
        prefecture_name=need("prefecture_name", None, "the prefecture's name, e.g. 栃木県"),
        designated_cities=_designated_cities(doc.get("designated_cities") or {}, manifest, problems),
        nearest_max_distance_m=nearest_m,
        files=_files(doc.get("files") or {}, manifest, problems),
        municipality_properties=doc.get("municipality_properties") or {},
        hazard_zones=zone_entries,
        official=_official(doc.get("official") or {}, manifest, problems),
    )


def _locate_stations(
    index: RegionIndex, station_list: list[Station], manifest: Manifest, problems: Problems
) -> dict[str, Station]:
    """The stations with their municipality; those beyond every municipality's reach are problems."""
    stations: dict[str, Station] = {}
    if not station_list:
        return stations
    stations_file = manifest.path.parent / manifest.files["stations"]
    located = index.locate_many([s.lat for s in station_list], [s.lon for s in station_list], with_zones=False)
    for k, station in enumerate(station_list):
        i = int(located.municipality_index[k])
        if i >= 0:
            stations[station.station_id] = replace(station, municipality_code=index.municipalities[i].code)
            continue
        near_code, near_m = index.nearest_municipality(station.lat, station.lon)
        problems.add(
            stations_file,
            f"station {station.station_id} ({station.name}) at "
            f"({station.lat}, {station.lon}) is outside every municipality, "
            f"{near_m:.0f} m from the nearest ({near_code})",
            where=f"station_id={station.station_id}",
            expected=f"a point within {manifest.nearest_max_distance_m:.0f} m of a municipality "
            f"(geofence.nearest_max_distance_m in {MANIFEST})",
        )
    return stations


def load_pack(pack_dir: Path | str) -> RegionPack:
    """Load and validate a region pack; raise PackError listing every problem."""
    pack_dir = Path(pack_dir)
    problems = Problems()
    manifest = _read_manifest(pack_dir, problems)
    if problems:
        raise PackError(pack_dir, problems.items)
    files, cities = manifest.files, manifest.designated_cities
    municipalities, boundaries = _load_municipalities(
        pack_dir / files["municipalities"], manifest.prefecture_code, manifest.municipality_properties, cities, problems
    )
    for code, city in cities.items():
        if municipalities and not any(m.city_code == code for m in municipalities):
            problems.add(
                manifest.path,
                f"designated city {city} ({code}) has no wards in {files['municipalities']}",
                where="designated_cities",
                expected="cities whose wards are in the boundaries file",
            )
    zones = [
        zone
        for i, entry in enumerate(manifest.hazard_zones)
        for zone in _load_zone_file(pack_dir, entry, i, manifest.path, problems)
    ]
    rules = None
    try:
        rules = load_rules(pack_dir / files["rules"])
    except ConfigError as exc:
        problems.items.append(exc)
    station_list = load_stations(pack_dir / files["stations"], problems)
    if problems or rules is None:
        raise PackError(pack_dir, problems.items)
    index = RegionIndex(municipalities, boundaries, zones, nearest_max_distance_m=manifest.nearest_max_distance_m)
    stations = _locate_stations(index, station_list, manifest, problems)
    if isinstance(files.get("station_settings"), str):
        apply_station_settings(
            stations,
            pack_dir / files["station_settings"],
            rules,
            {m.code for m in municipalities},
            {z.ref.zone_id for z in zones},
            problems,
        )
    jma = _jma_tables(pack_dir, manifest, municipalities, problems)
    if problems:
        raise PackError(pack_dir, problems.items)
    return RegionPack(
        path=pack_dir,
        name=manifest.name,
        prefecture_code=manifest.prefecture_code,
        prefecture_name=manifest.prefecture_name,
        municipalities=tuple(municipalities),
        designated_cities=cities,
        stations=stations,
        zones=tuple(zones),
        rules=rules,
        index=index,
        jma_area_rows=tuple(jma["jma_areas"]),
        jma_forecast_area_rows=tuple(jma["jma_forecast_areas"]),
        jma_hierarchy_rows=tuple(row for row in jma[HIERARCHY_KEY] if isinstance(row, HierarchyRow)),
        jma_earthquake_area_rows=tuple(jma["jma_earthquake_areas"]),
        jma_tsunami_area_rows=tuple(jma["jma_tsunami_areas"]),
        relay_settings=manifest.official,
    )


def _jma_tables(
    pack_dir: Path, manifest: Manifest, municipalities: list[Municipality], problems: Problems
) -> dict[str, list[Any]]:
    """The optional JMA area tables named in region.yaml (files.jma_areas, files.jma_forecast_hierarchy, …):
    AreaRow lists by key, HierarchyRow rows under HIERARCHY_KEY."""
    known = {m.code for m in municipalities} | set(manifest.designated_cities)
    tables: dict[str, list[Any]] = {}
    for key in (*TABLES, HIERARCHY_KEY):
        name = manifest.files.get(key)
        tables[key] = []
        if name is None:
            continue
        if not isinstance(name, str):
            problems.add(
                manifest.path, f"files.{key} is {name!r}", where=f"files.{key}", expected="a CSV inside the pack"
            )
            continue
        path, code = pack_dir / name, manifest.prefecture_code
        if key == HIERARCHY_KEY:
            tables[key] = list(load_hierarchy(path, code, problems))
        else:
            tables[key] = list(load_table(path, TABLES[key][0], code, known, problems))
    _check_hierarchy(pack_dir, manifest, municipalities, tables, problems)
    return tables


def _check_hierarchy(
    pack_dir: Path,
    manifest: Manifest,
    municipalities: list[Municipality],
    tables: dict[str, list[Any]],
    problems: Problems,
) -> None:
    """Every 市町村等 of the hierarchy maps to municipalities of the pack (else its areas would be unknown)."""
    if not tables[HIERARCHY_KEY]:
        return
    areas = JmaAreas.build(
        manifest.prefecture_code, [(m.code, m.city_code) for m in municipalities], tables["jma_areas"]
    )
    path = pack_dir / manifest.files[HIERARCHY_KEY]
    for row in tables[HIERARCHY_KEY]:
        if areas.municipal(row.code).kind != OWN:
            problems.add(
                path,
                f"市町村等 {row.code} {row.name} maps to no municipality of the pack",
                where=f"jma_code={row.code!r}",
                expected=f"a municipality with JIS code {row.code[:5]}, or a row for {row.code} in "
                f"{manifest.files.get('jma_areas', 'jma_areas.csv')} (files.jma_areas)",
            )


def default_pack_dirs() -> list[Path]:
    """Every pack shipped under regions/ (folders starting with '_' are templates)."""
    return pack_dirs_under(project_root() / "regions")


def pack_dirs_under(root: Path) -> list[Path]:
    """Every pack folder (one with a region.yaml) directly under ``root``, by name; '_…' folders are templates."""
    if not root.is_dir():
        raise ConfigError(root, "not a folder", expected="a folder of region packs (e.g. what region init-all wrote)")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_") and (p / MANIFEST).exists())
