"""Packs for every prefecture from data: which stations a pack keeps from a national table, and `region init-all`
over a few prefectures' N03 files (the whole country is the same command over data/n03/japan)."""

from __future__ import annotations

import csv
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shapely.geometry import box

from streams.kernel.errors import ConfigError
from streams.packs.geojson import features
from streams.packs.national import init_all, n03_files
from streams.packs.prefectures import PREFECTURES, outline_owners, pack_name
from streams.packs.region_init import build_pack, read_station_list
from streams.packs.region_pack import load_pack
from streams.platform.checks import Problems


def test_every_prefecture_has_a_pack_name_in_romaji():
    assert len(PREFECTURES) == 47
    assert pack_name("09") == "tochigi" and pack_name("13") == "tokyo" and pack_name("47") == "okinawa"
    names = [romaji for _, romaji in PREFECTURES.values()]
    assert len(set(names)) == 47 and all(n.isascii() and n.islower() for n in names)


def test_a_point_belongs_to_the_outline_holding_it_else_to_the_nearest():
    outlines = {"01": box(139.0, 35.0, 140.0, 36.0), "02": box(140.0, 35.0, 141.0, 36.0)}

    owners = outline_owners([35.5, 35.5, 35.5, 36.2], [139.5, 140.5, 141.2, 139.9], outlines)

    assert owners == ["01", "02", "02", "01"]  # inside, inside, sea east of 02, sea north of 01
    assert outline_owners([35.5], [140.0], outlines) == ["01"]  # on the shared border: the lower code
    assert outline_owners([35.5], [139.5], {}) == [None]


def _rows(project_root: Path, ids: set[str]) -> list[dict[str, str]]:
    rows = read_station_list(project_root / "data/amedas/japan-stations.csv", sharing="public")
    return [r for r in rows if r["station_id"] in ids]


def test_a_pack_keeps_its_stations_and_leaves_a_neighbours_in_reach_to_the_neighbour(project_root, tmp_path):
    rows = _rows(project_root, {"41277", "42266", "11001"})  # 宇都宮; 群馬's 42266 within 5 km of 栃木; 宗谷岬

    built = build_pack("tochigi", project_root / "data/n03/japan/N03-21_09.geojson.gz", None, tmp_path / "t",
                       station_rows=rows)  # fmt: skip

    assert [r["station_id"] for r in built.stations.kept] == ["41277"]
    assert built.stations.other_prefecture == ["42266"]  # the outline of 群馬県 holds it
    assert built.stations.outside == ["11001"]
    assert sorted(built.pack.stations) == ["41277"] and built.pack.stations["41277"].sharing == "public"
    header = (tmp_path / "t/region.yaml").read_text(encoding="utf-8")
    assert "1 station(s) within reach but of another prefecture were left out: 42266" in header


def test_an_island_outside_the_simplified_polygons_is_placed_by_the_nearest_fallback(project_root, tmp_path):
    # 73256 lies outside every simplified polygon of 愛媛県 (a coast/island station): the fallback places it there
    rows = _rows(project_root, {"73256"})

    built = build_pack("ehime", project_root / "data/n03/japan/N03-21_38.geojson.gz", None, tmp_path / "e",
                       station_rows=rows)  # fmt: skip

    assert built.stations.by_fallback == ["73256"]
    assert built.pack.locate(built.pack.stations["73256"].lat, built.pack.stations["73256"].lon).method == "nearest"


