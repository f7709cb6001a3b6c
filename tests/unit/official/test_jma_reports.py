"""JMA's reports read safely and as values; JMA's area codes as a pack's municipalities."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.official.jma_xml import JmaXmlError, parse_feed, parse_report, parse_safely
from streams.official.report import FLOOD, LANDSLIDE, RECORD_RAIN, ReportError, prefectures_of, read_report
from streams.packs.jma_areas import OTHER, OWN, UNKNOWN, areas_of
from streams.packs.region_init import init_pack
from streams.packs.region_pack import load_pack
from tests.support.jma_samples import (
    FUKUOKA,
    FUKUOKA_N03,
    KANAGAWA,
    ROKKAKU,
    SAGA_N03,
    SAMPLES,
    SHIOMIBASHI,
    as_exercise,
    edited,
    sample,
)


def _report(xml: bytes):
    return read_report(parse_report(xml))


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.xml")), ids=lambda p: p.name[:8])
def test_every_sample_validates_against_jma_schema_and_reads_as_a_handled_kind(path):
    report = _report(sample(path))

    assert report.info_kind in (LANDSLIDE, FLOOD, RECORD_RAIN)
    assert report.key.startswith(f"{report.info_kind}|{report.event_id}")


def test_the_2026_renamed_head_title_does_not_change_the_kind_or_the_key():
    report = _report(sample(KANAGAWA[0]))

    assert report.head_title == "神奈川県レベル４土砂災害危険警報"
    assert (report.control_title, report.info_kind) == ("土砂災害警戒情報", "土砂災害警戒情報")
    assert report.key == "土砂災害警戒情報|神奈川県土砂災害警戒情報"
    assert report.order == (1730541000000, 1)  # 2024-11-02T18:50+09:00, Serial 1


@pytest.mark.parametrize(
    "document, reason",
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Report>&b;</Report>',
            "not_xml",
        ),
        (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Report>&x;</Report>', "not_xml"),
        (b"<a>" * 60 + b"</a>" * 60, "too_deep"),
        (b"\x00\x01 not xml", "not_xml"),
        (b"", "not_xml"),
        (b"<Report>" + b" " * (3 * 1024 * 1024) + b"</Report>", "too_large"),
    ],
    ids=["entity-expansion", "external-entity", "deep", "garbage", "empty", "large"],
)
def test_hostile_or_broken_documents_are_refused_with_a_reason_before_anything_reads_them(document, reason):
    with pytest.raises(JmaXmlError) as refused:
        parse_report(document)

    assert refused.value.reason == reason


def test_a_truncated_report_is_not_xml_and_a_report_off_the_schema_is_schema_invalid():
    whole = sample(KANAGAWA[0])

    with pytest.raises(JmaXmlError) as truncated:
        parse_report(whole[: len(whole) // 2])
    with pytest.raises(JmaXmlError) as off_schema:
        parse_report(edited(whole, ("<Serial>1</Serial>", "<Serial>1</Serial><Extra/>")))

    assert truncated.value.reason == "not_xml"
    assert off_schema.value.reason == "schema_invalid" and "Extra" in off_schema.value.detail


def test_a_report_kind_the_hub_does_not_handle_is_refused_by_control_title_and_info_kind():
    other_kind = edited(
        sample(KANAGAWA[0]),
        ("<Title>土砂災害警戒情報</Title>", "<Title>気象警報・注意報</Title>"),
        ("<InfoKind>土砂災害警戒情報</InfoKind>", "<InfoKind>気象警報・注意報</InfoKind>"),
    )

    with pytest.raises(ReportError) as refused:
        _report(other_kind)

    assert refused.value.reason == "unhandled_kind"


def test_an_exercise_has_its_own_key_and_status():
    report = _report(as_exercise(sample(KANAGAWA[0])))

    assert report.status == "Exercise"
    assert report.key == "土砂災害警戒情報|神奈川県土砂災害警戒情報|訓練"


def test_the_flood_forecast_gives_its_code_cities_and_only_the_observed_level():
    report = _report(sample(ROKKAKU))

    flood = report.flood
    assert (flood.kind_code, flood.kind_name, flood.area_code) == ("30", "氾濫警戒情報", "890904000100")
    assert [c.code for c in flood.cities] == ["4120600", "4120900", "4142300", "4142400", "4142500"]
    # 現況 15:00 only: the forecast hours (3.29 m at 15:50 …) never become observations
    assert [(w.station_code, w.observed_at, w.value_m) for w in flood.levels] == [(SHIOMIBASHI, 1628834400000, 2.53)]
    assert "潮見橋水位観測所" in flood.main_text and prefectures_of(report) == {"41"}


def test_missing_and_uncomputed_levels_never_become_observations():
    report = _report(sample(SAMPLES / "16_01_01_220728_VXKOii.xml"))

    # three gauges at 現況: two 欠測 (empty), one 上昇 at 46.70 m
    assert [w.value_m for w in report.flood.levels] == [46.7]


def test_jma_feed_entries_are_read_oldest_first_with_their_links():
    feed = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" lang="ja"><title>high</title><updated>2024-11-02T11:51:00+09:00</updated>
<id>urn:x</id>
<entry><title>土砂災害警戒情報</title><id>https://x/b.xml</id><updated>2024-11-02T11:50:44Z</updated>
<author><name>横浜地方気象台</name></author><link type="application/xml" href="https://x/b.xml"/></entry>
<entry><title>気象警報・注意報</title><id>https://x/a.xml</id><updated>2024-11-02T09:50:16Z</updated>
<author><name>横浜地方気象台</name></author><link type="application/xml" href="https://x/a.xml"/></entry>
</feed>""".encode()

    updated, entries = parse_feed(feed)

    assert [(e.title, e.url) for e in entries] == [
        ("気象警報・注意報", "https://x/a.xml"),
        ("土砂災害警戒情報", "https://x/b.xml"),
    ]
    assert updated is not None and entries[1].author == "横浜地方気象台"


