"""``region init``'s JMA tables: the reference data in the repo, through the pure derivations, into the pack.

Reads only files of the repo (each with its provenance beside it):

* ``jma/areas.csv`` — hand-sourced 7-digit codes (横浜市北部/南部, 相模原市西部/東部, 那珂川町);
* ``jma/forecast_area_hierarchy.csv`` — JMA's forecast-area hierarchy (jma/PROVENANCE.md);
* ``jma/earthquake_city_centroids.csv`` — JMA's earthquake 市町村等 codes with a centroid;
* ``jma/gis/earthquake_areas.geojson.gz``, ``tsunami_areas.geojson.gz``, ``city_parts.geojson.gz`` — JMA's GIS
  polygons of the 地震情報／細分区域, its 津波予報区 lines, and its polygons of the parts of designated cities
  (jma/gis/PROVENANCE.md);
* ``data/boundaries/prefectures.geojson.gz`` — every prefecture's outline, to tell the coast from land borders.

and writes ``jma_areas.csv``, ``jma_forecast_hierarchy.csv``, ``jma_earthquake_areas.csv`` and
``jma_tsunami_areas.csv`` (and ``jma_forecast_areas.csv`` when the reference has rows for the prefecture), each
row with its source; what could not be derived goes into the notes of region.yaml's header.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from streams.kernel.errors import ConfigError
from streams.kernel.model import Municipality
from streams.kernel.region import AreaRow, HierarchyRow
from streams.packs.coast import CoastParameters, TsunamiLine, coastal_municipalities
from streams.packs.jma_area_files import (
    AREA_COLUMNS,
    HIERARCHY_COLUMNS,
    HIERARCHY_FILE,
    HIERARCHY_KEY,
    MUNICIPAL_COLUMNS,
    TABLES,
    reference_table_path,
    rows_for_prefecture,
    write_area_table,
    write_table,
)
from streams.packs.jma_area_tables import Derived, earthquake_area_rows, hierarchy_rows, municipal_exceptions
from streams.packs.jma_areas import OWN, JmaAreas
from streams.packs.prefectures import CODE_BY_NAME
from streams.packs.region_pack import MANIFEST, PackError, _load_municipalities, _read_manifest
from streams.platform.checks import Problems

HIERARCHY_SOURCE = "JMA forecast-area hierarchy (jma/forecast_area_hierarchy.csv, tmiyachi/jma-gis 9c8bf48, 2024-10-25)"
CENTROID_SOURCE = "JMA earthquake 市町村等 centroid (jma/earthquake_city_centroids.csv, 9SQ/jma-eqarea-centroid)"
EARTHQUAKE_SOURCE = "JMA GIS 地震情報／細分区域 2024-05-20 (jma/gis/earthquake_areas.geojson.gz) ∩ N03: largest overlap"
TSUNAMI_SOURCE = (
    "derived: the coast of data/boundaries/prefectures.geojson.gz by N03 municipality, on the nearest "
    "JMA GIS 津波予報区 2024-05-20 line (jma/gis/tsunami_areas.geojson.gz) within {reach:.0f} m"
)


@dataclass(frozen=True)
class Reference:
    """Where the reference data lives (the repo's root)."""

    root: Path

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)


def _csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise ConfigError(
            path, f"cannot read reference data: {exc.strerror}", expected="the repo's jma/ folder"
        ) from exc


