"""The residents' map, decided in the core: what is shown, how it is labelled, and what never is."""

from __future__ import annotations

import json
import re

import pytest

from streams.kernel.model import RiverStages, SensorKind, Station
from streams.kernel.times import HOUR_MS, parse_jst
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.publicmap import geojson as public_geojson
from streams.publicmap.labels import HUB_NOTE, JMA_CREDIT, river_stage
from streams.publicmap.view import PublicMap, RegionView
from tests.support.web_data import alert, cancel_of, heavy_rain, internal_alert, jma_landslide_alert

FORBIDDEN_FOR_THE_HUB = re.compile(r"警報|注意報|特別警報|予報|予想|見込み|警戒レベル\d(?!相当)")


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="module")
def rain_until_13(project_root, tochigi):
    """The real 2023-09-04 heavy rain through the hub's pipeline, 00:00 to 13:00 JST."""
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), tochigi)
    _records, enriched, alerts = heavy_rain(project_root, tochigi, topics, "2023-09-04T00:00", "2023-09-04T13:01")
    return enriched, alerts


def _map(pack) -> PublicMap:
    return PublicMap([RegionView.of(pack)])


def test_the_heavy_rain_colours_the_municipalities_where_it_rained_hardest(tochigi, rain_until_13):
    enriched, alerts = rain_until_13
    public_map = _map(tochigi)

    public_map.apply(alerts=alerts, readings=enriched)

    statuses = public_map.municipality_statuses()
    assert {"09201", "09209", "09386"} <= set(statuses)  # 宇都宮市 52.5, 真岡市 71.0, 高根沢町 37.5 mm/h at 13:00
    assert statuses["09209"]["label"] == {"ja": "非常に激しい雨", "en": "very heavy rain"}
    assert statuses["09209"]["tone"] == "severe" and statuses["09209"]["name"] == "真岡市"
    items = public_map.alert_items()
    assert [i["updated"] for i in items] == sorted((i["updated"] for i in items), reverse=True)  # newest first
    moka = next(i for i in items if i["municipalities"][0]["code"] == "09209")
    assert moka["since_jst"] == moka["updated_jst"] == "2023-09-04T12:00:00+09:00"  # 54.0 mm at 12:00, then 71.0
    assert moka["cap"] == f"/cap/{moka['id']}.{moka['sequence']}.xml"
    assert moka["source"]["note"] == HUB_NOTE and moka["source"]["kind"] == "hub"


def test_station_values_show_the_last_hour_and_the_last_day(tochigi, rain_until_13):
    enriched, _alerts = rain_until_13
    public_map = _map(tochigi)

    public_map.apply(readings=enriched)

    moka = next(s for s in public_map.stations() if s["id"] == "41331")
    assert (moka["precipitation_1h"], moka["precipitation_24h"]) == (71.0, 146.5)
    assert moka["rain_class"] == "rain50" and moka["observed_jst"] == "2023-09-04T13:00:00+09:00"
    assert len(public_map.stations()) == 19
    assert public_map.data_time == {"tochigi": parse_jst("2023-09-04T13:00", option="t")}


def test_a_24_hour_sum_is_made_from_hourly_values_when_the_sensor_reports_none(tochigi):
    public_map = _map(tochigi)
    start = parse_jst("2023-09-04T00:00", option="t")
    readings = [
        {
            "region": "tochigi",
            "reading": {
                "station_id": "41277",
                "observed_at": start + h * HOUR_MS,
                "quality": "OK",
                "measurements": [{"quantity": "precipitation_1h", "value": 2.0, "unit": "mm"}],
            },
        }
        for h in range(30)
    ]

    public_map.apply(readings=readings)

    (station,) = public_map.stations()
    assert station["precipitation_1h"] == 2.0
    assert station["precipitation_24h"] == 48.0  # the 24 whole hours up to the last reading


