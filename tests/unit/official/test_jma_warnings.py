"""気象警報・注意報 (VPWW53, VPWW54, VPWW55–61) read as values, compared with the tests' own reading of each sample."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.official.jma_xml import parse_report
from streams.official.warnings import MUNICIPAL, WarningError, hazard_and_grade, read_warnings, warning_level
from tests.support.all_hazards import children, local, plain, sample_id, samples, validated, xml
from tests.support.jma_samples import edited

WARNINGS = samples("VPWW")

# The tests' own table (JMA, 警戒レベル相当), kept apart from the hub's: (kind, 大雨警報's condition) -> level.
LEVEL_EXPECTED = {
    "大雨特別警報": 5,
    "高潮特別警報": 4,
    "高潮警報": 4,
    "大雨警報": 3,
    "洪水警報": 3,
    "大雨注意報": 2,
    "洪水注意報": 2,
    "高潮注意報": 2,
}
WIDE = {"１": 1, "２": 2, "３": 3, "４": 4, "５": 5}


def expected_level(name: str, condition: str, next_names: list[str]) -> int | None:
    if name.startswith("レベル"):
        return WIDE[name[3]]
    if name == "大雨警報" and condition == "浸水害":
        return None
    if name == "高潮注意報" and any(n in ("高潮警報", "高潮特別警報") for n in next_names):
        return 3
    return LEVEL_EXPECTED.get(name)


def expected_hazard(name: str) -> str:
    base = name[4:] if name.startswith("レベル") else name
    for suffix in ("特別警報", "危険警報", "警報", "注意報"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return {"強風": "暴風", "風雪": "暴風雪"}.get(base, base)


def municipal_items(path):
    """The tests' reading: every 市町村等 item as (code, name, [(kind, code, status, condition, next kinds)])."""
    body = next(e for e in plain(path) if e.tag.endswith("Body"))
    out = []
    for warning in children(body, "Warning"):
        if not warning.get("type", "").endswith("（市町村等）"):
            continue
        for item in children(warning, "Item"):
            kinds = [
                (
                    local(k, "Name"),
                    local(k, "Code"),
                    local(k, "Status"),
                    local(k, "Condition"),
                    [local(n, "Name") for n in children(k, "NextKinds", "NextKind")],
                )
                for k in children(item, "Kind")
            ]
            out.append((local(item, "Area", "Code"), local(item, "Area", "Name"), kinds))
    return out


def test_there_are_33_warning_samples_of_three_generations():
    generations = {read_warnings(validated(p)).generation for p in WARNINGS}

    assert len(WARNINGS) == 33
    assert generations == {"VPWW53", "VPWW54", "R06"}


@pytest.mark.parametrize("path", WARNINGS, ids=sample_id)
def test_each_municipality_item_carries_the_kinds_statuses_levels_and_hazards_the_xml_says(path):
    report = read_warnings(validated(path))
    theirs = municipal_items(path)

    assert [(a.code, a.name) for a in report.municipal] == [(code, name) for code, name, _ in theirs]
    for area, (code, _, kinds) in zip(report.municipal, theirs, strict=True):
        named = [k for k in kinds if k[0]]
        assert area.level == MUNICIPAL and len(area.code) == 7 and area.code.isdigit()
        assert [(k.name, k.code, k.status) for k in area.kinds] == [(n, c, s) for n, c, s, _, _ in named], code
        assert [k.warning_level for k in area.kinds] == [expected_level(n, cond, nx) for n, _, _, cond, nx in named]
        assert [k.hazard for k in area.kinds] == [expected_hazard(n) for n, *_ in named]
        assert area.none_issued == any(s == "発表警報・注意報はなし" for _, _, s, _, _ in kinds)
        assert [k.in_effect for k in area.kinds] == [s != "解除" for _, _, s, _, _ in named]


