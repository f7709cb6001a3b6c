"""津波 (VTSE41 警報・注意報・予報, VTSE51 津波情報, VTSE52 沖合の津波観測) read as values, compared with the tests' own
reading of each sample."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.official.jma_xml import parse_report
from streams.official.tsunami import TsunamiError, read_tsunami
from tests.support.all_hazards import children, local, plain, sample_id, samples, validated, xml
from tests.support.jma_samples import edited

TSUNAMI = samples("VTSE")
# the tests' own table of JMA's kind codes: code -> the warning an area is under ("" for none)
UNDER = {"52": "大津波警報", "53": "大津波警報", "51": "津波警報", "62": "津波注意報"}


def ms(text: str) -> int | None:
    return int(datetime.fromisoformat(text).timestamp() * 1000) if text else None


def tsunami_of(path):
    body = next(e for e in plain(path) if e.tag.endswith("Body"))
    found = children(body, "Tsunami")
    return found[0] if found else None


def height(parent):
    element = parent.find("{*}TsunamiHeight") if parent is not None else None
    if element is None:
        return None
    return (
        None if element.text == "NaN" else float(element.text),
        element.get("description"),
        element.get("condition", ""),
    )


@pytest.mark.parametrize("path", TSUNAMI, ids=sample_id)
def test_every_forecast_area_is_read_as_written(path):
    report = read_tsunami(validated(path))
    items = children(tsunami_of(path), "Forecast", "Item")
    theirs = [
        (
            local(i, "Area", "Code"),
            local(i, "Area", "Name"),
            local(i, "Category", "Kind", "Code"),
            local(i, "Category", "Kind", "Name"),
            local(i, "Category", "LastKind", "Code"),
            ms(local(i, "FirstHeight", "ArrivalTime")),
            local(i, "FirstHeight", "Condition"),
            height(i.find("{*}MaxHeight")),
        )
        for i in items
    ]
    ours = [
        (
            a.code,
            a.name,
            a.kind_code,
            a.kind_name,
            a.last_kind_code,
            a.first_arrival,
            a.first_condition,
            (a.max_height.value_m, a.max_height.description, a.max_height.condition) if a.max_height else None,
        )
        for a in report.forecast
    ]

    assert ours == theirs
    assert [a.warning for a in report.forecast] == [UNDER.get(t[2], "") for t in theirs]
    assert len(report.stations) == sum(len(children(i, "Station")) for i in items)


@pytest.mark.parametrize("path", TSUNAMI, ids=sample_id)
def test_every_observation_and_estimation_is_read_as_written(path):
    report = read_tsunami(validated(path))
    tsunami = tsunami_of(path)
    theirs = [
        (
            local(item, "Area", "Code"),
            local(s, "Code"),
            local(s, "Name"),
            local(s, "Sensor"),
            ms(local(s, "FirstHeight", "ArrivalTime")),
            local(s, "FirstHeight", "Initial"),
            height(s.find("{*}MaxHeight")),
            ms(local(s, "MaxHeight", "DateTime")),
            local(s, "MaxHeight", "Condition"),
        )
        for item in children(tsunami, "Observation", "Item")
        for s in children(item, "Station")
    ]
    ours = [
        (
            o.area_code,
            o.code,
            o.name,
            o.sensor,
            o.first_arrival,
            o.first_initial,
            (o.max_height.value_m, o.max_height.description, o.max_height.condition) if o.max_height else None,
            o.max_time,
            o.max_condition,
        )
        for o in report.observations
    ]

    assert ours == theirs
    assert [(e.code, e.first_condition) for e in report.estimations] == [
        (local(i, "Area", "Code"), local(i, "FirstHeight", "Condition"))
        for i in children(tsunami, "Estimation", "Item")
    ]


def test_the_kinds_exercises_and_withdrawals():
    reports = [read_tsunami(validated(p)) for p in TSUNAMI]

    assert sorted({r.vtse for r in reports}) == ["VTSE41", "VTSE51", "VTSE52"]
    assert sum(r.head.control_status == "訓練" for r in reports) == 17  # exercises: never real
    assert all(r.head.status == "Exercise" for r in reports if r.head.control_status == "訓練")
    withdrawn = [r for r in reports if r.head.info_type == "取消"]
    assert len(withdrawn) == 3 and all(not r.forecast and r.text for r in withdrawn)


def test_kanagawa_areas_of_the_2016_exercise_and_the_height_words():
    first = read_tsunami(validated(next(p for p in TSUNAMI if p.name.startswith("32-39_12_02"))))
    areas = {a.code: a for a in first.forecast}

    assert (areas["330"].name, areas["330"].kind_name, areas["330"].warning) == (
        "相模湾・三浦半島",
        "大津波警報：発表",
        "大津波警報",
    )
    assert (areas["330"].max_height.value_m, areas["330"].max_height.description) == (None, "巨大")
    assert (areas["312"].name, areas["312"].warning, areas["312"].max_height.description) == (
        "東京湾内湾",
        "津波警報",
        "高い",
    )
    assert first.earthquakes[0].magnitude.description == "Ｍ８を超える巨大地震"


def test_two_earthquakes_of_one_tsunami_share_the_event():
    report = read_tsunami(validated(next(p for p in TSUNAMI if p.name.startswith("38-39_02_03"))))

    assert report.head.event_ids == ("20151114055157", "20151114061750")
    assert len(report.earthquakes) == 2


@pytest.mark.parametrize(
    "edit, reason",
    [
        (("<Code>53</Code>", "<Code>54</Code>"), "unhandled_code"),
        (("<Title>津波警報・注意報・予報a</Title>", "<Title>津波警報・注意報・予報b</Title>"), "unhandled_kind"),
    ],
    ids=["kind-code", "title"],
)
def test_what_the_hub_cannot_read_is_a_tsunami_error_with_a_reason(edit, reason):
    """EDIT of a real sample (the 2016 exercise VTSE41) in memory; each edit still validates against the schema."""
    document = edited(xml(next(p for p in TSUNAMI if p.name.startswith("32-39_12_02"))), edit)

    with pytest.raises(TsunamiError) as refused:
        read_tsunami(parse_report(document))

    assert refused.value.reason == reason