def test_alerts_that_are_not_public_never_reach_the_map_the_feed_or_the_cap_messages(tochigi):
    public_map = _map(tochigi)
    municipal = alert(alert_id="tochigi-rain_24h-41277-20230904T1300JST", rule="rain_24h", sharing_level="MUNICIPAL")
    exercise = jma_landslide_alert(status="Exercise")

    change = public_map.apply(alerts=[internal_alert(), municipal, exercise])

    assert not change
    assert public_map.alert_items() == [] and public_map.municipality_statuses() == {}
    assert public_map.public_feed() == []
    assert public_map.cap_record("tochigi-river_rise-41331-20230904T1300JST.0") is None
    assert public_map.ignored == 3
    assert "急激な水位上昇" not in json.dumps(public_map.snapshot(), ensure_ascii=False)


def test_readings_of_stations_that_are_not_public_are_never_shown(tochigi):
    from dataclasses import replace

    stations = dict(tochigi.stations)
    stations["41277"] = replace(stations["41277"], sharing="internal")
    stations["41331"] = replace(stations["41331"], sharing="municipal")
    public_map = PublicMap([RegionView.of(replace(tochigi, stations=stations))])
    reading = {
        "station_id": "41277",
        "observed_at": 1,
        "quality": "OK",
        "measurements": [{"quantity": "precipitation_1h", "value": 9.0, "unit": "mm"}],
    }

    change = public_map.apply(
        readings=[
            {"region": "tochigi", "reading": reading},
            {"region": "tochigi", "reading": dict(reading, station_id="41331")},
            {"region": "tochigi", "reading": dict(reading, station_id="99999")},
        ]
    )

    assert not change and public_map.stations() == [] and public_map.ignored == 3
    ids = {f["properties"]["id"] for f in public_geojson.stations(public_map)["features"]}
    assert "41277" not in ids and "41331" not in ids and len(ids) == 17


def test_a_cancel_clears_the_alert_and_its_municipality(tochigi):
    public_map = _map(tochigi)
    raised = alert()
    public_map.apply(alerts=[raised])

    change = public_map.apply(alerts=[cancel_of(raised, raised["observed_at"] + HOUR_MS)])

    assert change.removed == [raised["alert_id"]]
    assert change.municipalities == {"09201": None}
    assert public_map.alert_items() == []
    assert [e["msg_type"] for e in public_map.public_feed()] == ["CANCEL"]  # the feed shows the all-clear


def test_a_new_alert_is_one_change_with_its_list_entry_and_its_municipality(tochigi):
    public_map = _map(tochigi)

    change = public_map.apply(alerts=[alert()])

    assert [a["id"] for a in change.alerts] == ["tochigi-rain_1h-41277-20230904T1300JST"]
    assert change.municipalities["09201"]["label"]["ja"] == "非常に激しい雨"
    assert change.removed == [] and change.official_landslide is None
    assert public_map.version == 1
    assert not public_map.apply(alerts=[alert()])  # the same message again changes nothing


def test_jma_reports_are_shown_as_jma_s_and_their_landslide_areas_are_listed(tochigi):
    public_map = _map(tochigi)
    report = jma_landslide_alert()

    change = public_map.apply(alerts=[report])

    (item,) = change.alerts
    assert item["source"]["kind"] == "jma" and item["source"]["note"]["ja"] == JMA_CREDIT
    assert item["source"]["name"]["ja"] == "気象庁"
    assert item["what"]["ja"] == "土砂災害警戒情報" and item["title"] == "栃木県土砂災害警戒情報"
    assert item["headline"]["ja"] == report["official"]["headline"]  # JMA's words, as JMA wrote them
    assert item["level"]["ja"] == "警戒レベル4相当" and item["tone"] == "level4"
    assert change.official_landslide == ["09205", "09206"]
    assert public_map.municipality_statuses()["09206"]["source"] == "jma"