def _national_subset(project_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """N03 of 栃木 (09), 福岡 (40) and 佐賀 (41), and the national station table's rows of their JMA offices plus
    two stations of prefectures without a pack here."""
    n03 = tmp_path / "n03"
    n03.mkdir()
    for code in ("09", "40", "41"):
        shutil.copyfile(project_root / f"data/n03/japan/N03-21_{code}.geojson.gz", n03 / f"N03-21_{code}.geojson.gz")
    table = tmp_path / "stations.csv"
    with open(project_root / "data/amedas/japan-stations.csv", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    keep = [r for r in rows[1:] if r[0][:2] in ("41", "82", "85") or r[0] in ("42266", "11001")]
    with open(table, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([rows[0], *keep])
    return n03, table


def test_init_all_builds_a_checked_pack_per_prefecture_and_reports_the_stations_no_pack_kept(project_root, tmp_path):
    n03, table = _national_subset(project_root, tmp_path)
    seen: list[str] = []

    result = init_all(n03, table, tmp_path / "packs", sharing="public", progress=seen.append)

    assert [(p.name, p.prefecture_code, p.stations) for p in result.packs] == [
        ("tochigi", "09", 19),
        ("fukuoka", "40", 20),
        ("saga", "41", 8),
    ]
    assert result.stations_in_table == 49 and result.kept == 47
    assert result.nowhere == ["11001", "42266"] and result.twice == []
    assert len(seen) == 3 and seen[0].startswith("[1/3]")
    for pack in result.packs:
        loaded = load_pack(tmp_path / "packs" / pack.name)
        assert loaded.prefecture_code == pack.prefecture_code
        assert {s.sharing for s in loaded.stations.values()} == {"public"}
        assert loaded.jma_hierarchy_rows  # the JMA tables init writes
        assert "国土数値情報" in (tmp_path / "packs" / pack.name / "PROVENANCE.md").read_text(encoding="utf-8")
    assert len(load_pack(tmp_path / "packs/fukuoka").designated_cities) == 2  # 北九州市, 福岡市


def test_init_all_command_prints_the_national_figures(project_root, tmp_path):
    n03, table = _national_subset(project_root, tmp_path)
    (n03 / "N03-21_40.geojson.gz").unlink()
    args = [
        "--n03-dir",
        str(n03),
        "--stations",
        str(table),
        "--station-sharing",
        "public",
        "--out",
        str(tmp_path / "p"),
    ]

    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "region", "init-all", *args], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert "wrote 2 packs" in result.stdout and "27 of the table's 49 stations kept" in result.stdout
    assert "[2/2]" in result.stderr and "saga" in result.stderr
    again = subprocess.run(
        [sys.executable, "-m", "streams.cli", "region", "init-all", *args], capture_output=True, text=True
    )
    assert again.returncode != 0 and "--force" in again.stderr  # existing packs are not overwritten by accident


def test_a_folder_without_n03_files_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no N03 files"):
        n03_files(tmp_path)


def test_a_gzipped_geojson_reads_like_the_plain_one_and_a_broken_one_is_reported(project_root, tmp_path):
    problems = Problems()
    assert len(features(project_root / "data/n03/japan/N03-21_41.geojson.gz", problems)) == 20
    broken = tmp_path / "broken.geojson.gz"
    broken.write_bytes(gzip.compress(b'{"type": "FeatureCollection", "features": []}')[:-12])

    assert features(broken, problems) == []
    assert problems.items and "broken.geojson.gz" in str(problems.items[0])


def test_the_national_build_of_tochigi_gives_the_shipped_pack_s_data(project_root, tmp_path):
    rows = read_station_list(project_root / "data/amedas/japan-stations.csv", sharing="public")

    build_pack("tochigi", project_root / "data/n03/japan/N03-21_09.geojson.gz", None, tmp_path / "t",
               station_rows=rows)  # fmt: skip

    def columns(path: Path) -> list[list[str]]:
        with open(path, encoding="utf-8", newline="") as handle:
            return [row[:8] for row in csv.reader(handle)]

    shipped = project_root / "regions/tochigi"
    assert columns(tmp_path / "t/stations.csv") == columns(shipped / "stations.csv")
    for table in ("jma_areas.csv", "jma_forecast_hierarchy.csv", "jma_earthquake_areas.csv", "rules.yaml"):
        assert (tmp_path / "t" / table).read_bytes() == (shipped / table).read_bytes(), table
