"""竜巻注意情報 (VPHW50, VPHW51) read as values, compared with the tests' own reading of each sample."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.official.jma_xml import parse_report
from streams.official.tornado import TornadoError, read_tornado
from tests.support.all_hazards import children, local, plain, sample_id, samples, validated, xml
from tests.support.jma_samples import edited

TORNADO = samples("VPHW")


@pytest.mark.parametrize("path", TORNADO, ids=sample_id)
def test_every_area_of_every_level_its_validity_and_sighting_are_read_as_written(path):
    report = read_tornado(validated(path))
    root = plain(path)
    body = next(e for e in root if e.tag.endswith("Body"))
    theirs = [
        (
            w.get("type")[6:].strip("（）"),
            local(i, "Area", "Code"),
            local(i, "Area", "Name"),
            local(i, "Kind", "Status"),
        )
        for w in children(body, "Warning")
        for i in children(w, "Item")
    ]
    sightings = [
        (local(a, "Code"), local(a, "Name"))
        for information in children(root, "Head", "Headline", "Information")
        if information.get("type") == "竜巻注意情報（目撃情報あり）"
        for a in children(information, "Item", "Areas", "Area")
    ]

    assert [(a.level, a.code, a.name, a.status) for a in report.areas] == theirs
    assert report.valid_until == int(datetime.fromisoformat(local(root, "Head", "ValidDateTime")).timestamp() * 1000)
    assert report.sighting_areas == tuple(sightings)
    assert report.sighted == (bool(sightings) or local(root, "Head", "Headline", "Text").startswith("【目撃情報あり】"))
    assert {a.code for a in report.first_areas} == {
        c for lvl, c, _, s in theirs if lvl == "一次細分区域等" and s == "発表"
    }


def test_the_two_kinds_and_a_sighting_said_in_the_headline_only():
    reports = {sample_id(p): read_tornado(validated(p)) for p in TORNADO}

    assert sorted({r.vphw for r in reports.values()}) == ["VPHW50", "VPHW51"]
    headline_only = reports["19_10_03_250630_VPHW50"]
    assert headline_only.sighted and not headline_only.sighting_areas  # 【目撃情報あり】 in the text, no Information
    assert reports["19_10_04_250630_VPHW51"].sighting_areas == (("110010", "南部"),)
    assert all(0 < r.valid_until - r.head.report_datetime <= 2 * 3600_000 for r in reports.values())


@pytest.mark.parametrize(
    "edit, reason",
    [
        (("<Status>発表</Status>", "<Status>継続</Status>"), "unhandled_code"),
        (("<ValidDateTime>2015-07-17T10:30:00+09:00</ValidDateTime>", ""), "missing_field"),
    ],
    ids=["status", "no-validity"],
)
def test_what_the_hub_cannot_read_is_a_tornado_error_with_a_reason(edit, reason):
    """EDIT of a real sample (埼玉県, 2025 naming) in memory; each edit still validates against the schema."""
    document = edited(xml(next(p for p in TORNADO if p.name.startswith("19_10_04"))), edit)

    with pytest.raises(TornadoError) as refused:
        read_tornado(parse_report(document))

    assert refused.value.reason == reason