def test_the_hub_never_words_its_own_alerts_as_warnings_or_forecasts(tochigi, rain_until_13):
    _enriched, alerts = rain_until_13
    public_map = _map(tochigi)
    river = alert(alert_id="tochigi-river_stage-R1-x", rule="river_stage", level="level_3", warning_level=3)

    public_map.apply(alerts=[*alerts, river])

    for item in public_map.alert_items():
        shown = " ".join(
            [item["what"]["ja"], item["level"]["ja"], item["headline"]["ja"], item["source"]["note"]["ja"]]
        )
        assert not FORBIDDEN_FOR_THE_HUB.search(shown.replace(HUB_NOTE["ja"], "")), shown
    assert public_map.municipality_statuses()["09201"]["label"]["ja"] == "警戒レベル3相当"  # level beats intensity


def test_an_alert_that_expires_leaves_when_event_time_passes_it(tochigi):
    public_map = _map(tochigi)
    report = jma_landslide_alert(expires=parse_jst("2023-09-04T14:20", option="t"))
    public_map.apply(alerts=[report])
    later = {
        "region": "tochigi",
        "reading": {
            "station_id": "41277",
            "observed_at": parse_jst("2023-09-04T14:30", option="t"),
            "quality": "OK",
            "measurements": [{"quantity": "precipitation_1h", "value": 0.0, "unit": "mm"}],
        },
    }

    change = public_map.apply(readings=[later])

    assert change.removed == [report["alert_id"]] and change.official_landslide == []
    assert public_map.alert_items() == []


def test_river_gauges_show_the_highest_stage_their_level_reaches():
    stages = RiverStages(standby_m=1.0, caution_m=2.0, evacuation_m=2.6, danger_m=3.1)

    assert river_stage(0.5, stages)["key"] == "normal"
    assert river_stage(2.7, stages) == {
        "key": "evacuation",
        "label": {
            "ja": "避難判断水位以上（警戒レベル3相当）",
            "en": "Evacuation judgement level (equivalent to level 3)",
        },
    }
    assert river_stage(9.0, stages)["key"] == "danger"  # no overflow stage defined
    assert river_stage(None, stages) is None


def test_a_public_river_gauge_shows_its_level_and_stage(tochigi):
    from dataclasses import replace

    gauge = Station(
        "R1",
        SensorKind.RIVER_LEVEL_GAUGE,
        "田川テスト",
        "Tagawa test",
        36.55,
        139.88,
        municipality_code="09201",
        river_stages=RiverStages(1.0, 2.0, 2.6, 3.1),
        sharing="public",
    )
    public_map = PublicMap([RegionView.of(replace(tochigi, stations={"R1": gauge}))])
    reading = {
        "station_id": "R1",
        "observed_at": 1000,
        "quality": "OK",
        "measurements": [{"quantity": "water_level", "value": 2.2, "unit": "m"}],
    }

    public_map.apply(readings=[{"region": "tochigi", "reading": reading}])

    (value,) = public_map.stations()
    assert value["water_level"] == 2.2 and value["river_stage"]["key"] == "caution"
    assert value["precipitation_1h"] is None and value["municipality"] == "宇都宮市"


def test_geojson_for_others_carries_boundaries_alerts_and_stations(tochigi, rain_until_13):
    enriched, alerts = rain_until_13
    public_map = _map(tochigi)
    public_map.apply(alerts=alerts, readings=enriched)

    boundaries = public_geojson.municipalities([tochigi])
    current = public_geojson.alerts(public_map, [tochigi])
    stations = public_geojson.stations(public_map)

    assert len(boundaries["features"]) == 25
    assert {f["properties"]["code"] for f in boundaries["features"]} >= {"09201", "09209"}
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in current["features"])
    assert {f["id"] for f in current["features"]} == {i["id"] for i in public_map.alert_items()}
    assert len(stations["features"]) == 19
    assert json.loads(json.dumps(current))["type"] == "FeatureCollection"


def test_hazard_zones_are_simplified_for_the_page(project_root):
    kanagawa = load_pack(project_root / "regions" / "kanagawa")

    zones = public_geojson.hazard_zones([kanagawa])

    assert len(zones["features"]) == len(kanagawa.zones)
    assert {f["properties"]["kind"] for f in zones["features"]} == {"landslide_warning", "flood_inundation"}
    assert len(json.dumps(zones)) < 3_000_000
