"""One batch through the pipeline without Kafka: dead letters, enrichment, fan-out by sharing level."""

from __future__ import annotations

import pytest

from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform.avro import ALERT, DEAD_LETTER, ENRICHED, READING, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog

T0 = 1_693_807_200_000  # 2023-09-04T15:00+09:00


@pytest.fixture(scope="module")
def store():
    return default_store()


@pytest.fixture(scope="module")
def pipeline(kanagawa_with_river, store):
    pack = load_pack(kanagawa_with_river)
    return Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), store, clock=lambda: 1.0)


def reading(station_id="46106", observed_at=T0, measurements=None, location=None, **extra):
    record = {
        "station_id": station_id,
        "sensor_kind": "RAIN_GAUGE",
        "observed_at": observed_at,
        "location": location,
        "measurements": measurements
        if measurements is not None
        else [{"quantity": "precipitation_1h", "value": 55.0, "unit": "mm"}],
        "quality": "OK",
        "source": "test",
        "produced_at": None,
    }
    record.update(extra)
    return record


def messages(store, payloads):
    return [
        InMessage("bosai.kanagawa.readings.raw", 0, offset, b"k", payload, T0)
        for offset, payload in enumerate(payloads)
    ]


def test_every_kind_of_bad_input_is_dead_lettered_with_its_reason_and_good_ones_still_flow(pipeline, store):
    codec = AvroCodec(store, READING)
    good = codec.encode(reading())
    dead_letter_bytes = AvroCodec(store, DEAD_LETTER).encode(
        {
            "reason": "x",
            "error_detail": "y",
            "stage": "z",
            "source_topic": "t",
            "source_partition": 0,
            "source_offset": 0,
            "failed_at": 0,
        }
    )
    bad = {
        "undecodable": [b"\xde\xad\xbe\xef not avro", good[:-3]],
        "unknown_schema": [b"\xc3\x01" + b"\x11" * 8 + good[10:], dead_letter_bytes],
        "missing_field": [codec.encode(reading(station_id="")), codec.encode(reading(measurements=[]))],
        "impossible_value": [
            codec.encode(reading(measurements=[{"quantity": "precipitation_1h", "value": -3.0, "unit": "mm"}])),
            codec.encode(reading(measurements=[{"quantity": "precipitation_1h", "value": 5.0, "unit": "m"}])),
        ],
        "outside_japan": [codec.encode(reading(location={"lat": 48.85, "lon": 2.35, "alt_m": None}))],
        "unknown_station": [codec.encode(reading(station_id="99999"))],
    }
    payloads = [good] + [p for group in bad.values() for p in group] + [codec.encode(reading("46211"))]

    result = pipeline.process(messages(store, payloads), lambda sid: StationState())

    assert result.dead_letters == {reason: len(group) for reason, group in bad.items()}
    assert result.readings_valid == 2
    dead = [r for r in result.records if r.topic == "bosai.kanagawa.deadletter"]
    decoded = [AvroCodec(store, DEAD_LETTER).decode(r.value) for r in dead]
    assert [d["source_offset"] for d in decoded] == list(range(1, len(payloads) - 1))
    assert [d["original_value"] for d in decoded] == payloads[1:-1]
    assert all(d["error_detail"] and d["stage"] == "ingest" for d in decoded)
    enriched = [
        AvroCodec(store, ENRICHED).decode(r.value)
        for r in result.records
        if r.topic == "bosai.kanagawa.readings.enriched"
    ]
    assert [(e["reading"]["station_id"], e["municipality_code"], e["city_code"]) for e in enriched] == [
        ("46106", "14104", "14100"),
        ("46211", "14210", None),
    ]


