"""Geofencing on the real MLIT boundaries and PLATEAU hazard zones of the shipped packs."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString, box

from streams.packs.region_pack import load_pack


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="module")
def kanagawa(project_root):
    return load_pack(project_root / "regions" / "kanagawa")


@pytest.mark.parametrize(
    "station_id, code, name",
    [
        ("41277", "09201", "宇都宮市"),
        ("41361", "09204", "佐野市"),
        ("41331", "09209", "真岡市"),
        ("41172", "09206", "日光市"),
    ],
)
def test_tochigi_amedas_stations_resolve_to_their_municipality(tochigi, station_id, code, name):
    station = tochigi.stations[station_id]

    location = tochigi.index.locate(station.lat, station.lon)

    assert (location.municipality_code, location.municipality_name, location.method) == (code, name, "contains")
    assert location.city_code is None


def test_yokohama_station_resolves_to_naka_ward_and_to_yokohama_city(kanagawa):
    station = kanagawa.stations["46106"]

    location = kanagawa.index.locate(station.lat, station.lon)

    assert location.municipality_code == "14104" and location.municipality_name == "中区"
    assert location.city_code == "14100"
    assert kanagawa.affected_codes("14104") == ("14104", "14100")
    assert kanagawa.name_of("14100") == "横浜市"
    assert set(kanagawa.wards_of("14100")) == {f"141{n:02d}" for n in range(1, 19)}


def test_a_point_in_the_sea_off_miura_resolves_by_nearest_or_to_none_as_configured(kanagawa):
    lat, lon = 35.10, 139.62  # Sagami Bay, south-west of Miura

    near = kanagawa.index.locate(lat, lon, nearest_max_distance_m=5000)
    short = kanagawa.index.locate(lat, lon, nearest_max_distance_m=1000)
    off = kanagawa.index.locate(lat, lon, nearest_max_distance_m=0)

    assert near.municipality_code == "14210" and near.method == "nearest"
    assert 1000 < near.distance_m < 5000
    assert short.municipality_code is None and short.method is None
    assert off.municipality_code is None


def test_an_area_spanning_two_municipalities_returns_both(tochigi):
    utsunomiya, kanuma = tochigi.stations["41277"], tochigi.stations["41271"]
    line = LineString([(utsunomiya.lon, utsunomiya.lat), (kanuma.lon, kanuma.lat)])

    codes = tochigi.index.municipalities_intersecting(line)
    small_box = tochigi.index.municipalities_intersecting(box(139.86, 36.54, 139.87, 36.55))

    assert {"09201", "09205"} <= set(codes)
    assert small_box == ["09201"]


def test_municipalities_within_a_radius_grow_with_the_radius(tochigi):
    station = tochigi.stations["41277"]

    within_1km = tochigi.index.municipalities_within(station.lat, station.lon, 1000)
    within_20km = tochigi.index.municipalities_within(station.lat, station.lon, 20_000)

    assert within_1km == ["09201"]
    assert "09201" in within_20km and len(within_20km) > 3


def test_every_station_of_both_packs_resolves_to_exactly_one_municipality(tochigi, kanagawa):
    for pack in (tochigi, kanagawa):
        stations = list(pack.stations.values())
        batch = pack.index.locate_many([s.lat for s in stations], [s.lon for s in stations])
        assert (batch.municipality_index >= 0).all()
        assert [pack.municipalities[i].code for i in batch.municipality_index] == [
            s.municipality_code for s in stations
        ]
    assert len(tochigi.stations) == 19 and len(kanagawa.stations) == 11


def test_points_inside_sagamihara_hazard_zones_report_those_zones(kanagawa):
    landslide = next(z for z in kanagawa.zones if z.ref.kind == "landslide_warning")
    flood = next(z for z in kanagawa.zones if z.ref.kind == "flood_inundation")
    inside_landslide = landslide.geometry.representative_point()
    inside_flood = flood.geometry.representative_point()

    landslide_hits = kanagawa.index.locate(inside_landslide.y, inside_landslide.x).hazard_zones
    flood_hits = kanagawa.index.zones_at(inside_flood.y, inside_flood.x)
    yokohama = kanagawa.stations["46106"]

    assert landslide.ref in landslide_hits
    assert flood.ref in flood_hits
    assert kanagawa.index.zones_at(yokohama.lat, yokohama.lon) == ()
    assert landslide.ref.rank in (1, 2) and flood.ref.rank in (1, 2, 3, 4)


def test_kanagawa_pack_carries_the_real_sagamihara_zones(kanagawa):
    kinds = {z.ref.kind for z in kanagawa.zones}

    assert kinds == {"landslide_warning", "flood_inundation"}
    assert sum(z.ref.kind == "flood_inundation" for z in kanagawa.zones) == 43
    # 2,573 features, parts of one zone merged by zone number, type and area class
    assert sum(z.ref.kind == "landslide_warning" for z in kanagawa.zones) == 1120


def test_batch_answers_equal_single_answers(tochigi):
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = tochigi.index.bounds
    lats, lons = rng.uniform(miny, maxy, 300), rng.uniform(minx, maxx, 300)

    batch = tochigi.index.locate_many(lats, lons)

    for k in range(300):
        single = tochigi.index.locate(float(lats[k]), float(lons[k]))
        i = int(batch.municipality_index[k])
        assert single.municipality_code == (tochigi.municipalities[i].code if i >= 0 else None)