@functools.lru_cache(maxsize=8)
def _features(path: Path) -> tuple[dict[str, Any], ...]:
    """The features of a gzip'd GeoJSON of the repo (read once per process: region init may build many packs)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return tuple(json.load(handle)["features"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(path, f"cannot read reference GeoJSON: {exc}", expected="a gzip'd FeatureCollection") from exc


def _shape(feature: dict[str, Any]) -> BaseGeometry:
    return shapely.make_valid(shape(feature["geometry"]))


@functools.lru_cache(maxsize=1)
def _outlines(path: Path) -> dict[str, BaseGeometry]:
    """Prefecture name (N03_001) -> outline."""
    return {f["properties"]["N03_001"]: _shape(f) for f in _features(path)}


def prefecture_outlines(reference: Reference) -> dict[str, BaseGeometry]:
    """Prefecture code (JIS X 0401) -> outline, from ``data/boundaries/prefectures.geojson.gz``."""
    outlines = _outlines(reference.path("data", "boundaries", "prefectures.geojson.gz"))
    return {CODE_BY_NAME[name]: outline for name, outline in outlines.items() if name in CODE_BY_NAME}


@functools.lru_cache(maxsize=8)
def _by_code(path: Path, key: str) -> dict[str, tuple[str, BaseGeometry]]:
    """code -> (name, union of the geometries of its features) of a reference GeoJSON."""
    parts: dict[str, list[BaseGeometry]] = {}
    names: dict[str, str] = {}
    for feature in _features(path):
        code = feature["properties"][key]
        names[code] = feature["properties"].get("name", "")
        parts.setdefault(code, []).append(_shape(feature))
    return {code: (names[code], shapely.union_all(geoms)) for code, geoms in parts.items()}


def _earthquake_codes(reference: Reference, prefecture_code: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The earthquake 市町村等 (code, name) of the prefecture and their centroids (lat, lon)."""
    codes, centroids = [], {}
    path = reference.path("jma", "earthquake_city_centroids.csv")
    for number, row in enumerate(_csv_rows(path, ("code", "name", "lat", "lon")), start=1):
        code = row["code"].zfill(7)
        if not code.startswith(prefecture_code):
            continue
        try:
            centroids[code] = (float(row["lat"]), float(row["lon"]))
        except (TypeError, ValueError):
            raise ConfigError(
                path,
                f"lat/lon {row.get('lat')!r}, {row.get('lon')!r}",
                where=f"row {number}",
                expected="decimal degrees",
            ) from None
        codes.append((code, row["name"]))
    return codes, centroids


def _csv_rows(path: Path, names: tuple[str, ...]) -> list[dict[str, str]]:
    """A header-less CSV as dicts."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [dict(zip(names, row, strict=False)) for row in csv.reader(handle) if row]
    except OSError as exc:
        raise ConfigError(
            path, f"cannot read reference data: {exc.strerror}", expected="the repo's jma/ folder"
        ) from exc


def _row_dict(row: AreaRow, columns: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(columns, (row.code, row.name, " ".join(row.municipality_codes), row.source), strict=True))


@dataclass(frozen=True)
class PackUnits:
    """The pack's municipalities and wards with their polygons, and its designated cities."""

    prefecture_code: str
    prefecture_name: str
    units: Sequence[tuple[str, BaseGeometry]]  # (code, polygon) of each municipality or ward
    city_of: dict[str, str | None]  # unit code -> its designated city code
    cities: dict[str, str]  # designated city code -> name

    @property
    def known(self) -> set[str]:
        return {code for code, _ in self.units} | set(self.cities)

    @classmethod
    def of(
        cls,
        code: str,
        name: str,
        municipalities: Sequence[Municipality],
        boundaries: Sequence[Any],
        cities: dict[str, str],
    ) -> PackUnits:
        """From the pack's municipalities and their polygons (as region_pack loads them)."""
        return cls(
            code,
            name,
            [(m.code, geometry) for m, geometry in zip(municipalities, boundaries, strict=True)],
            {m.code: m.city_code for m in municipalities},
            cities,
        )


OPERATOR = "operator:"  # a row whose source starts so is the operator's: regenerating the tables keeps it


def operator_rows(path: Path, code_key: str) -> dict[str, dict[str, str]]:
    """The rows of an existing table whose source starts with ``operator:`` (by code)."""
    if not path.exists():
        return {}
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return {
            row[code_key]: row
            for row in csv.DictReader(handle)
            if (row.get("source") or "").strip().startswith(OPERATOR) and row.get(code_key)
        }