@pytest.mark.parametrize("path", WARNINGS, ids=sample_id)
def test_the_head_is_read_as_written(path):
    report = read_warnings(validated(path))
    root = plain(path)

    assert report.head.control_title == local(root, "Control", "Title")
    assert report.head.head_title == local(root, "Head", "Title")
    assert report.head.report_datetime == int(
        datetime.fromisoformat(local(root, "Head", "ReportDateTime")).timestamp() * 1000
    )
    assert report.head.info_kind == "気象警報・注意報"
    assert (report.head.event_id, report.head.serial) == ("", "")  # JMA leaves both empty in warnings
    assert report.prefectures == {a.code[:2] for a in report.municipal}


def test_r06_kinds_carry_their_level_from_their_name_and_speak_for_their_hazard_only():
    sediment = read_warnings(validated(next(p for p in WARNINGS if "VPWW56" in p.name)))
    wakkanai = next(a for a in sediment.municipal if a.code == "0121400")
    kind = wakkanai.kinds[0]

    assert sediment.hazards == {"土砂災害"}
    assert (kind.name, kind.status, kind.warning_level, kind.hazard, kind.grade) == (
        "レベル４土砂災害危険警報", "発表", 4, "土砂災害", 3,
    )  # fmt: skip
    assert (kind.last_kind_name, kind.last_kind_code) == ("レベル３土砂災害警報", "09")  # 切替 3 → 4


def test_a_switch_down_is_the_kind_now_in_effect_with_where_it_came_from():
    nara = read_warnings(validated(next(p for p in WARNINGS if p.name.startswith("15_08_03"))))
    switched = [k for a in nara.municipal for k in a.kinds if k.switched_from]

    assert {(k.name, k.status, k.switched_from) for k in switched} == {
        ("大雨注意報", "特別警報から注意報", "特別警報"),
        ("洪水注意報", "警報から注意報", "警報"),
    }
    assert all(k.in_effect for k in switched)


@pytest.mark.parametrize(
    "name, condition, next_kinds, level",
    [
        ("レベル５大雨特別警報", "", (), 5),
        ("レベル２土砂災害注意報", "", (), 2),
        ("大雨警報", "土砂災害、浸水害", (), 3),
        ("大雨警報", "浸水害", (), None),  # JMA: 大雨警報（土砂災害）is 警戒レベル3相当; 浸水害 alone carries none
        ("高潮注意報", "", ("高潮警報",), 3),  # an advisory that may switch to a warning
        ("暴風特別警報", "", (), None),
        ("雷注意報", "", (), None),
    ],
)
def test_warning_levels_follow_jma_table(name, condition, next_kinds, level):
    assert warning_level(name, condition, next_kinds) == level


def test_wind_and_snowstorm_advisories_share_the_hazard_of_their_warning():
    assert hazard_and_grade("強風注意報") == ("暴風", 1)
    assert hazard_and_grade("暴風警報") == ("暴風", 2)
    assert hazard_and_grade("風雪注意報") == ("暴風雪", 1)
    assert hazard_and_grade("レベル４大雨危険警報") == ("大雨", 3)


@pytest.mark.parametrize(
    "edit, reason",
    [
        (("<Status>継続</Status>", "<Status>延長</Status>"), "unhandled_code"),
        (
            (
                "<Name>レベル２土砂災害注意報</Name>\n<Code>29</Code>\n<Status>",
                "<Name>土砂災害情報</Name>\n<Code>29</Code>\n<Status>",
            ),
            "unhandled_code",
        ),
        (
            ("<Title>気象警報・注意報（Ｒ０６）（土砂）</Title>", "<Title>気象警報・注意報（Ｒ０７）（土砂）</Title>"),
            "unhandled_kind",
        ),
        (
            ('<Warning type="気象警報・注意報（市町村等）">', '<Warning type="気象警報・注意報（区）">'),
            "unhandled_code",
        ),
    ],
    ids=["status", "kind", "title", "level"],
)
def test_what_the_hub_cannot_read_is_a_warning_error_with_a_reason(edit, reason):
    """EDIT of a real sample (the R06 土砂災害 of 宗谷地方) in memory: each edit still validates against the schema."""
    document = edited(xml(next(p for p in WARNINGS if "VPWW56" in p.name)), edit)

    with pytest.raises(WarningError) as refused:
        read_warnings(parse_report(document))

    assert refused.value.reason == reason
