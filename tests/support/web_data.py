"""What the residents' map tests feed it: the real heavy rain through the hub's pipeline, and hand-made
alert records (an internal one, a JMA 土砂災害警戒情報 as the official-sources issue will relay it)."""

from __future__ import annotations

import copy
from pathlib import Path

from streams.kernel.messages import InMessage
from streams.kernel.region import RegionPack
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.platform.avro import ENRICHED, READING, AvroCodec, default_store

CSV = Path("data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")


def heavy_rain(project_root: Path, pack: RegionPack, topics: HubTopics, since: str, until: str):
    """The pipeline's output for the pack's stations between two JST times: (records to write, enriched
    readings, alert events), exactly as a worker would write them."""
    store = default_store()
    readings = [
        r
        for r in read_amedas(
            project_root / CSV, since_ms=parse_jst(since, option="since"), until_ms=parse_jst(until, option="until")
        )
        if r["station_id"] in pack.stations
    ]
    payloads = AvroCodec(store, READING).encode_many(readings)
    states: dict[str, StationState] = {}
    result = Pipeline(pack, topics, store).process(
        [
            InMessage(topics.raw, 0, i, r["station_id"].encode(), p)
            for i, (r, p) in enumerate(zip(readings, payloads, strict=True))
        ],
        lambda station_id: states.get(station_id, StationState()),
    )
    enriched_codec = AvroCodec(store, ENRICHED)
    enriched = [enriched_codec.decode(r.value) for r in result.records if r.topic == topics.enriched]
    return result.records, enriched, [a.record for a in result.alerts]


BASE_ALERT = {
    "alert_id": "tochigi-rain_1h-41277-20230904T1300JST",
    "sequence": 0,
    "msg_type": "ALERT",
    "transition": "RAISED",
    "references": None,
    "references_observed_at": None,
    "region": "tochigi",
    "prefecture_code": "09",
    "rule": "rain_1h",
    "level": "very_heavy",
    "level_rank": 3,
    "warning_level": None,
    "event": "非常に激しい雨",
    "headline": "宇都宮（宇都宮市）非常に激しい雨: 52.5 mm",
    "severity": "Severe",
    "urgency": "Immediate",
    "certainty": "Observed",
    "sharing_level": "PUBLIC",
    "station_id": "41277",
    "observed_at": parse_jst("2023-09-04T13:00", option="t"),
    "value": 52.5,
    "unit": "mm",
    "threshold": 50.0,
    "area": {
        "description": "宇都宮市",
        "point": {"lat": 36.54833, "lon": 139.86833, "alt_m": 119.0},
        "hazard_zone_ids": [],
    },
    "municipality_codes": ["09201"],
    "source_readings": [],
    "source": "hub",
    "status": "Actual",
    "expires": None,
    "official": None,
}


def alert(**changes) -> dict:
    record = copy.deepcopy(BASE_ALERT)
    record.update(changes)
    return record


def cancel_of(record: dict, observed_at: int) -> dict:
    return dict(
        record,
        sequence=record["sequence"] + 1,
        msg_type="CANCEL",
        transition="CLEARED",
        references=f"{record['alert_id']}/{record['sequence']}",
        references_observed_at=record["observed_at"],
        level_rank=0,
        severity="Minor",
        urgency="Past",
        observed_at=observed_at,
    )


def internal_alert(**changes) -> dict:
    """An alert only the prefecture may see (a rapid river rise, sharing level internal)."""
    fields = dict(
        alert_id="tochigi-river_rise-41331-20230904T1300JST",
        rule="river_rise",
        level="rapid_rise",
        level_rank=1,
        event="急激な水位上昇",
        headline="内部限り（真岡市）急激な水位上昇: 0.8 m",
        severity="Moderate",
        sharing_level="INTERNAL",
        station_id="41331",
        municipality_codes=["09209"],
        area={"description": "真岡市", "point": None, "hazard_zone_ids": []},
    )
    return alert(**{**fields, **changes})


def jma_landslide_alert(**changes) -> dict:
    """A 土砂災害警戒情報 as an Alert record with source jma (the shape the official-sources issue relays)."""
    observed_at = parse_jst("2023-09-04T13:20", option="t")
    fields = dict(
        alert_id="tochigi-jma-landslide-0920100-20230904T1320JST",
        rule="jma_landslide",
        level="issued",
        level_rank=1,
        warning_level=4,
        event="土砂災害警戒情報",
        headline="栃木県土砂災害警戒情報 第1号",
        severity="Severe",
        station_id="",
        observed_at=observed_at,
        value=None,
        unit="",
        threshold=None,
        municipality_codes=["09205", "09206"],
        area={"description": "鹿沼市、日光市", "point": None, "hazard_zone_ids": []},
        source="jma",
        official={
            "info_kind": "土砂災害警戒情報",
            "control_title": "土砂災害警戒情報",
            "head_title": "栃木県土砂災害警戒情報",
            "publishing_office": "宇都宮地方気象台 栃木県",
            "report_datetime": observed_at,
            "event_id": "1",
            "serial": "1",
            "info_type": "発表",
            "headline": "＜概況＞降り続く大雨のため、警戒対象地域では土砂災害の危険度が非常に高まっています。",
            "area_codes": ["0920500", "0920600"],
            "credit": "出典：気象庁",
        },
    )
    return alert(**{**fields, **changes})
