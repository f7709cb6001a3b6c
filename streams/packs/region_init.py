"""``bosai region init``: a valid region pack built from MLIT N03 boundaries and a station list.

Stations outside the prefecture are left out (and listed), so one AMeDAS file covering several
prefectures serves each of them; the designated cities are found from the wards (a ward's city code is
its lowest ward code with the last digit 0: 14101 → 14100).
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml
from shapely.geometry.base import BaseGeometry

from streams.kernel.errors import ConfigError
from streams.kernel.geo import CONTAINS, RegionIndex
from streams.kernel.model import DEFAULT_STATION_SHARING
from streams.kernel.region import RegionPack
from streams.packs.geojson import Feature, features, number_or_none
from streams.packs.jma_pack_tables import PackUnits, Reference, prefecture_outlines, write_jma_tables
from streams.packs.prefectures import outline_owners
from streams.packs.region_pack import _NAME, DEFAULT_NEAREST_M, MANIFEST, PackError, _load_municipalities, load_pack
from streams.packs.station_file import STATION_COLUMNS
from streams.platform.checks import Problems
from streams.platform.settings import project_root


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


# A column only AMeDAS observation CSVs have: their stations are JMA's, whose observations are public.
AMEDAS_VALUE_COLUMN = "precip_1h_mm"


def read_station_list(path: Path, *, sharing: str | None = None) -> list[dict[str, str]]:
    """Stations from a station CSV or an AMeDAS-format observation CSV (repeated rows per station).

    ``sharing`` is taken from the file's column when it has one; otherwise from ``sharing`` when given (JMA's
    national AMeDAS station table: ``public``), else AMeDAS observations are public (JMA publishes them) and
    any other sensor is internal until someone decides otherwise.
    """
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            default_sharing = sharing or ("public" if AMEDAS_VALUE_COLUMN in columns else DEFAULT_STATION_SHARING)
            missing = {"station_id", "lat", "lon", "name_ja"} - columns
            if missing:
                raise ConfigError(
                    path,
                    f"missing columns {sorted(missing)}",
                    where="header",
                    expected="station_id, name_ja, name_en, lat, lon (AMeDAS format is fine)",
                )
            stations: dict[str, dict[str, str]] = {}
            for row_number, row in enumerate(reader, start=2):
                station_id = (row.get("station_id") or "").strip()
                if not station_id:
                    raise ConfigError(path, "empty station_id", where=f"row {row_number}", expected="a station id")
                entry = {
                    "station_id": station_id,
                    "kind": (row.get("kind") or "rain_gauge").strip(),
                    "name_ja": row.get("name_ja", "").strip(),
                    "name_en": row.get("name_en", "").strip(),
                    "lat": row["lat"].strip(),
                    "lon": row["lon"].strip(),
                    "alt_m": (row.get("alt_m") or "").strip(),
                    "sharing": (row.get("sharing") or "").strip() or default_sharing,
                    "jma_station_code": (row.get("jma_station_code") or "").strip(),
                }
                known = stations.setdefault(station_id, entry)
                if (known["lat"], known["lon"]) != (entry["lat"], entry["lon"]):
                    raise ConfigError(
                        path,
                        f"station {station_id} has two positions ({known['lat']}, {known['lon']}) "
                        f"and ({entry['lat']}, {entry['lon']})",
                        where=f"row {row_number}",
                        expected="one position per station",
                    )
    except OSError as exc:
        raise ConfigError(path, f"cannot read the station list: {exc.strerror}") from exc
    return [stations[k] for k in sorted(stations)]


def _designated_cities_from_n03(features: Iterable[Feature]) -> dict[str, str]:
    """City code per designated city: its lowest ward code with the last digit 0 (14101 → 14100)."""
    wards: dict[str, list[str]] = {}
    for feature in features:
        props = feature.get("properties") or {}
        city, name, code = props.get("N03_003"), props.get("N03_004"), props.get("N03_007")
        if isinstance(city, str) and city.endswith("市") and isinstance(name, str) and name.endswith("区") and code:
            wards.setdefault(city, []).append(code)
    return {min(codes)[:4] + "0": city for city, codes in sorted(wards.items())}


def _prefecture_of(n03: Path, kept: list[Feature]) -> tuple[str, str]:
    """The one prefecture (code, name) the N03 features belong to."""
    prefectures: list[str] = sorted({f["properties"]["N03_007"][:2] for f in kept})
    if len(prefectures) != 1:
        raise ConfigError(
            n03,
            f"codes of {len(prefectures)} prefectures {prefectures}",
            expected="the N03 features of exactly one prefecture",
        )
    names = sorted({name for f in kept if isinstance(name := (f.get("properties") or {}).get("N03_001"), str)})
    return prefectures[0], names[0] if names else ""


@dataclass(frozen=True)
class StationChoice:
    """Which rows of a station list a pack keeps, and why the others were left out."""

    kept: list[dict[str, str]]
    by_fallback: list[str]  # kept: outside every polygon, nearest municipality within reach, own prefecture
    other_prefecture: list[str]  # within reach by the fallback, but the outline of another prefecture holds it
    outside: list[str]  # beyond reach of every municipality of the pack


def choose_stations(
    index: RegionIndex, prefecture_code: str, rows: list[dict[str, str]], outlines: dict[str, BaseGeometry]
) -> StationChoice:
    """The station rows this pack keeps: inside a municipality, or placed by the nearest-municipality fallback
    when the prefecture outlines say the station is this prefecture's (:func:`streams.packs.prefectures.
    outline_owners`), so a station near a border is kept by one pack only."""
    lats = [number_or_none(r["lat"]) or 0.0 for r in rows]
    lons = [number_or_none(r["lon"]) or 0.0 for r in rows]
    located = index.locate_many(lats, lons, with_zones=False)
    found = located.municipality_index.tolist()
    contained = (located.method == CONTAINS).tolist()
    fallback = [i for i, (at, inside) in enumerate(zip(found, contained, strict=True)) if at >= 0 and not inside]
    owners = outline_owners([lats[i] for i in fallback], [lons[i] for i in fallback], outlines)
    foreign = {i for i, owner in zip(fallback, owners, strict=True) if owner not in (None, prefecture_code)}
    kept = [row for i, row in enumerate(rows) if found[i] >= 0 and i not in foreign]
    return StationChoice(
        kept=kept,
        by_fallback=[rows[i]["station_id"] for i in fallback if i not in foreign],
        other_prefecture=[rows[i]["station_id"] for i in sorted(foreign)],
        outside=[row["station_id"] for row, at in zip(rows, found, strict=True) if at < 0],
    )


def _copy_zones(out: Path, zones: Iterable[tuple[Path, str, str]]) -> list[dict[str, str]]:
    entries = []
    for zone_file, kind, id_template in zones:
        (out / "zones").mkdir(exist_ok=True)
        shutil.copyfile(zone_file, out / "zones" / zone_file.name)
        entries.append({"file": f"zones/{zone_file.name}", "kind": kind, "id": id_template})
    return entries


def _empty_folder(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(out, "the output folder exists and is not empty", expected="a new folder, or --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _write_stations(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(STATION_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


PACK_FILES = {"municipalities": "municipalities.geojson", "stations": "stations.csv", "rules": "rules.yaml"}


def _n03_features(n03: Path, problems: Problems) -> tuple[list[Feature], int]:
    """The N03 features with a code, and how many had none (N03 has some for disputed areas, 所属未定地)."""
    n03_features = features(n03, problems)
    if problems.items:
        raise PackError(n03, problems.items)
    kept = [f for f in n03_features if (f.get("properties") or {}).get("N03_007")]
    return kept, len(n03_features) - len(kept)


def _write_manifest(out: Path, manifest: dict[str, object], title: str, notes: list[str]) -> None:
    header = "".join(f"# {line}\n" for line in (title, *notes))
    (out / MANIFEST).write_text(
        header + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


@dataclass(frozen=True)
class Built:
    """A pack written by :func:`build_pack`, and what its station list gave."""

    pack: RegionPack
    stations: StationChoice
    skipped_features: int  # N03 features without a code


# The manifest lists the stations left out by id up to this many (a national station table leaves out
# over a thousand: the count is enough there).
LISTED_LEFT_OUT = 40


def _left_out_note(what: str, ids: list[str]) -> str:
    if not ids:
        return f"0 {what}"
    if len(ids) <= LISTED_LEFT_OUT:
        return f"{len(ids)} {what}: {', '.join(ids)}"
    return f"{len(ids)} {what} (not listed: more than {LISTED_LEFT_OUT})"


def init_pack(
    name: str,
    n03: Path,
    stations_csv: Path | None,
    out: Path,
    *,
    zones: Iterable[tuple[Path, str, str]] = (),
    nearest_max_distance_m: float = DEFAULT_NEAREST_M,
    force: bool = False,
    sharing: str | None = None,
) -> RegionPack:
    """Build a valid pack from an N03 GeoJSON and a station list, with the default JMA rule set (see
    :func:`build_pack`)."""
    return build_pack(
        name,
        n03,
        stations_csv,
        out,
        zones=zones,
        nearest_max_distance_m=nearest_max_distance_m,
        force=force,
        station_rows=read_station_list(stations_csv, sharing=sharing) if stations_csv is not None else None,
    ).pack


def build_pack(
    name: str,
    n03: Path,
    stations_csv: Path | None,
    out: Path,
    *,
    zones: Iterable[tuple[Path, str, str]] = (),
    nearest_max_distance_m: float = DEFAULT_NEAREST_M,
    force: bool = False,
    station_rows: list[dict[str, str]] | None = None,
) -> Built:
    """Build a valid pack from an N03 GeoJSON (``.geojson`` or ``.geojson.gz``) and a station list, with the
    default JMA rule set.

    Without a station list the pack has no stations: it serves official information (JMA's reports)
    only. The JMA tables (forecast-area hierarchy, 市町村等 codes that are not "JIS code + 00", 地震情報／細分区域,
    津波予報区 of the coastal municipalities) are derived from the repo's reference data and the N03
    (:mod:`streams.packs.jma_pack_tables`). Stations outside the prefecture are left out and counted in the
    manifest's header (:func:`choose_stations`), so one station table of the whole country serves each
    prefecture. ``station_rows`` (already read with :func:`read_station_list`) stands for ``stations_csv``
    when many packs are built from one table.
    """
    if not _NAME.match(name):
        raise ConfigError("--name", f"{name!r} is not a pack name", expected="lower-case letters, digits and '-'")
    problems = Problems()
    kept, skipped = _n03_features(n03, problems)
    prefecture_code, prefecture_name = _prefecture_of(n03, kept)
    if station_rows is None:
        station_rows = read_station_list(stations_csv) if stations_csv is not None else []
    _empty_folder(out, force)
    (out / "municipalities.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": kept}, ensure_ascii=False), encoding="utf-8"
    )
    cities = _designated_cities_from_n03(kept)
    municipalities, boundaries = _load_municipalities(
        out / "municipalities.geojson", prefecture_code, {}, cities, problems
    )
    if problems.items:
        raise PackError(n03, problems.items)
    index = RegionIndex(municipalities, boundaries, nearest_max_distance_m=nearest_max_distance_m)
    reference = Reference(project_root())
    choice = choose_stations(index, prefecture_code, station_rows, prefecture_outlines(reference))
    _write_stations(out / "stations.csv", choice.kept)
    shutil.copyfile(project_root() / "regions" / "_template" / "rules.yaml", out / "rules.yaml")
    units = PackUnits.of(prefecture_code, prefecture_name, municipalities, boundaries, cities)
    jma_files, jma_notes = write_jma_tables(out, units, reference)
    manifest = {
        "format": 1,
        "name": name,
        "prefecture_code": prefecture_code,
        "prefecture_name": prefecture_name,
        "designated_cities": cities,
        "files": {**PACK_FILES, **jma_files},
        "hazard_zones": _copy_zones(out, zones),
        "geofence": {"nearest_max_distance_m": nearest_max_distance_m},
    }
    source = f"{n03.name} and {stations_csv.name}" if stations_csv is not None else f"{n03.name} (no stations)"
    other = _left_out_note("station(s) within reach but of another prefecture were left out", choice.other_prefecture)
    nearest = _left_out_note("station(s) outside every municipality were placed on the nearest", choice.by_fallback)
    notes = [
        f"{skipped} N03 feature(s) without a code were left out; "
        f"{_left_out_note('station(s) outside this prefecture were left out', choice.outside)}.",
        *([f"{other}; {nearest}."] if choice.other_prefecture or choice.by_fallback else []),
        *jma_notes,
    ]
    _write_manifest(out, manifest, f"Region pack built by `bosai region init` from {source}.", notes)
    return Built(load_pack(out), choice, skipped)
