"""Region packs: `region init` from N03 + an AMeDAS-format CSV, and precise errors for broken packs."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streams.packs.region_pack import PackError, load_pack


def _kanagawa_subset(project_root: Path, tmp_path: Path) -> Path:
    """An N03 file for a 'new' prefecture: Kawasaki's wards and two neighbours, as MLIT ships it."""
    source = json.loads((project_root / "regions/kanagawa/municipalities.geojson").read_text())
    keep = {"14131", "14132", "14133", "14134", "14135", "14136", "14137", "14204", "14205"}
    features = [f for f in source["features"] if f["properties"]["N03_007"] in keep]
    # N03 downloads carry code-less features (所属未定地); init must leave them out.
    features.append(
        {
            "type": "Feature",
            "properties": {"N03_001": "神奈川県", "N03_004": None, "N03_007": None},
            "geometry": features[0]["geometry"],
        }
    )
    path = tmp_path / "N03-test.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def _amedas_csv(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "obs.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["observed_at", "station_id", "name_ja", "name_en", "lat", "lon", "alt_m", "precip_1h_mm", "precip_24h_mm"]
        )
        for hour in ("2023-09-04T15:00:00+09:00", "2023-09-04T16:00:00+09:00"):  # repeated rows per station
            for row in rows:
                writer.writerow([hour, *row, "1.0", "2.0"])
    return path


STATIONS = [
    ("90001", "川崎テスト", "Kawasaki test", "35.5308", "139.7029", "5"),  # 川崎区
    ("90002", "藤沢テスト", "Fujisawa test", "35.3386", "139.4875", "10"),  # 藤沢市
    ("41277", "宇都宮", "Utsunomiya", "36.54833", "139.86833", "119"),  # another prefecture
]


def test_region_init_builds_a_pack_that_loads_and_resolves_its_stations(project_root, tmp_path):
    out = tmp_path / "kawasaki-test"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "region",
            "init",
            "--name",
            "kawasaki-test",
            "--n03",
            str(_kanagawa_subset(project_root, tmp_path)),
            "--stations",
            str(_amedas_csv(tmp_path, STATIONS)),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    pack = load_pack(out)
    assert pack.prefecture_code == "14"
    assert pack.designated_cities == {"14130": "川崎市"}
    assert sorted(pack.stations) == ["90001", "90002"]  # Utsunomiya lies outside and is left out
    assert pack.stations["90001"].municipality_code == "14131"
    assert pack.affected_codes("14131") == ("14131", "14130")
    assert pack.stations["90002"].municipality_code == "14205"
    assert pack.rules.rule("rain_1h").level("very_heavy").threshold == 50
    assert {s.sharing for s in pack.stations.values()} == {"public"}  # AMeDAS observations are public
    assert "41277" in (out / "region.yaml").read_text()  # the manifest says what was left out


def test_locate_command_prints_one_json_object(project_root):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "locate",
            "--region",
            str(project_root / "regions/kanagawa"),
            "--lat",
            "35.4389",
            "--lon",
            "139.6475",
        ],
        capture_output=True,
        text=True,
    )

    answer = json.loads(result.stdout)
    assert result.returncode == 0
    assert answer["municipality_code"] == "14104" and answer["city_code"] == "14100"
    assert answer["method"] == "contains" and answer["distance_m"] == 0.0


def test_locate_in_the_sea_without_fallback_prints_null_and_exits_zero(project_root):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "locate",
            "--region",
            str(project_root / "regions/kanagawa"),
            "--lat",
            "35.10",
            "--lon",
            "139.62",
            "--max-distance-m",
            "0",
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0 and json.loads(result.stdout)["municipality_code"] is None


def test_locate_with_a_bad_argument_exits_non_zero_with_a_message(project_root):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "locate",
            "--region",
            str(project_root / "regions/kanagawa"),
            "--lat",
            "north",
            "--lon",
            "139.62",
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0 and "--lat" in result.stderr


# -- broken packs ---------------------------------------------------------------------------------


@pytest.fixture()
def pack_copy(project_root, tmp_path) -> Path:
    target = tmp_path / "tochigi"
    shutil.copytree(project_root / "regions" / "tochigi", target)
    return target


