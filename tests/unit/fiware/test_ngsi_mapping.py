"""NGSI-v2 mapping without a broker or an Orion: alerts and readings out, notifications and JSON readings in."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from streams.fiware import ngsi
from streams.fiware.ngsi_in import NotificationError, default_mapping, entity_record, parse_notification
from streams.fiware.ngsi_schemas import schema_errors
from streams.gateway.intake import TokenBucket, reading_record, readings_of
from streams.kernel.model import SensorKind, Station
from streams.observed.readings import InvalidReading, validate
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.tokens import secret_hash, token_matches

RIVER = Station("R-09-213-01", SensorKind.RIVER_LEVEL_GAUGE, "那珂川(黒磯)", "Naka (Kuroiso)", 36.97, 140.05)
RAIN = Station("41091", SensorKind.RAIN_GAUGE, "黒磯", "Kuroiso", 36.98, 140.02)
PLACE = ngsi.Place("tochigi", "栃木県", "那須塩原市")


def river_alert(**changes) -> dict:
    alert = {
        "alert_id": "tochigi-river_stage-R-09-213-01-20230904T1300JST",
        "sequence": 0,
        "msg_type": "ALERT",
        "transition": "RAISED",
        "region": "tochigi",
        "rule": "river_stage",
        "level": "level_4",
        "warning_level": 4,
        "event": "氾濫危険水位到達",
        "headline": "那珂川(黒磯)（那須塩原市）氾濫危険水位到達: 3.2 m",
        "severity": "Extreme",
        "sharing_level": "PUBLIC",
        "status": "Actual",
        "station_id": RIVER.station_id,
        "observed_at": 1_693_800_000_000,
        "value": 3.2,
        "unit": "m",
        "threshold": 3.1,
        "area": {
            "description": "那須塩原市",
            "point": {"lat": 36.97, "lon": 140.05, "alt_m": None},
            "hazard_zone_ids": [],
        },
        "municipality_codes": ["09213"],
        "source": "hub",
        "expires": None,
        "official": None,
    }
    return alert | changes


def test_a_raised_river_alert_is_an_alert_entity_that_follows_the_model_and_points_at_its_gauge():
    entity = ngsi.alert_entity(river_alert(), source_entity_id=ngsi.observation_entity_id("tochigi", RIVER))
    values = ngsi.key_values(entity)
    assert schema_errors(entity) == []
    assert values["id"] == "urn:ngsi-ld:Alert:bosai:tochigi-river_stage-R-09-213-01-20230904T1300JST"
    assert (values["category"], values["subCategory"], values["severity"]) == (
        "naturalDisaster",
        "floodRisk",
        "critical",
    )
    assert values["validFrom"] == values["dateIssued"] == "2023-09-04T04:00:00.000Z"
    assert "validTo" not in values
    assert values["alertSource"] == "urn:ngsi-ld:WaterObserved:bosai:tochigi:R-09-213-01"
    assert values["location"] == {"type": "Point", "coordinates": [140.05, 36.97]}
    assert values["data"]["warningLevel"] == 4 and values["data"]["msgType"] == "Alert"


def test_a_cancel_marks_the_alert_cleared_with_valid_to_at_the_cancel_time_and_informational_severity():
    cleared_at = 1_693_810_800_000
    cancel = river_alert(msg_type="CANCEL", transition="CLEARED", sequence=2, observed_at=cleared_at, severity="Minor")
    values = ngsi.key_values(ngsi.alert_entity(cancel))
    assert schema_errors(ngsi.alert_entity(cancel)) == []
    assert values["validTo"] == ngsi.iso_utc(cleared_at) == "2023-09-04T07:00:00.000Z"
    assert values["severity"] == "informational"
    assert values["data"]["msgType"] == "Cancel" and "validFrom" not in values


def test_an_alert_that_expires_by_itself_carries_valid_to_at_its_expiry():
    values = ngsi.key_values(
        ngsi.alert_entity(river_alert(rule="jma_record_rain", unit="mm", expires=1_693_803_600_000))
    )
    assert values["validTo"] == "2023-09-04T05:00:00.000Z"
    assert (values["category"], values["subCategory"]) == ("weather", "rainfall")


def test_a_landslide_alert_uses_natural_disaster_without_a_sub_category_and_says_landslide_in_data():
    official = {
        "info_kind": "土砂災害警戒情報",
        "control_title": "土砂災害警戒情報",
        "head_title": "神奈川県レベル４土砂災害危険警報",
        "publishing_office": "横浜地方気象台 神奈川県",
        "report_datetime": 1,
        "event_id": "1",
        "serial": "1",
        "info_type": "発表",
        "headline": "＜概況＞（試験）",
    }
    alert = river_alert(
        rule="jma_landslide", unit="", source="jma", official=official, area={**river_alert()["area"], "point": None}
    )
    entity = ngsi.alert_entity(alert)
    values = ngsi.key_values(entity)
    assert schema_errors(entity) == []
    assert values["category"] == "naturalDisaster" and "subCategory" not in values
    assert values["data"]["hazard"] == "landslide"
    assert values["data"]["official"]["credit"] == "出典：気象庁" and values["alertSource"] == "https://www.jma.go.jp/"


def test_forbidden_characters_become_full_width_everywhere_so_orion_accepts_the_entity():
    entity = ngsi.alert_entity(river_alert(headline="a<b>\"c'=d;(e)", event="x(y)"))
    assert not ngsi.has_forbidden(entity)
    assert entity["description"]["value"] == "a＜b＞＂c＇＝d；（e）"
    assert entity["name"]["value"] == "x（y）"


def test_entity_ids_are_ascii_that_orion_and_the_models_accept_even_from_odd_station_ids():
    odd = replace(RIVER, station_id="那珂/川 #1")
    entity_id = ngsi.observation_entity_id("tochigi", odd)
    assert ngsi.valid_entity_id(entity_id) and entity_id.isascii()
    assert ngsi.entity_id("Alert", "x" * 400) != ngsi.entity_id("Alert", "x" * 401)
    assert len(ngsi.entity_id("Alert", "x" * 400)) == 256
    assert not ngsi.valid_entity_id("a b") and not ngsi.valid_entity_id("a(b)") and not ngsi.valid_entity_id("a/b")


def reading(station: Station, measurements: list[dict], code: str = "09213") -> dict:
    return {
        "reading": {
            "station_id": station.station_id,
            "observed_at": 1_693_800_000_000,
            "location": None,
            "measurements": measurements,
            "source": "jma-amedas",
        },
        "municipality_code": code,
        "city_code": None,
    }


def test_a_river_level_below_the_gauge_zero_leaves_water_level_out_and_keeps_the_value_in_gauge_water_level():
    below = ngsi.observation_entity(
        reading(RIVER, [{"quantity": "water_level", "value": -0.35, "unit": "m"}]), RIVER, PLACE
    )
    above = ngsi.observation_entity(
        reading(RIVER, [{"quantity": "water_level", "value": 1.2, "unit": "m"}]), RIVER, PLACE
    )
    assert schema_errors(below) == [] and schema_errors(above) == []
    assert "waterLevel" not in below and below["gaugeWaterLevel"]["value"] == -0.35
    assert above["waterLevel"]["value"] == above["gaugeWaterLevel"]["value"] == 1.2
    assert above["waterLevel"]["metadata"]["unitCode"]["value"] == "MTR"


def test_a_rain_reading_is_a_weather_observed_with_the_hour_in_precipitation_and_credits_jma():
    entity = ngsi.observation_entity(
        reading(
            RAIN,
            [
                {"quantity": "precipitation_1h", "value": 31.5, "unit": "mm"},
                {"quantity": "precipitation_24h", "value": 120.0, "unit": "mm"},
            ],
        ),
        RAIN,
        PLACE,
    )
    values = ngsi.key_values(entity)
    assert schema_errors(entity) == []
    assert (values["type"], values["precipitation"], values["precipitation24h"]) == ("WeatherObserved", 31.5, 120.0)
    assert values["source"] == "出典：気象庁" and values["address"]["addressLocality"] == "那須塩原市"


def test_a_reading_without_its_main_value_is_not_sent():
    assert (
        ngsi.observation_entity(reading(RIVER, [{"quantity": "water_level", "value": None, "unit": "m"}]), RIVER, PLACE)
        is None
    )


@pytest.fixture(scope="module")
def policy(project_root, tmp_path_factory):
    packs = [load_pack(project_root / "regions" / n) for n in ("tochigi", "kanagawa")]
    path = tmp_path_factory.mktemp("access") / "access.yaml"
    path.write_text(render(generate(packs, load_catalog(default_catalog_path()))), encoding="utf-8")
    return load_access(path)


def test_an_orion_sees_only_what_its_municipalities_may_see(policy):
    nasushiobara = (policy.principal("muni-09213"),)
    prefecture = (policy.principal("pref-tochigi"),)
    assert ngsi.orion_may_see_alert(nasushiobara, river_alert())
    assert not ngsi.orion_may_see_alert(nasushiobara, river_alert(municipality_codes=["09201"]))
    assert not ngsi.orion_may_see_alert(nasushiobara, river_alert(sharing_level="INTERNAL"))
    assert not ngsi.orion_may_see_alert(nasushiobara, river_alert(status="Exercise"))
    assert ngsi.orion_may_see_alert(prefecture, river_alert(sharing_level="INTERNAL", status="Exercise"))
    assert ngsi.alert_entity(river_alert(status="Exercise"))["description"]["value"].startswith("【訓練】")
    codes = frozenset({"09213"})
    assert ngsi.orion_may_see_reading("own_stations", codes, reading(RIVER, [], "09213"))
    assert not ngsi.orion_may_see_reading("own_stations", codes, reading(RIVER, [], "09201"))
    assert not ngsi.orion_may_see_reading("none", codes, reading(RIVER, [], "09213"))


# -- in ------------------------------------------------------------------------------------------------

MAPPINGS = {
    ("ns", "urn:ngsi-ld:WaterObserved:ns-naka-01"): default_mapping("ns", "urn:ngsi-ld:WaterObserved:ns-naka-01", RIVER)
}
STATIONS = {RIVER.station_id: RIVER, RAIN.station_id: RAIN}


def notified(entity: dict, fmt: str | None = "normalized") -> dict:
    return entity_record(entity, orion="ns", fmt_header=fmt, mappings=MAPPINGS, stations=STATIONS, produced_at=1)


def test_a_normalized_and_a_key_values_notification_give_the_same_reading():
    entity_id = "urn:ngsi-ld:WaterObserved:ns-naka-01"
    normalized = {
        "id": entity_id,
        "type": "WaterObserved",
        "waterLevel": {"type": "Number", "value": 2.7, "metadata": {}},
        "dateObserved": {"type": "DateTime", "value": "2023-09-04T04:00:00.000Z", "metadata": {}},
    }
    key_values = {
        "id": entity_id,
        "type": "WaterObserved",
        "waterLevel": 2.7,
        "dateObserved": "2023-09-04T13:00:00+09:00",
    }
    a, b = notified(normalized), notified(key_values, "keyValues")
    assert a == b
    assert a["measurements"] == [{"quantity": "water_level", "value": 2.7, "unit": "m"}]
    assert (
        a["observed_at"] == 1_693_800_000_000 and a["sensor_kind"] == "RIVER_LEVEL_GAUGE" and a["source"] == "orion:ns"
    )
    assert validate(a, STATIONS).values == {"water_level": 2.7}
    assert (
        notified(
            {
                **normalized,
                "waterLevel": {
                    "type": "Number",
                    "value": 270,
                    "metadata": {"unitCode": {"type": "Text", "value": "CMT"}},
                },
            }
        )["measurements"][0]["value"]
        == 2.7
    )


@pytest.mark.parametrize(
    ("entity", "reason"),
    [
        (
            {
                "id": "urn:ngsi-ld:WaterObserved:other",
                "type": "WaterObserved",
                "waterLevel": 1.0,
                "dateObserved": "2023-09-04T04:00:00Z",
            },
            "unknown_station",
        ),
        (
            {
                "id": "urn:ngsi-ld:WaterObserved:ns-naka-01",
                "type": "WeatherObserved",
                "waterLevel": 1.0,
                "dateObserved": "2023-09-04T04:00:00Z",
            },
            "unknown_schema",
        ),
        (
            {
                "id": "urn:ngsi-ld:WaterObserved:ns-naka-01",
                "type": "WaterObserved",
                "waterLevel": "high",
                "dateObserved": "2023-09-04T04:00:00Z",
            },
            "impossible_value",
        ),
        (
            {
                "id": "urn:ngsi-ld:WaterObserved:ns-naka-01",
                "type": "WaterObserved",
                "waterLevel": 1.0,
                "dateObserved": "2023-09-04T04:00:00",
            },
            "impossible_value",
        ),
        ({"id": "urn:ngsi-ld:WaterObserved:ns-naka-01", "type": "WaterObserved", "waterLevel": 1.0}, "missing_field"),
        (
            {
                "id": "urn:ngsi-ld:WaterObserved:ns-naka-01",
                "type": "WaterObserved",
                "dateObserved": "2023-09-04T04:00:00Z",
            },
            "missing_field",
        ),
        ({"type": "WaterObserved"}, "missing_field"),
    ],
)
def test_unknown_entities_wrong_types_and_impossible_values_are_refused_with_the_hubs_reasons(entity, reason):
    with pytest.raises(InvalidReading) as refused:
        notified(entity, "keyValues")
    assert refused.value.reason == reason


def test_an_impossible_level_passes_the_mapping_and_is_caught_by_the_usual_validation():
    record = notified(
        {
            "id": "urn:ngsi-ld:WaterObserved:ns-naka-01",
            "type": "WaterObserved",
            "waterLevel": 500,
            "dateObserved": "2023-09-04T04:00:00Z",
        },
        "keyValues",
    )
    with pytest.raises(InvalidReading, match="plausible range") as refused:
        validate(record, STATIONS)
    assert refused.value.reason == "impossible_value"


def test_a_body_that_is_not_a_notification_is_refused_whole():
    for body in (b"not json", b"[]", b'{"subscriptionId": "x"}'):
        with pytest.raises(NotificationError):
            parse_notification(body)
    assert parse_notification(json.dumps({"subscriptionId": "x", "data": [{"id": "a"}]}).encode()) == [{"id": "a"}]


def test_gateway_json_readings_become_records_and_bad_ones_say_why():
    good = {
        "station_id": "R-09-213-01",
        "observed_at": "2023-09-04T13:00:00+09:00",
        "measurements": [{"quantity": "water_level", "value": 1.5, "unit": "m"}],
    }
    record = reading_record(good, sensor_kinds={"R-09-213-01": "RIVER_LEVEL_GAUGE"}, source="gateway:ns", produced_at=5)
    assert (record["observed_at"], record["quality"], record["sensor_kind"]) == (
        1_693_800_000_000,
        "OK",
        "RIVER_LEVEL_GAUGE",
    )
    assert readings_of({"readings": [good, good]}) == [good, good] and readings_of(good) == [good]
    for bad, reason in [
        ({**good, "observed_at": "2023-09-04T13:00:00"}, "impossible_value"),
        ({**good, "measurements": []}, "missing_field"),
        ({**good, "extra": 1}, "impossible_value"),
        ({**good, "measurements": [{"quantity": "water_level", "value": "x", "unit": "m"}]}, "impossible_value"),
        ("just text", "undecodable"),
    ]:
        with pytest.raises(InvalidReading) as refused:
            reading_record(bad, sensor_kinds={}, source="s", produced_at=0)
        assert refused.value.reason == reason


def test_a_token_matches_only_its_own_hash_and_the_bucket_bounds_the_rate():
    stored = {"abc123": {"subject": "owner:ns", "sha256": secret_hash("s" * 43)}}
    assert token_matches("bst.abc123." + "s" * 43, stored) == "owner:ns"
    assert token_matches("bst.abc123." + "t" * 43, stored) is None
    assert token_matches("bst.zzz." + "s" * 43, stored) is None and token_matches("garbage", stored) is None
    bucket = TokenBucket(rate_per_s=10, burst=20)
    assert bucket.take(20, now_s=0.0) == 0
    assert bucket.take(5, now_s=0.0) == pytest.approx(0.5)
    assert bucket.take(5, now_s=0.5) == 0
    assert bucket.take(21, now_s=100.0) == float("inf")
