"""The JMA tables of a pack: the coast and its 津波予報区, the 地震情報／細分区域, the 7-digit exceptions, the
forecast-area hierarchy — derived by region init, checked on load, correctable by the operator."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from shapely.geometry import LineString, box

from streams.cli.region import region
from streams.packs.coast import TsunamiLine, coastal_municipalities
from streams.packs.jma_area_tables import earthquake_area_rows, municipal_exceptions
from streams.packs.jma_areas import OWN, JmaAreas, areas_of
from streams.packs.jma_pack_tables import Reference, refresh_jma_tables
from streams.packs.region_init import init_pack
from streams.packs.region_pack import PackError, load_pack
from streams.platform.settings import project_root
from tests.support.jma_samples import FUKUOKA_N03

# A small made-up prefecture at 35°N: W (west) meets the sea on three sides; E sits in a bay of the
# neighbouring prefecture and meets no sea.
W = box(139.0, 35.0, 139.1, 35.2)
E = box(139.1, 35.05, 139.2, 35.15)
OUTLINE = W.union(E)
NEIGHBOUR = box(139.1, 35.0, 139.4, 35.2).difference(E)
WEST = LineString([(139.0, 35.0), (139.0, 35.2)])  # the 津波予報区 along the west coast
SOUTH = LineString([(139.0, 35.0), (139.1, 35.0)])


def test_a_municipality_meeting_the_sea_is_coastal_and_one_meeting_only_land_is_not():
    coast = coastal_municipalities(
        [("90001", W), ("90002", E)],
        OUTLINE,
        [NEIGHBOUR],
        [TsunamiLine("901", "西岸", WEST), TsunamiLine("902", "南岸", SOUTH)],
    )

    assert set(coast.coast_m) == {"90001"}
    assert 38_000 < coast.coast_m["90001"] < 42_000  # 22 km west + 9 km north + 9 km south
    assert [(r.code, r.municipality_codes) for r in coast.rows] == [("901", ("90001",)), ("902", ("90001",))]
    assert coast.unassigned == () and coast.fallback == ()


def test_a_coast_out_of_reach_of_every_line_takes_the_nearest_within_the_fallback_or_stays_unassigned():
    offshore = TsunamiLine("903", "沖", LineString([(138.95, 35.0), (138.95, 35.2)]))  # 4.5 km off the coast
    far = TsunamiLine("904", "遠く", LineString([(138.4, 35.0), (138.4, 35.2)]))  # 55 km off

    near = coastal_municipalities([("90001", W), ("90002", E)], OUTLINE, [NEIGHBOUR], [offshore])
    none = coastal_municipalities([("90001", W), ("90002", E)], OUTLINE, [NEIGHBOUR], [far])

    assert near.fallback == ("90001",) and [r.code for r in near.rows] == ["903"]
    assert none.unassigned == ("90001",) and none.rows == ()


def test_a_landlocked_prefecture_has_no_coast():
    inland = box(139.1, 35.05, 139.2, 35.15)
    around = box(139.0, 34.9, 139.3, 35.3).difference(inland)

    coast = coastal_municipalities([("90002", inland)], inland, [around], [TsunamiLine("901", "西岸", WEST)])

    assert coast.coast_m == {} and coast.rows == ()


def test_each_municipality_goes_to_the_earthquake_area_it_overlaps_most_and_an_island_area_to_its_holder():
    areas = [
        ("801", "西部", box(139.0, 35.0, 139.12, 35.2)),
        ("802", "東部", box(139.12, 35.0, 139.3, 35.2)),
        ("803", "小島", box(139.01, 35.01, 139.02, 35.02)),  # inside W, overlapped most by no unit
    ]
    island = box(139.4, 35.0, 139.41, 35.01)  # outside every polygon, 0.1° from 東部

    derived = earthquake_area_rows([("90001", W), ("90002", E), ("90003", island)], areas, "test")

    assert {r.code: r.municipality_codes for r in derived.rows} == {
        "801": ("90001",),
        "802": ("90002", "90003"),
        "803": ("90001",),
    }
    assert "nearest" in next(r.source for r in derived.rows if r.code == "802")
    assert derived.unresolved == ()


def test_codes_the_general_rule_misses_are_mapped_by_polygon_then_part_number_then_centroid():
    areas = JmaAreas.build("14", [("14101", "14100"), ("14102", "14100"), ("14201", None)])
    ward_a, ward_b, town = box(139.0, 35.0, 139.1, 35.1), box(139.1, 35.0, 139.2, 35.1), box(139.0, 35.1, 139.2, 35.2)
    units = [("14101", ward_a), ("14102", ward_b), ("14201", town)]
    part = box(139.0, 35.0, 139.105, 35.1)  # all of 14101, 5 % of 14102

    derived = municipal_exceptions(
        [
            ("1410011", "横浜市北部"),
            ("1420101", "町の一部"),
            ("1420300", "旧町"),
            ("1499901", "どこか"),
            ("1410100", "区"),
        ],
        areas,
        units,
        {"1410011": (part, "JMA polygon")},
        {"1420300": (35.15, 139.1)},
        "centroid",
    )

    assert {r.code: r.municipality_codes for r in derived.rows} == {
        "1410011": ("14101",),
        "1420101": ("14201",),
        "1420300": ("14201",),
    }
    assert len(derived.unresolved) == 1 and derived.unresolved[0].startswith("1499901")


@pytest.fixture(scope="module")
def kanagawa():
    return load_pack(project_root() / "regions" / "kanagawa")


def test_the_shipped_kanagawa_pack_puts_its_coast_on_the_two_tsunami_areas_of_its_samples(kanagawa):
    tsunami = {r.code: set(r.municipality_codes) for r in kanagawa.jma_tsunami_area_rows}

    # 東京湾内湾: the bay shore of 横浜市 (鶴見, 神奈川, 西, 中, 磯子, 金沢), 川崎区 and 横須賀市 north of 観音崎
    assert tsunami["312"] == {"14101", "14102", "14103", "14104", "14107", "14108", "14131", "14201"}
    # 相模湾・三浦半島: 横須賀市 to 湯河原町
    assert tsunami["330"] == {
        "14201", "14203", "14204", "14205", "14206", "14207", "14208", "14210", "14301", "14341", "14342", "14383",
        "14384",
    }  # fmt: skip
    assert set(tsunami) == {"312", "330"}
    assert areas_of(kanagawa).tsunami_area("312").municipality_codes[:2] == ("14100", "14101")  # the city too


def test_the_shipped_packs_carry_the_hierarchy_and_the_earthquake_areas(kanagawa):
    tochigi = load_pack(project_root() / "regions" / "tochigi")

    assert len(kanagawa.jma_hierarchy_rows) == 33 and len(tochigi.jma_hierarchy_rows) == 29
    assert {r.code for r in kanagawa.jma_earthquake_area_rows} == {"360", "361"}
    assert {r.code for r in tochigi.jma_earthquake_area_rows} == {"310", "311"}
    assert tochigi.jma_tsunami_area_rows == ()  # no coast
    west = areas_of(kanagawa).forecast("140020")  # 一次細分区域 西部
    assert "14206" in west.municipality_codes and "14101" not in west.municipality_codes
    assert areas_of(tochigi).municipal("0920603").municipality_codes == ("09206",)  # 日光市藤原: a part of 日光市


def test_region_check_passes_on_the_shipped_packs_and_counts_the_tables():
    runner = CliRunner()
    for name in ("kanagawa", "tochigi"):
        result = runner.invoke(region, ["check", str(project_root() / "regions" / name)])
        assert result.exit_code == 0, result.output
        assert "forecast hierarchy" in result.output and "地震情報／細分区域 2" in result.output


@pytest.fixture
def fukuoka(tmp_path):
    init_pack("fukuoka", FUKUOKA_N03, None, tmp_path / "fukuoka")
    return tmp_path / "fukuoka"


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"edit {old!r} does not apply"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_region_init_writes_every_table_for_fukuoka_and_loading_checks_them(fukuoka):
    pack = load_pack(fukuoka)

    assert {r.code for r in pack.jma_tsunami_area_rows} == {"710", "711", "712"}  # 瀬戸内海, 日本海, 有明・八代海
    assert areas_of(pack).forecast("400000").kind == OWN
    assert areas_of(pack).municipal("4030500").municipality_codes == ("40231",)  # 那珂川町 → 那珂川市
    assert all(
        r.source for r in (*pack.jma_hierarchy_rows, *pack.jma_earthquake_area_rows, *pack.jma_tsunami_area_rows)
    )


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        ("jma_tsunami_areas.csv", "710,福岡県瀬戸内海沿岸,", "710,福岡県瀬戸内海沿岸,99999 ", "are not this pack's"),
        ("jma_tsunami_areas.csv", "710,", "71,", "a 3-digit 津波予報区 code"),
        ("jma_forecast_hierarchy.csv", ",400021,", ",4000211,", "6-digit 府県予報区・細分区域 codes"),
        (
            "jma_earthquake_areas.csv",
            "JMA GIS 地震情報／細分区域 2024-05-20 (jma/gis/earthquake_areas.geojson.gz) ∩ N03: largest overlap\n",
            "\n",
            "no source",
        ),
    ],
    ids=["unknown-municipality", "short-code", "hierarchy-code", "no-source"],
)
def test_a_broken_table_row_is_named_with_its_file_row_and_what_was_expected(fukuoka, file, old, new, expected):
    _edit(fukuoka / file, old, new)

    with pytest.raises(PackError) as refused:
        load_pack(fukuoka)

    assert file in str(refused.value) and "row " in str(refused.value) and expected in str(refused.value)


def test_a_hierarchy_code_no_table_resolves_is_a_problem_naming_the_fix(tmp_path):
    pack_dir = tmp_path / "tochigi"
    shutil.copytree(project_root() / "regions" / "tochigi", pack_dir)
    (pack_dir / "jma_areas.csv").write_text("jma_code,jma_name,municipality_codes,source\n", encoding="utf-8")

    with pytest.raises(PackError) as refused:
        load_pack(pack_dir)

    problems = [str(p) for p in refused.value.problems]
    assert len(problems) == 5  # 日光市's five parts (今市, 日光, 藤原, 足尾, 栗山)
    assert all("jma_forecast_hierarchy.csv" in p and "maps to no municipality" in p for p in problems)
    assert "0920601" in problems[0] and "a row for 0920601 in jma_areas.csv" in problems[0]


def test_the_operator_corrects_a_table_and_regenerating_keeps_the_correction(tmp_path):
    pack_dir = tmp_path / "kanagawa"
    shutil.copytree(project_root() / "regions" / "kanagawa", pack_dir)
    tsunami = pack_dir / "jma_tsunami_areas.csv"
    lines = tsunami.read_text(encoding="utf-8").splitlines()
    corrected = next(line for line in lines if line.startswith("330,"))
    mine = '330,相模湾・三浦半島,14201 14210,"operator: only 横須賀市 and 三浦市 for the drill, 2026-12-01"'
    tsunami.write_text("\n".join(mine if line == corrected else line for line in lines) + "\n", encoding="utf-8")
    manifest = (pack_dir / "region.yaml").read_text(encoding="utf-8")

    files, notes = refresh_jma_tables(pack_dir, Reference(project_root()))
    pack = load_pack(pack_dir)

    assert {r.code: r.municipality_codes for r in pack.jma_tsunami_area_rows}["330"] == ("14201", "14210")
    assert len(next(r for r in pack.jma_tsunami_area_rows if r.code == "312").municipality_codes) == 8  # derived
    assert any("kept the operator's rows 330" in n for n in notes)
    assert (pack_dir / "region.yaml").read_text(encoding="utf-8") == manifest  # every file already named
    assert set(files) == {"jma_areas", "jma_forecast_hierarchy", "jma_earthquake_areas", "jma_tsunami_areas"}