def _edit_geojson(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc["features"])
    path.write_text(json.dumps(doc, ensure_ascii=False))


def _problems(pack_dir: Path) -> str:
    with pytest.raises(PackError) as caught:
        load_pack(pack_dir)
    return str(caught.value)


def test_bad_geometry_is_reported_with_file_and_feature(pack_copy):
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[139.8, 36.5], [139.9, 36.6], [139.9, 36.5], [139.8, 36.6], [139.8, 36.5]]],
    }
    _edit_geojson(pack_copy / "municipalities.geojson", lambda fs: fs[3].update(geometry=bowtie))

    message = _problems(pack_copy)

    assert "municipalities.geojson [feature 3 N03_007='09204']: bad geometry: Self-intersection" in message


def test_unknown_and_foreign_codes_are_reported(pack_copy):
    def edit(features):
        features[0]["properties"]["N03_007"] = "9201"
        features[1]["properties"]["N03_007"] = "14104"

    _edit_geojson(pack_copy / "municipalities.geojson", edit)

    message = _problems(pack_copy)

    assert "[feature 0 N03_007='9201']: unknown code '9201'" in message
    assert "[feature 1 N03_007='14104']: code 14104 belongs to prefecture 14, not 09" in message


def test_duplicate_station_id_is_reported_with_its_row(pack_copy):
    stations = pack_copy / "stations.csv"
    lines = stations.read_text().splitlines()
    stations.write_text("\n".join(lines + [lines[1]]) + "\n")

    message = _problems(pack_copy)

    assert (
        f"stations.csv [row {len(lines) + 1} station_id='41011']: duplicate station id 41011 (first on row 2)"
        in message
    )


def test_station_outside_every_municipality_beyond_the_allowed_distance(pack_copy):
    stations = pack_copy / "stations.csv"
    stations.write_text(stations.read_text() + "99999,rain_gauge,沖,Offshore,35.0,141.5,0\n")

    message = _problems(pack_copy)

    assert "station 99999 (沖) at (35.0, 141.5) is outside every municipality" in message
    assert "within 5000 m of a municipality" in message


def test_station_with_impossible_coordinates(pack_copy):
    stations = pack_copy / "stations.csv"
    stations.write_text(stations.read_text() + "99998,rain_gauge,Bad,Bad,139.8,36.5,0\n")

    assert "coordinates (139.8, 36.5) are not in Japan" in _problems(pack_copy)


def test_rules_that_do_not_rise_are_reported_with_rule_and_file(pack_copy):
    rules = yaml.safe_load((pack_copy / "rules.yaml").read_text())
    rules["rules"][0]["levels"][2]["threshold"] = 25
    (pack_copy / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True))

    message = _problems(pack_copy)

    assert "rules.yaml [rules[0] id=rain_1h]: thresholds [20.0, 30.0, 25.0, 80.0] do not rise" in message