def test_a_feed_that_is_not_atom_is_refused():
    with pytest.raises(JmaXmlError):
        parse_feed(b"<html><body>maintenance</body></html>")
    with pytest.raises(JmaXmlError):
        parse_safely(b"<feed")


# -- areas ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kanagawa(project_root):
    return load_pack(project_root / "regions" / "kanagawa")


@pytest.fixture(scope="module")
def fukuoka(tmp_path_factory):
    return init_pack("fukuoka", FUKUOKA_N03, None, tmp_path_factory.mktemp("packs") / "fukuoka")


@pytest.fixture(scope="module")
def saga(tmp_path_factory):
    return init_pack("saga", SAGA_N03, None, tmp_path_factory.mktemp("packs") / "saga")


def test_a_municipality_code_is_its_jis_code_and_another_prefecture_is_skipped(kanagawa):
    areas = areas_of(kanagawa)

    assert areas.municipal("1420600").municipality_codes == ("14206",)
    assert areas.municipal("4020400").kind == OTHER
    assert areas.municipal("1499900").kind == UNKNOWN


def test_a_designated_city_named_whole_is_the_city_and_every_ward(fukuoka, kanagawa):
    kitakyushu = areas_of(fukuoka).municipal("4010000")
    kawasaki = areas_of(kanagawa).municipal("1413000")

    assert kitakyushu.kind == OWN
    assert kitakyushu.municipality_codes == ("40100", "40101", "40103", "40105", "40106", "40107", "40108", "40109")
    assert kawasaki.municipality_codes[0] == "14130" and len(kawasaki.municipality_codes) == 8


def test_a_split_city_is_the_wards_of_its_part_from_the_pack_table(kanagawa):
    north = areas_of(kanagawa).municipal("1410011").municipality_codes
    south = areas_of(kanagawa).municipal("1410012").municipality_codes
    west = areas_of(kanagawa).municipal("1415011").municipality_codes

    assert "14100" in north and "14100" in south
    assert set(north) & set(south) == {"14100"}
    assert len(set(north) | set(south)) == 19  # the city and its 18 wards
    assert west == ("14150", "14151")  # 相模原市西部: 緑区


def test_without_its_table_a_split_city_part_is_unknown_not_guessed(kanagawa):
    bare = replace(kanagawa, jma_area_rows=())

    assert areas_of(bare).municipal("1410011").kind == UNKNOWN


def test_region_init_carries_the_renumbered_nakagawa_into_a_fukuoka_pack(fukuoka):
    assert areas_of(fukuoka).municipal("4030500").municipality_codes == ("40231",)
    assert fukuoka.stations == {}


def test_a_forecast_area_of_the_whole_prefecture_is_every_municipality(saga):
    whole = areas_of(saga).forecast("410000")

    assert whole.kind == OWN and len(whole.municipality_codes) == 20
    assert areas_of(saga).forecast("270000").kind == OTHER


def test_a_part_of_the_prefecture_is_the_municipalities_jma_hierarchy_places_under_it(saga):
    north = areas_of(saga).forecast("410010")  # 一次細分区域 北部 (region init: jma/forecast_area_hierarchy.csv)
    south = areas_of(saga).forecast("410020")

    assert north.kind == OWN and south.kind == OWN
    assert set(north.municipality_codes) | set(south.municipality_codes) == set(whole_of(saga))
    assert not set(north.municipality_codes) & set(south.municipality_codes)
    assert areas_of(saga).forecast("410099").kind == UNKNOWN  # an area of the prefecture JMA's hierarchy lacks


def whole_of(pack):
    return areas_of(pack).forecast(f"{pack.prefecture_code}0000").municipality_codes


def test_the_fukuoka_report_names_only_areas_its_pack_resolves(fukuoka):
    report = _report(sample(FUKUOKA))

    resolved = {a.code: areas_of(fukuoka).municipal(a.code).kind for a in report.areas}

    assert set(resolved.values()) == {OWN}
    assert report.serial == "5"
