"""`bosai region` (build and check region packs) and `bosai locate` (where a point is)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click


@click.group()
def region() -> None:
    """Region packs: build one from MLIT N03 data, or check one."""


@region.command("init")
@click.option("--name", required=True, help="Pack name (lower case; it goes into topic names).")
@click.option(
    "--n03",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="MLIT N03 boundaries of one prefecture, GeoJSON.",
)
@click.option(
    "--stations",
    "stations_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Station list CSV (station_id, name_ja, name_en, lat, lon[, kind, alt_m]); AMeDAS format is "
    "fine. Without it the pack serves official (JMA) information only.",
)
@click.option(
    "--zones",
    "zone_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Hazard-zone GeoJSON (repeatable); give --zone-kind and --zone-id for each.",
)
@click.option("--zone-kind", "zone_kinds", multiple=True, help="Kind of each --zones file, e.g. flood_inundation.")
@click.option("--zone-id", "zone_ids", multiple=True, help="Id template of each --zones file, e.g. 'lsld-{A33_004}'.")
@click.option(
    "--nearest-max-distance-m", default=5000.0, show_default=True, help="Reach of the nearest-municipality fallback."
)
@click.option(
    "--station-sharing",
    type=click.Choice(["public", "municipal", "internal"]),
    default=None,
    help="Sharing level of stations the list gives none (default: public for an AMeDAS observation CSV, else "
    "internal); JMA's national AMeDAS table: public.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Pack folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def region_init(
    name: str,
    n03: Path,
    stations_csv: Path | None,
    zone_files: tuple[Path, ...],
    zone_kinds: tuple[str, ...],
    zone_ids: tuple[str, ...],
    nearest_max_distance_m: float,
    station_sharing: str | None,
    out: Path,
    force: bool,
) -> None:
    """Build a valid region pack from an N03 GeoJSON and a station list (default JMA rules)."""
    from streams.packs.region_init import build_pack, read_station_list

    if not (len(zone_files) == len(zone_kinds) == len(zone_ids)):
        raise click.UsageError("give one --zone-kind and one --zone-id per --zones file")
    built = build_pack(
        name,
        n03,
        stations_csv,
        out,
        zones=list(zip(zone_files, zone_kinds, zone_ids, strict=True)),
        nearest_max_distance_m=nearest_max_distance_m,
        force=force,
        station_rows=read_station_list(stations_csv, sharing=station_sharing) if stations_csv is not None else None,
    )
    pack, chosen = built.pack, built.stations
    click.echo(
        f"wrote {out}: {len(pack.municipalities)} municipalities, {len(pack.stations)} stations "
        f"({len(chosen.by_fallback)} by nearest fallback; left out: {len(chosen.outside)} outside the prefecture, "
        f"{len(chosen.other_prefecture)} within reach but of another prefecture), "
        f"{len(pack.zones)} hazard zones, {len(pack.rules.rules)} rules (prefecture {pack.prefecture_code}); "
        f"JMA tables: {len(pack.jma_hierarchy_rows)} 市町村等 in the forecast-area hierarchy, "
        f"{len(pack.jma_area_rows)} 7-digit codes, {len(pack.jma_earthquake_area_rows)} 地震情報／細分区域, "
        f"{len(pack.jma_tsunami_area_rows)} 津波予報区 (what could not be derived: region.yaml's header)"
    )


@region.command("init-all")
@click.option(
    "--n03-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of MLIT N03 files, one prefecture each (*.geojson or *.geojson.gz), e.g. data/n03/japan.",
)
@click.option(
    "--stations",
    "stations_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The national station table (station_id, name_ja, name_en, lat, lon[, alt_m]); each pack keeps its own.",
)
@click.option(
    "--nearest-max-distance-m", default=5000.0, show_default=True, help="Reach of the nearest-municipality fallback."
)
@click.option(
    "--station-sharing",
    type=click.Choice(["public", "municipal", "internal"]),
    default=None,
    help="Sharing level of stations the list gives none (default: public for an AMeDAS observation CSV, else "
    "internal); JMA's national AMeDAS table: public.",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of the packs to write."
)
@click.option("--force", is_flag=True, help="Replace existing pack folders.")
def region_init_all(
    n03_dir: Path,
    stations_csv: Path | None,
    nearest_max_distance_m: float,
    station_sharing: str | None,
    out: Path,
    force: bool,
) -> None:
    """Build and check a pack per prefecture (OUT/<romaji>, e.g. OUT/tochigi) from a folder of N03 files and
    one national station table; report the stations no pack kept."""
    from streams.cli.common import say
    from streams.packs.national import init_all

    result = init_all(
        n03_dir,
        stations_csv,
        out,
        nearest_max_distance_m=nearest_max_distance_m,
        force=force,
        sharing=station_sharing,
        progress=say,
    )
    municipalities = sum(p.municipalities for p in result.packs)
    fallback = sum(p.by_fallback for p in result.packs)
    click.echo(
        f"wrote {len(result.packs)} packs under {out} in {result.seconds:.1f}s: {municipalities} municipalities, "
        f"{result.kept} of the table's {result.stations_in_table} stations kept ({fallback} by nearest fallback), "
        f"{len(result.nowhere)} in no pack{': ' + ', '.join(result.nowhere) if result.nowhere else ''}"
    )
    if result.twice:
        raise click.ClickException(f"stations kept by more than one pack: {', '.join(result.twice)}")


@region.command("jma-tables")
@click.argument("pack_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def region_jma_tables(pack_dir: Path) -> None:
    """(Re)write a pack's JMA tables from its boundaries and the repo's reference data, in place.

    jma_areas.csv, jma_forecast_hierarchy.csv, jma_earthquake_areas.csv and jma_tsunami_areas.csv are derived
    again; a row whose source starts with 'operator:' is kept as it is. Nothing else of the pack changes.
    """
    from streams.packs.jma_pack_tables import Reference, refresh_jma_tables
    from streams.packs.region_pack import load_pack
    from streams.platform.settings import project_root

    files, notes = refresh_jma_tables(pack_dir, Reference(project_root()))
    pack = load_pack(pack_dir)
    coastal = {c for row in pack.jma_tsunami_area_rows for c in row.municipality_codes}
    for note in notes:
        click.echo(f"  {note}")
    click.echo(
        f"wrote {', '.join(files.values())} in {pack_dir}: {len(pack.jma_hierarchy_rows)} 市町村等 in the hierarchy, "
        f"{len(pack.jma_area_rows)} 7-digit codes, {len(pack.jma_earthquake_area_rows)} 地震情報／細分区域, "
        f"{len(pack.jma_tsunami_area_rows)} 津波予報区 ({len(coastal)} coastal municipalities)"
    )


@region.command("check")
@click.argument("pack_dir", type=click.Path(file_okay=False, path_type=Path))
def region_check(pack_dir: Path) -> None:
    """Validate a pack and summarise it."""
    from streams.packs.region_pack import load_pack

    started = time.perf_counter()
    pack = load_pack(pack_dir)
    nearest = sum(1 for s in pack.stations.values() if pack.locate(s.lat, s.lon).method == "nearest")
    click.echo(
        f"{pack_dir}: valid — {pack.name} ({pack.prefecture_name}, {pack.prefecture_code}): "
        f"{len(pack.municipalities)} municipalities, {len(pack.designated_cities)} designated cities, "
        f"{len(pack.stations)} stations ({nearest} by nearest fallback), {len(pack.zones)} hazard zones, "
        f"rules {', '.join(pack.rules.ids)}; JMA area table rows {len(pack.jma_area_rows)} "
        f"(+{len(pack.jma_forecast_area_rows)} forecast areas), forecast hierarchy "
        f"{len(pack.jma_hierarchy_rows)} 市町村等, 地震情報／細分区域 {len(pack.jma_earthquake_area_rows)}, "
        f"津波予報区 {len(pack.jma_tsunami_area_rows)}, gauges with a JMA code {len(pack.stations_by_jma_code)}; "
        f"loaded in {time.perf_counter() - started:.2f}s"
    )


@click.command()
@click.option(
    "--region", "pack_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Region pack folder."
)
@click.option("--lat", required=True, type=float, help="Latitude, WGS84 degrees.")
@click.option("--lon", required=True, type=float, help="Longitude, WGS84 degrees.")
@click.option(
    "--max-distance-m",
    type=float,
    default=None,
    help="Reach of the nearest fallback (default: the pack's geofence setting; 0 = off).",
)
def locate(pack_dir: Path, lat: float, lon: float, max_distance_m: float | None) -> None:
    """Which municipality and hazard zones a point is in; one JSON object."""
    from streams.packs.region_pack import load_pack

    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise click.BadParameter(f"({lat}, {lon}) is not a WGS84 position", param_hint="--lat/--lon")
    if max_distance_m is not None and max_distance_m < 0:
        raise click.BadParameter("must be >= 0", param_hint="--max-distance-m")
    answer = load_pack(pack_dir).locate(lat, lon, nearest_max_distance_m=max_distance_m).as_dict()
    if answer["distance_m"] != answer["distance_m"]:  # NaN: nothing within reach
        answer["distance_m"] = None
    click.echo(json.dumps(answer, ensure_ascii=False))