class _Writer:
    """Collects the files and notes of the JMA tables of one pack; an operator's rows already there are kept."""

    def __init__(self, out: Path):
        self.out = out
        self.files: dict[str, str] = {}
        self.notes: list[str] = []

    def table(self, key: str, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
        name = HIERARCHY_FILE if key == HIERARCHY_KEY else TABLES[key][1]
        kept = operator_rows(self.out / name, columns[0])
        if kept:
            rows = [kept.pop(row[columns[0]], row) for row in rows] + list(kept.values())
            mine = sorted(r[columns[0]] for r in rows if r["source"].strip().startswith(OPERATOR))
            self.notes.append(f"{name}: kept the operator's rows {', '.join(mine)}.")
        if rows:
            write_table(self.out / name, columns, rows)
            self.files[key] = name


def write_jma_tables(out: Path, pack: PackUnits, reference: Reference) -> tuple[dict[str, str], list[str]]:
    """Write the pack's JMA tables; (region.yaml files entries, notes for its header)."""
    writer = _Writer(out)
    _municipal_tables(writer, pack, reference)
    forecast = rows_for_prefecture(
        reference_table_path(reference.root, forecast=True), pack.prefecture_code, forecast=True
    )
    if forecast:
        write_area_table(out / TABLES["jma_forecast_areas"][1], forecast, forecast=True)
        writer.files["jma_forecast_areas"] = TABLES["jma_forecast_areas"][1]
    quake = _earthquake_table(pack, reference)
    writer.table("jma_earthquake_areas", AREA_COLUMNS, [_row_dict(r, AREA_COLUMNS) for r in quake.rows])
    writer.notes.append(f"地震情報／細分区域: {len(quake.rows)}.")
    if quake.unresolved:
        writer.notes.append(f"municipalities in no 地震情報／細分区域: {'; '.join(quake.unresolved)}.")
    writer.notes += _tsunami(writer, pack, reference)
    return writer.files, writer.notes


def _municipal_tables(writer: _Writer, pack: PackUnits, reference: Reference) -> None:
    """jma_areas.csv (hand-sourced rows of jma/areas.csv, then derived ones) and jma_forecast_hierarchy.csv."""
    code = pack.prefecture_code
    sourced = rows_for_prefecture(reference_table_path(reference.root), code)
    hand = [
        AreaRow(r["jma_code"], r["jma_name"], tuple(r["municipality_codes"].split()), r["source"])
        for r in sourced
        if set(r["municipality_codes"].split()) <= pack.known
    ]
    left_out = sorted({r["jma_code"] for r in sourced} - {r.code for r in hand})
    hierarchy = hierarchy_rows(_csv(reference.path("jma", "forecast_area_hierarchy.csv")), code, HIERARCHY_SOURCE)
    quake_codes, centroids = _earthquake_codes(reference, code)
    general = JmaAreas.build(code, [(c, pack.city_of.get(c)) for c, _ in pack.units], hand)
    parts = {
        c: (geometry, f"JMA GIS polygon of {c} {name} (jma/gis/city_parts.geojson.gz)")
        for c, (name, geometry) in _by_code(reference.path("jma", "gis", "city_parts.geojson.gz"), "code").items()
        if c.startswith(code)
    }
    derived = municipal_exceptions(
        [(r.code, r.name) for r in hierarchy] + quake_codes, general, pack.units, parts, centroids, CENTROID_SOURCE
    )
    writer.table("jma_areas", MUNICIPAL_COLUMNS, [_row_dict(r, MUNICIPAL_COLUMNS) for r in (*hand, *derived.rows)])
    resolved = {r.code for r in (*hand, *derived.rows)}
    kept = [r for r in hierarchy if general.municipal(r.code).kind == OWN or r.code in resolved]
    writer.table(HIERARCHY_KEY, HIERARCHY_COLUMNS, [_hierarchy_dict(r) for r in kept])
    writer.notes.append(
        f"JMA tables (each row names its source): {len(kept)} of {len(hierarchy)} 市町村等 of the forecast-area "
        f"hierarchy, {len(hand)} sourced and {len(derived.rows)} derived 7-digit codes."
    )
    if left_out:
        writer.notes.append(f"jma/areas.csv rows left out (municipalities not in this N03): {', '.join(left_out)}.")
    if derived.unresolved:
        writer.notes.append(f"JMA codes mapping to no municipality of this N03: {'; '.join(derived.unresolved)}.")


def _hierarchy_dict(row: HierarchyRow) -> dict[str, str]:
    values = (row.code, row.name, row.group_code, row.group_name, row.first_code, row.first_name, row.pref_code)
    return dict(zip(HIERARCHY_COLUMNS, (*values, row.pref_name, row.source), strict=True))


def _earthquake_table(pack: PackUnits, reference: Reference) -> Derived:
    areas = _by_code(reference.path("jma", "gis", "earthquake_areas.geojson.gz"), "code")
    outline = shapely.union_all([g for _, g in pack.units]).envelope.buffer(0.1)
    near = [
        (c, name, g) for c, (name, g) in sorted(areas.items()) if len(c) == 3 and c.isdigit() and g.intersects(outline)
    ]
    return earthquake_area_rows(pack.units, near, EARTHQUAKE_SOURCE)


def _tsunami(writer: _Writer, pack: PackUnits, reference: Reference) -> list[str]:
    """jma_tsunami_areas.csv: the pack's coastal municipalities on JMA's 津波予報区 (notes: what is left)."""
    outlines = _outlines(reference.path("data", "boundaries", "prefectures.geojson.gz"))
    outline = outlines.get(pack.prefecture_name)
    if outline is None:
        return [
            f"no tsunami table: no outline named {pack.prefecture_name!r} in data/boundaries/prefectures.geojson.gz."
        ]
    window = outline.envelope.buffer(0.05)
    neighbours = [
        g.intersection(window) for n, g in outlines.items() if n != pack.prefecture_name and g.intersects(window)
    ]
    lines = [
        TsunamiLine(c, name, g)
        for c, (name, g) in _by_code(reference.path("jma", "gis", "tsunami_areas.geojson.gz"), "code").items()
    ]
    parameters = CoastParameters()
    coast = coastal_municipalities(
        pack.units, outline, neighbours, lines, parameters, TSUNAMI_SOURCE.format(reach=parameters.reach_m)
    )
    rows = []
    for row in coast.rows:
        fallback = [c for c in row.municipality_codes if c in coast.fallback]
        source = row.source + (
            f"; nearest within {parameters.fallback_m:.0f} m: {' '.join(fallback)}" if fallback else ""
        )
        rows.append(_row_dict(AreaRow(row.code, row.name, row.municipality_codes, source), AREA_COLUMNS))
    writer.table("jma_tsunami_areas", AREA_COLUMNS, rows)
    notes = [f"coast: {len(coast.coast_m)} coastal municipalities on {len(coast.rows)} 津波予報区."]
    if coast.unassigned:
        notes.append(f"coastal municipalities on no 津波予報区 (add them by hand): {', '.join(coast.unassigned)}.")
    return notes


def pack_units(pack_dir: Path) -> PackUnits:
    """The municipalities of an existing pack (its manifest and boundaries, checked)."""
    problems = Problems()
    manifest = _read_manifest(pack_dir, problems)
    if problems:
        raise PackError(pack_dir, problems.items)
    municipalities, boundaries = _load_municipalities(
        pack_dir / manifest.files["municipalities"],
        manifest.prefecture_code,
        manifest.municipality_properties,
        manifest.designated_cities,
        problems,
    )
    if problems:
        raise PackError(pack_dir, problems.items)
    return PackUnits.of(
        manifest.prefecture_code, manifest.prefecture_name, municipalities, boundaries, manifest.designated_cities
    )


def refresh_jma_tables(pack_dir: Path, reference: Reference) -> tuple[dict[str, str], list[str]]:
    """(Re)write an existing pack's JMA tables in place, keeping the operator's rows; name them in region.yaml.

    Nothing else of the pack changes (stations, zones, rules, the manifest's comments).
    """
    files, notes = write_jma_tables(pack_dir, pack_units(pack_dir), reference)
    add_files_entries(pack_dir / MANIFEST, files)
    return files, notes


def add_files_entries(manifest: Path, files: dict[str, str]) -> None:
    """Add ``files:`` entries region.yaml lacks, as lines under ``files:`` (its comments stay as they are)."""
    text = manifest.read_text(encoding="utf-8")
    present = (yaml.safe_load(text) or {}).get("files") or {}
    missing = {k: v for k, v in files.items() if k not in present}
    if not missing:
        return
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^files:\s*(#.*)?$", line)), None)
    if start is None:
        raise ConfigError(manifest, "no 'files:' block", where="files", expected="files: on a line of its own")
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    added = [
        f"  {key}: {name}{' ' * max(1, 41 - len(key) - len(name))}# written by `bosai region jma-tables`\n"
        for key, name in missing.items()
    ]
    manifest.write_text("".join(lines[:end] + added + lines[end:]), encoding="utf-8")
