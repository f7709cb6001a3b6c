"""地震 (VXSE51 震度速報, VXSE52 震源に関する情報, VXSE53 震源・震度に関する情報) read as values, compared with the
tests' own reading of each sample."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from streams.official.jma_xml import parse_report
from streams.official.quake import INTENSITIES, QuakeError, parse_coordinate, read_quake
from tests.support.all_hazards import children, local, plain, sample_id, samples, validated, xml
from tests.support.jma_samples import edited

QUAKES = samples("VXSE")


def ms(text: str) -> int | None:
    return int(datetime.fromisoformat(text).timestamp() * 1000) if text else None


def body_of(path):
    return next(e for e in plain(path) if e.tag.endswith("Body"))


def their_position(coordinate: str):
    """The tests' reading of ISO 6709 (+DD.D+DDD.D-HHHHH/): signed numbers in order; height in metres, depth km."""
    numbers = [float(n) for n in re.findall(r"[+-][0-9.]+", coordinate)]
    if not numbers:
        return None, None, None
    depth = -numbers[2] / 1000 if len(numbers) > 2 else None
    return numbers[0], numbers[1], depth


@pytest.mark.parametrize("path", QUAKES, ids=sample_id)
def test_every_city_and_area_intensity_is_read_exactly_as_written(path):
    report = read_quake(validated(path))
    cities, areas = [], []
    for pref in children(body_of(path), "Intensity", "Observation", "Pref"):
        for area in children(pref, "Area"):
            areas.append((local(pref, "Code"), local(area, "Code"), local(area, "Name"), local(area, "MaxInt")))
            for city in children(area, "City"):
                cities.append(
                    (
                        local(area, "Code"),
                        local(city, "Code"),
                        local(city, "Name"),
                        local(city, "MaxInt"),
                        local(city, "Condition"),
                    )
                )

    assert [(a.pref_code, a.code, a.name, a.max_int) for a in report.areas] == areas
    assert [(c.area_code, c.code, c.name, c.max_int, c.condition) for c in report.cities] == cities
    assert all(c.max_int in INTENSITIES or (not c.max_int and c.condition) for c in report.cities)
    assert report.max_int == local(body_of(path), "Intensity", "Observation", "MaxInt")


@pytest.mark.parametrize("path", QUAKES, ids=sample_id)
def test_the_hypocentre_magnitude_origin_time_and_event_are_read_as_written(path):
    report = read_quake(validated(path))
    earthquake = children(body_of(path), "Earthquake")
    root = plain(path)

    assert report.head.event_id == local(root, "Head", "EventID")
    assert report.head.info_type == local(root, "Head", "InfoType")
    if not earthquake:
        assert report.earthquake is None
        return
    element = earthquake[0]
    coordinate = local(element, "Hypocenter", "Area", "Coordinate")
    magnitude = element.find("{*}Magnitude")
    hypocentre = report.earthquake.hypocentre
    assert (hypocentre.latitude, hypocentre.longitude, hypocentre.depth_km) == their_position(coordinate)
    assert (hypocentre.name, hypocentre.code, hypocentre.coordinate) == (
        local(element, "Hypocenter", "Area", "Name"), local(element, "Hypocenter", "Area", "Code"), coordinate,
    )  # fmt: skip
    value = report.earthquake.magnitude.value
    assert value is None if magnitude.text == "NaN" else value == float(magnitude.text)
    assert report.earthquake.magnitude.description == magnitude.get("description")
    assert report.earthquake.origin_time == ms(local(element, "OriginTime"))


def test_the_kinds_and_their_shapes():
    reports = {sample_id(p): read_quake(validated(p)) for p in QUAKES}
    by_kind: dict[str, list] = {}
    for report in reports.values():
        by_kind.setdefault(report.vxse, []).append(report)

    assert {k: len(v) for k, v in by_kind.items()} == {"VXSE51": 15, "VXSE52": 6, "VXSE53": 21}
    assert all(not r.cities and r.earthquake is None for r in by_kind["VXSE51"])  # 細分区域 only, no hypocentre
    assert all(not r.areas for r in by_kind["VXSE52"])  # hypocentre only
    distant = [k for k, r in reports.items() if r.distant]
    assert len(distant) == 9 and all(reports[k].head.head_title == "遠地地震に関する情報" for k in distant)


def test_a_hypocentre_of_unknown_depth_and_an_unknown_magnitude():
    chile = read_quake(validated(next(p for p in QUAKES if p.name.startswith("32-39_05_04"))))
    gifu = read_quake(validated(next(p for p in QUAKES if p.name.startswith("33_12_01"))))

    assert (chile.earthquake.hypocentre.latitude, chile.earthquake.hypocentre.longitude) == (-36.1, -72.6)
    assert chile.earthquake.hypocentre.depth_km is None  # 深さ不明: no height in the coordinate
    assert gifu.earthquake.magnitude.value is None and gifu.earthquake.magnitude.condition == "不明"
    assert gifu.earthquake.magnitude.description == "Ｍ８を超える巨大地震"


def test_a_city_whose_intensity_has_not_arrived_keeps_jma_condition():
    iwate = read_quake(validated(next(p for p in QUAKES if p.name.startswith("32-35_06_03"))))
    kanegasaki = next(c for c in iwate.cities if c.code == "0338100")

    assert (kanegasaki.max_int, kanegasaki.condition) == ("", "震度５弱以上未入電")
    assert next(c for c in iwate.cities if c.code == "0321500").max_int == "6+"


def test_a_withdrawal_carries_jma_words_only():
    withdrawn = [read_quake(validated(p)) for p in QUAKES if read_quake(validated(p)).head.info_type == "取消"]

    assert len(withdrawn) == 4
    assert all(r.text.startswith("先ほどの") and r.earthquake is None and not r.cities for r in withdrawn)


@pytest.mark.parametrize(
    "coordinate, position",
    [
        ("+39.0+140.9-10000/", (39.0, 140.9, 10.0)),
        ("-17.2+178.6-570000/", (-17.2, 178.6, 570.0)),
        ("-36.1-072.6/", (-36.1, -72.6, None)),
        ("+35.6+139.7+0/", (35.6, 139.7, 0.0)),
        ("", (None, None, None)),
    ],
)
def test_iso_6709_positions(coordinate, position):
    assert parse_coordinate(coordinate) == position


@pytest.mark.parametrize(
    "edit, reason",
    [
        (("<MaxInt>6+</MaxInt>", "<MaxInt>8</MaxInt>"), "unhandled_code"),
        (("+39.0+140.9-10000/", "39N 140E"), "missing_field"),
        (("<Title>震源・震度に関する情報</Title>", "<Title>震源・震度に関する情報（試行）</Title>"), "unhandled_kind"),
    ],
    ids=["intensity", "coordinate", "title"],
)
def test_what_the_hub_cannot_read_is_a_quake_error_with_a_reason(edit, reason):
    """EDIT of a real sample (岩手・宮城内陸地震, VXSE53) in memory; each edit still validates against the schema."""
    document = edited(xml(next(p for p in QUAKES if p.name.startswith("32-35_06_03"))), edit)

    with pytest.raises(QuakeError) as refused:
        read_quake(parse_report(document))

    assert refused.value.reason == reason
