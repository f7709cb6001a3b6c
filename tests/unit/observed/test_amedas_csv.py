"""The national narrow AMeDAS layout (observed_at,station_id,precip_1h_mm,precip_24h_mm): station attributes from
the packs, each reading routed to the pack holding its station, an empty value kept missing (never 0)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from streams.kernel.errors import ConfigError
from streams.observed.amedas_csv import read_amedas, readings_by_pack
from streams.packs.region_pack import load_pack

NARROW = """\
observed_at,station_id,precip_1h_mm,precip_24h_mm
2023-09-04T15:00:00+09:00,41277,71.0,80.5
2023-09-04T15:00:00+09:00,46106,,12.0
2023-09-04T15:00:00+09:00,11001,0.5,58.5
2023-09-04T14:00:00+09:00,41277,3.0,
2023-09-04T16:00:00+09:00,46106,0.0,12.0
"""


@pytest.fixture(scope="module")
def packs(project_root):
    return [load_pack(project_root / "regions/tochigi"), load_pack(project_root / "regions/kanagawa")]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["japan.csv", "japan.csv.gz"])
def test_narrow_readings_go_to_the_pack_holding_their_station_with_its_position(packs, tmp_path, name):
    result = readings_by_pack(_write(tmp_path, name, NARROW), packs)

    tochigi, kanagawa = result.by_pack["tochigi"], result.by_pack["kanagawa"]
    assert [(r["station_id"], r["measurements"][0]["value"]) for r in tochigi] == [("41277", 3.0), ("41277", 71.0)]
    assert [r["station_id"] for r in kanagawa] == ["46106", "46106"]
    utsunomiya = packs[0].stations["41277"]
    assert tochigi[0]["location"] == {"lat": utsunomiya.lat, "lon": utsunomiya.lon, "alt_m": utsunomiya.alt_m}
    assert result.unknown == {"11001": 1} and result.readings == 4


def test_an_empty_value_stays_missing_never_zero(packs, tmp_path):
    result = readings_by_pack(_write(tmp_path, "japan.csv", NARROW), packs)

    gap = result.by_pack["kanagawa"][0]
    assert gap["measurements"][0] == {"quantity": "precipitation_1h", "value": None, "unit": "mm"}
    assert gap["quality"] == "MISSING" and result.missing_1h == 1
    only_24h_gap = result.by_pack["tochigi"][0]
    assert only_24h_gap["measurements"][1]["value"] is None and only_24h_gap["quality"] == "OK"
    assert result.by_pack["kanagawa"][1]["measurements"][0]["value"] == 0.0  # a real 0 stays 0


def test_the_time_range_applies_to_narrow_files(packs, tmp_path):
    since = 1693807200000  # 2023-09-04T15:00:00+09:00
    result = readings_by_pack(_write(tmp_path, "japan.csv", NARROW), packs, since_ms=since, until_ms=since + 1)

    assert [r["station_id"] for rs in result.by_pack.values() for r in rs] == ["41277", "46106"]


def test_a_narrow_file_needs_the_packs_stations(tmp_path):
    with pytest.raises(ConfigError, match="narrow layout") as raised:
        read_amedas(_write(tmp_path, "japan.csv", NARROW))
    assert "japan.csv" in str(raised.value)


def test_read_amedas_takes_the_stations_for_a_narrow_file(packs, tmp_path):
    stations = {**packs[0].stations, **packs[1].stations}

    records = read_amedas(_write(tmp_path, "japan.csv.gz", NARROW), stations=stations)

    assert [r["observed_at"] for r in records] == sorted(r["observed_at"] for r in records)
    assert {r["station_id"] for r in records} == {"41277", "46106"}  # 11001 is in no pack: left out


def test_a_bad_value_of_a_narrow_file_names_the_row(packs, tmp_path):
    path = _write(tmp_path, "japan.csv", NARROW.replace("71.0", "lots"))

    with pytest.raises(ConfigError, match="row 2"):
        readings_by_pack(path, packs)


def test_the_wide_layout_routes_too(packs, project_root):
    result = readings_by_pack(
        project_root / "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz",
        packs,
        since_ms=1693807200000,
        until_ms=1693807200000 + 3_600_000,
    )

    assert (len(result.by_pack["tochigi"]), len(result.by_pack["kanagawa"])) == (19, 11)
    assert not result.unknown


def test_a_station_in_two_packs_is_refused(packs, tmp_path):
    with pytest.raises(ConfigError, match="is in the packs tochigi and tochigi"):
        readings_by_pack(_write(tmp_path, "japan.csv", NARROW), [packs[0], packs[0]])


NATIONAL = os.environ.get("BOSAI_NATIONAL_AMEDAS")  # the path of japan-2023-hourly.csv.gz (not in the repo)


@pytest.mark.skipif(not NATIONAL, reason="set BOSAI_NATIONAL_AMEDAS to the national narrow file")
def test_the_national_file_gives_the_shipped_packs_what_their_own_file_gives(packs, project_root):
    since = 1693753200000  # 2023-09-04T00:00:00+09:00, one day
    window = {"since_ms": since, "until_ms": since + 86_400_000}
    national = readings_by_pack(Path(str(NATIONAL)), packs, **window)
    wide = readings_by_pack(project_root / "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz", packs, **window)

    assert national.by_pack == wide.by_pack  # same readings, positions from the packs
    assert len(national.unknown) == 1238 - 30


def test_windows_give_each_day_of_a_narrow_file_in_turn(packs, tmp_path):
    from streams.observed.amedas_csv import is_narrow, windows_by_pack

    text = NARROW.replace("2023-09-04T14:00", "2023-09-03T14:00")  # the 14:00 row: a day earlier
    text = "\n".join(sorted(text.splitlines()[1:], key=lambda line: line[:25]))
    path = _write(tmp_path, "japan.csv.gz", "observed_at,station_id,precip_1h_mm,precip_24h_mm\n" + text + "\n")

    windows = list(windows_by_pack(path, packs))

    assert is_narrow(path) and not is_narrow(_write(tmp_path, "wide.csv", "observed_at,lat,lon\n"))
    assert [{name: [r["station_id"] for r in rs] for name, rs in w.by_pack.items()} for w in windows] == [
        {"tochigi": ["41277"]},
        {"tochigi": ["41277"], "kanagawa": ["46106", "46106"]},
    ]
    assert [dict(w.unknown) for w in windows] == [{}, {"11001": 1}] and windows[1].missing_1h == 1


def test_windows_refuse_a_file_out_of_time_order(packs, tmp_path):
    from streams.observed.amedas_csv import windows_by_pack

    text = NARROW.replace("2023-09-04T14:00", "2023-09-03T14:00")
    with pytest.raises(ConfigError, match="event-time order"):
        list(windows_by_pack(_write(tmp_path, "japan.csv", text), packs))