def test_a_public_alert_of_a_ward_goes_to_the_prefecture_the_ward_and_the_public_topic(pipeline, store):
    payload = AvroCodec(store, READING).encode(reading("46106"))

    result = pipeline.process(messages(store, [payload]), lambda sid: StationState())

    out = [a for a in result.alerts if a.change.rule.id == "rain_1h"][0]
    assert out.record["municipality_codes"] == ["14100", "14104"]
    assert out.record["area"]["description"] == "横浜市、中区"
    assert set(out.topics) == {"bosai.kanagawa.alerts", "bosai.kanagawa.alerts.14104", "bosai.kanagawa.alerts.public"}
    alert_records = [r for r in result.records if r.topic in out.topics]
    assert {r.key for r in alert_records} == {b"kanagawa-rain_1h-46106-20230904T1500JST"}
    assert AvroCodec(store, ALERT).decode(alert_records[0].value)["severity"] == "Severe"


def test_a_river_alert_reaches_downstream_and_hazard_zone_municipalities(pipeline, store):
    level = [{"quantity": "water_level", "value": 2.7, "unit": "m"}]
    payload = AvroCodec(store, READING).encode(reading("R-14-001", measurements=level, sensor_kind="RIVER_LEVEL_GAUGE"))

    result = pipeline.process(messages(store, [payload]), lambda sid: StationState())

    out = [a for a in result.alerts if a.change.rule.id == "river_stage"][0]
    assert out.record["level"] == "level_3" and out.record["warning_level"] == 3
    codes = set(out.record["municipality_codes"])
    assert {"14153", "14150", "14205", "14207"} <= codes  # own ward + city, downstream Fujisawa and Chigasaki
    assert {f"bosai.kanagawa.alerts.{c}" for c in ("14153", "14205", "14207")} <= set(out.topics)
    assert "bosai.kanagawa.alerts.14150" not in out.topics  # cities read their wards' topics
    assert out.record["area"]["hazard_zone_ids"] == ["lsld-153-H26-00027-1-1"]


def test_an_internal_alert_stays_on_the_prefecture_topic(pipeline, store):
    codec = AvroCodec(store, READING)
    first = codec.encode(reading("R-14-001", measurements=[{"quantity": "water_level", "value": 0.5, "unit": "m"}]))
    rise = codec.encode(
        reading(
            "R-14-001",
            observed_at=T0 + 1_800_000,
            measurements=[{"quantity": "water_level", "value": 1.2, "unit": "m"}],
        )
    )

    result = pipeline.process(messages(store, [first, rise]), lambda sid: StationState())

    out = [a for a in result.alerts if a.change.rule.id == "river_rise"][0]
    assert out.record["sharing_level"] == "INTERNAL"
    assert out.topics == ("bosai.kanagawa.alerts",)


def test_a_missing_value_is_forwarded_enriched_and_counted_but_raises_nothing(pipeline, store):
    gap = AvroCodec(store, READING).encode(
        reading(
            "46211", measurements=[{"quantity": "precipitation_1h", "value": None, "unit": "mm"}], quality="MISSING"
        )
    )

    result = pipeline.process(messages(store, [gap]), lambda sid: StationState())

    assert result.readings_missing == 1 and result.alerts == [] and result.dead_letters == {}
    assert [r.topic for r in result.records] == ["bosai.kanagawa.readings.enriched"]


def test_state_carries_between_batches_and_redelivery_emits_nothing_new(pipeline, store):
    codec = AvroCodec(store, READING)
    batch = messages(
        store,
        [
            codec.encode(
                reading(
                    "46161",
                    observed_at=T0 + h * 3_600_000,
                    measurements=[{"quantity": "precipitation_1h", "value": v, "unit": "mm"}],
                )
            )
            for h, v in enumerate([25.0, 60.0, 1.0])
        ],
    )
    states: dict[str, StationState] = {}

    first = pipeline.process(batch[:2], lambda sid: states.get(sid, StationState()))
    states.update(first.states)
    second = pipeline.process(batch, lambda sid: states.get(sid, StationState()))  # redelivers the first two

    assert [a.record["msg_type"] for a in first.alerts if a.record["rule"] == "rain_1h"] == ["ALERT", "UPDATE"]
    assert [a.record["msg_type"] for a in second.alerts if a.record["rule"] == "rain_1h"] == ["CANCEL"]
    assert second.readings_stale == 2