def test_station_settings_are_validated(pack_copy):
    manifest = yaml.safe_load((pack_copy / "region.yaml").read_text())
    manifest["files"]["station_settings"] = "stations.yaml"
    (pack_copy / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    stations = pack_copy / "stations.csv"
    stations.write_text(
        stations.read_text() + "R1,river_level_gauge,田川テスト,Tagawa test,36.55,139.88,100\n"
        "R2,river_level_gauge,無設定,No stages,36.56,139.88,100\n"
    )
    (pack_copy / "stations.yaml").write_text(
        yaml.safe_dump(
            {
                "R1": {
                    "river_stages": {"standby_m": 1.0, "caution_m": 2.5, "evacuation_m": 2.0, "danger_m": 3.0},
                    "downstream_municipalities": ["09999"],
                },
                "41277": {"downstream_municipalities": ["09999"], "hazard_zones": ["no-such-zone"]},
                "41361": {"rules": {"rain_1h": {"thresholds": {"huge": 10}}}},
                "00000": {},
            }
        )
    )

    message = _problems(pack_copy)

    assert "stations.yaml [station R1]: river stages [1.0, 2.5, 2.0, 3.0] do not rise" in message
    assert "[station R2]: a river_level_gauge without river_stages" in message
    assert "[station 41277 downstream_municipalities]: unknown municipality code(s) ['09999']" in message
    assert "[station 41361 rules.rain_1h]: unknown level 'huge'" in message
    assert "[station 00000]: unknown station 00000" in message


def test_river_gauge_settings_load_when_valid(pack_copy):
    manifest = yaml.safe_load((pack_copy / "region.yaml").read_text())
    manifest["files"]["station_settings"] = "stations.yaml"
    (pack_copy / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    stations = pack_copy / "stations.csv"
    stations.write_text(stations.read_text() + "R1,river_level_gauge,田川テスト,Tagawa test,36.55,139.88,100\n")
    (pack_copy / "stations.yaml").write_text(
        yaml.safe_dump(
            {
                "R1": {
                    "river_stages": {
                        "standby_m": 1.0,
                        "caution_m": 2.0,
                        "evacuation_m": 2.5,
                        "danger_m": 3.0,
                        "overflow_m": 3.6,
                    },
                    "downstream_municipalities": ["09205", "09209"],
                    "rules": {"river_stage": {"hysteresis": 0.05}},
                }
            }
        )
    )

    pack = load_pack(pack_copy)

    gauge = pack.stations["R1"]
    assert gauge.municipality_code == "09201"
    assert gauge.river_stages.danger_m == 3.0 and gauge.river_stages.overflow_m == 3.6
    assert gauge.downstream_municipalities == ("09205", "09209")
    assert gauge.rule_overrides == {"river_stage": {"hysteresis": 0.05}}


def test_shipped_amedas_packs_share_their_stations_publicly(project_root):
    for name in ("tochigi", "kanagawa"):
        pack = load_pack(project_root / "regions" / name)

        assert {s.sharing for s in pack.stations.values()} == {"public"}, name


def test_a_station_without_a_sharing_level_is_internal(pack_copy):
    stations = pack_copy / "stations.csv"
    stations.write_text(stations.read_text() + "M1,rain_gauge,市の雨量計,City gauge,36.55,139.88,100\n")

    pack = load_pack(pack_copy)

    assert pack.stations["M1"].sharing == "internal" and not pack.stations["M1"].is_public
    assert pack.stations["41277"].is_public


def test_a_station_file_without_the_sharing_column_makes_every_station_internal(pack_copy):
    stations = pack_copy / "stations.csv"
    rows = [line.rsplit(",", 1)[0] for line in stations.read_text().splitlines()]
    stations.write_text("\n".join(rows) + "\n")

    pack = load_pack(pack_copy)

    assert {s.sharing for s in pack.stations.values()} == {"internal"}


def test_an_unknown_sharing_level_is_reported_with_its_row(pack_copy):
    stations = pack_copy / "stations.csv"
    lines = stations.read_text().splitlines()
    stations.write_text(stations.read_text() + "M2,rain_gauge,誤り,Typo,36.55,139.88,100,publik\n")

    message = _problems(pack_copy)

    assert f"stations.csv [row {len(lines) + 1} station_id='M2']: sharing is 'publik'" in message
    assert "expected public | municipal | internal (empty or no column: internal)" in message


def test_missing_file_names_the_file(pack_copy):
    (pack_copy / "stations.csv").unlink()

    assert "stations.csv: cannot read: No such file or directory" in _problems(pack_copy)


def test_ward_of_an_unlisted_designated_city_is_reported(project_root, tmp_path):
    target = tmp_path / "kanagawa"
    shutil.copytree(project_root / "regions" / "kanagawa", target)
    manifest = yaml.safe_load((target / "region.yaml").read_text())
    del manifest["designated_cities"]["14130"]
    (target / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))

    message = _problems(target)

    assert "ward 川崎区 (14131) belongs to designated city 川崎市, which region.yaml does not list" in message


def test_zone_mapping_naming_absent_properties_is_reported(project_root, tmp_path):
    target = tmp_path / "kanagawa"
    shutil.copytree(project_root / "regions" / "kanagawa", target)
    manifest = yaml.safe_load((target / "region.yaml").read_text())
    manifest["hazard_zones"][1]["id"] = "fld-{A31_001}"
    (target / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))

    assert "sagamihara_fld_2020.geojson [feature 0]: missing properties ['A31_001']" in _problems(target)
