"""The relayed alerts of every kind, compared with the test's own reading of JMA's samples (ElementTree, never the
hub's parsers), and the relay lifecycle on report values: order, reconcile, 切替, de-duplication, withdrawal, ids.

The samples' areas are resolved through tables built here from the sample itself (each 市町村等 code its own
municipality, each 地震情報／細分区域, 津波予報区 and 一次細分区域 one made-up municipality), so what is compared is the
lifecycle, not a pack's geography (test_relay_samples.py replays them through real packs).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.kernel.region import AreaRow, OfficialSettings
from streams.official.head import ReportHead
from streams.official.kinds import read_any
from streams.official.lifecycle import OfficialState
from streams.official.relay import (
    HYPOCENTRE,
    QUAKE_RULE,
    TORNADO_RULE,
    TSUNAMI_RULE,
    WARNING_RULE,
    apply_relay,
    relay_key,
)
from streams.official.warnings import WarningArea, WarningKind, WarningReport, hazard_and_grade, warning_level
from streams.packs.jma_areas import JmaAreas
from tests.support.all_hazards import children, local, plain, sample_id, samples, validated

STATUSES = {"通常": "Actual", "訓練": "Exercise", "試験": "Test"}


def body_of(path):
    return next(e for e in plain(path) if e.tag.endswith("Body"))


def head_of(path, name):
    return local(next(e for e in plain(path) if e.tag.endswith("Head")), name)


def control_of(path, name):
    return local(next(e for e in plain(path) if e.tag.endswith("Control")), name)


def areas_for(prefecture, *, municipal=(), earthquake=(), tsunami=(), forecast=()):
    """JmaAreas of a made-up pack: each 市町村等 code its own municipality (its 5 digits), each other area code
    one municipality of its own (``<prefecture>9<3 digits>``)."""
    own = {c[:5] for c in municipal if c[:2] == prefecture}
    made = {code: f"{prefecture}{int(code) % 1000:03d}" for code in (*earthquake, *tsunami, *forecast)}
    rows = [AreaRow(c, c, (c[:5],), "test") for c in municipal if c[:2] == prefecture and not c.endswith("00")]
    return JmaAreas.build(
        prefecture,
        [(c, None) for c in own | set(made.values())],
        rows,
        [AreaRow(c, c, (made[c],), "test") for c in forecast],
        earthquake_table=[AreaRow(c, c, (made[c],), "test") for c in earthquake],
        tsunami_table=[AreaRow(c, c, (made[c],), "test") for c in tsunami],
    ), made


DEFAULTS = OfficialSettings()


def first(path, areas, state=None, settings=DEFAULTS):
    outcome, _ = apply_relay(state or OfficialState(), read_any(validated(path)), areas, region="t", settings=settings)
    return outcome


# -- 気象警報・注意報 ---------------------------------------------------------------------------------------------
def municipal_items(path):
    """(code, [(kind name, status)]) of every 市町村等 item, by the test's reading."""
    out = []
    for warning in children(body_of(path), "Warning"):
        if warning.get("type", "").endswith("（市町村等）"):
            for item in children(warning, "Item"):
                kinds = [(local(k, "Name"), local(k, "Status")) for k in children(item, "Kind")]
                out.append((local(item, "Area", "Code"), kinds))
    return out


@pytest.mark.parametrize("path", samples("VPWW"), ids=sample_id)
def test_a_first_warning_report_raises_one_alert_per_kind_in_effect_per_area(path):
    items = municipal_items(path)
    prefecture = next((code[:2] for code, _ in items), "")
    areas, _ = areas_for(prefecture, municipal=[code for code, _ in items])
    expected = {
        (code, name)
        for code, kinds in items
        if code[:2] == prefecture
        for name, status in kinds
        if name and status != "解除"
    }
    outcome = first(path, areas)
    raised = {(t.want.code, t.want.event) for t in outcome.transitions}
    assert raised == expected
    for t in outcome.transitions:
        assert t.rule == WARNING_RULE and t.transition == "RAISED" and t.level.rank == hazard_and_grade(t.want.event)[1]
        if t.want.event.startswith("レベル"):  # R06: the 警戒レベル in the name
            assert t.level.warning_level == int(t.want.event[3].translate(str.maketrans("１２３４５", "12345")))
    assert relay_key(read_any(validated(path))) == "気象警報・注意報|"


def kind(name, status="発表", condition=""):
    hazard, grade = hazard_and_grade(name)
    return WarningKind(name, "00", status, hazard, grade, warning_level(name, condition), condition)


def head(minute, title="気象警報・注意報（Ｈ２７）", info_type="発表", status="通常"):
    return ReportHead(
        title, status, "横浜地方気象台", "横浜地方気象台", "神奈川県気象警報・注意報",
        1_700_000_000_000 + minute * 60_000, None, None, "", info_type, "", "気象警報・注意報", "1.0", "",
    )  # fmt: skip


def warnings(minute, kinds_by_area, generation="VPWW54", family="大雨"):
    from streams.official.warnings import ALL_HAZARDS, R06_FAMILIES, R06_PREFIX

    title = {"VPWW54": "気象警報・注意報（Ｈ２７）", "VPWW53": "気象特別警報・警報・注意報"}.get(
        generation, f"{R06_PREFIX}（{family}）"
    )
    hazards = ALL_HAZARDS if generation != "R06" else frozenset(R06_FAMILIES[family])
    areas = tuple(WarningArea("市町村等", code, code, tuple(kinds), not kinds) for code, kinds in kinds_by_area.items())
    prefecture = (WarningArea("府県予報区等", "140000", "神奈川県", (), False),)
    return WarningReport(head(minute, title), generation, hazards, prefecture + areas)


KANAGAWA, _ = areas_for("14", municipal=["1420100", "1420300"])


def run(reports, state=None):
    state, out = state or OfficialState(), []
    for report in reports:
        outcome, _ = apply_relay(state, report, KANAGAWA, region="kanagawa")
        state = outcome.state
        out.append(
            [(t.want.code, t.want.event, t.msg_type, str(t.transition), t.sequence) for t in outcome.transitions]
        )
    return state, out


def test_a_warning_is_raised_upgraded_switched_and_cancelled():
    _, out = run(
        [
            warnings(0, {"1420100": [kind("大雨注意報")]}),
            warnings(10, {"1420100": [kind("大雨警報", condition="土砂災害")]}),
            warnings(20, {"1420100": [kind("大雨特別警報")]}),
            warnings(30, {"1420100": [kind("大雨警報", "特別警報から警報", "土砂災害")]}),
            warnings(40, {"1420100": [kind("大雨警報", "継続", "土砂災害")]}),  # nothing new: no message
            warnings(50, {"1420100": [kind("大雨警報", "解除")]}),
        ]
    )
    assert out == [
        [("1420100", "大雨注意報", "ALERT", "RAISED", 0)],
        [("1420100", "大雨警報", "UPDATE", "ESCALATED", 1)],
        [("1420100", "大雨特別警報", "UPDATE", "ESCALATED", 2)],
        [("1420100", "大雨警報", "UPDATE", "DEESCALATED", 3)],
        [],
        [("1420100", "大雨警報", "CANCEL", "CLEARED", 4)],
    ]


def test_a_kind_no_longer_listed_is_cancelled_and_a_continued_one_seen_mid_event_is_raised():
    _, out = run(
        [
            warnings(
                0, {"1420100": [kind("大雨警報", "継続"), kind("強風注意報", "継続")]}
            ),  # the hub starts mid-event
            warnings(10, {"1420100": [kind("大雨警報", "継続")]}),  # 強風注意報 is no longer listed
        ]
    )
    assert sorted(out[0]) == [
        ("1420100", "大雨警報", "ALERT", "RAISED", 0),
        ("1420100", "強風注意報", "ALERT", "RAISED", 0),
    ]
    assert out[1] == [("1420100", "強風注意報", "CANCEL", "CLEARED", 1)]


def test_an_r06_report_speaks_for_its_own_hazard_family_only():
    _, out = run(
        [
            warnings(0, {"1420100": [kind("レベル３大雨警報")]}, "R06", "大雨"),
            warnings(0, {"1420100": [kind("暴風警報")]}, "R06", "暴風"),  # same time, another family: applies
            warnings(10, {"1420100": []}, "R06", "暴風"),  # 暴風 ends; the 大雨 alert stays
        ]
    )
    assert out[1] == [("1420100", "暴風警報", "ALERT", "RAISED", 0)]
    assert out[2] == [("1420100", "暴風警報", "CANCEL", "CLEARED", 1)]


def test_h27_and_r06_carrying_the_same_warning_make_one_alert_never_dropping_what_one_still_carries():
    state, out = run(
        [
            warnings(0, {"1420100": [kind("大雨警報")]}, "VPWW54"),
            warnings(0, {"1420100": [kind("レベル３大雨警報")]}, "R06", "大雨"),  # the same warning: R06's name
            warnings(10, {"1420100": [kind("大雨警報", "解除")]}, "VPWW54"),  # H27 lifts it, R06 still carries it
            warnings(20, {"1420100": [kind("レベル３大雨警報", "解除")]}, "R06", "大雨"),
        ]
    )
    assert out == [
        [("1420100", "大雨警報", "ALERT", "RAISED", 0)],
        [("1420100", "レベル３大雨警報", "UPDATE", "UPDATED", 1)],
        [],
        [("1420100", "レベル３大雨警報", "CANCEL", "CLEARED", 2)],
    ]
    assert not state.open


def test_reports_apply_in_order_per_source_and_a_withdrawal_cancels_what_it_raised():
    report = warnings(10, {"1420100": [kind("大雨注意報")]})
    state, out = run([report, warnings(5, {"1420100": [kind("大雨警報")]}), report])
    assert out[1:] == [[], []]  # older, duplicate
    outcome, _ = apply_relay(state, replace(report, head=replace(report.head, info_type="取消")), KANAGAWA, region="k")
    assert [(t.msg_type, t.want.condition) for t in outcome.transitions] == [("CANCEL", "取消")]


def test_the_same_reports_in_the_same_order_give_the_same_alert_ids():
    reports = [warnings(0, {"1420100": [kind("大雨注意報")]}), warnings(10, {"1420100": [kind("大雨警報")]})]
    one, two = run(reports), run(reports)
    assert one == two
    assert one[0].open["1420100|大雨"].alert_id == "kanagawa-jma_warning-1420100-大雨-20231115T071320JST"


def test_state_survives_its_changelog():
    state, _ = run(
        [warnings(0, {"1420100": [kind("大雨警報")]}), warnings(0, {"1420100": [kind("レベル３大雨警報")]}, "R06")]
    )
    assert OfficialState.from_json(state.to_bytes()) == state


# -- 地震 ---------------------------------------------------------------------------------------------------------
INTENSITY_ORDER = ["1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"]


def cities_of(path):
    return [
        (local(city, "Code"), local(city, "MaxInt"), local(city, "Condition"))
        for pref in children(body_of(path), "Intensity", "Observation", "Pref")
        for area in children(pref, "Area")
        for city in children(area, "City")
    ]


VXSE53_WITH_CITIES = [p for p in samples("VXSE53") if cities_of(p) and head_of(p, "InfoType") != "取消"]


@pytest.mark.parametrize("path", VXSE53_WITH_CITIES, ids=sample_id)
def test_vxse53_gives_each_municipality_its_intensity_as_written(path):
    cities = cities_of(path)
    prefecture = cities[0][0][:2]
    areas, _ = areas_for(prefecture, municipal=[c for c, *_ in cities])
    expected: dict[str, str] = {}
    for code, max_int, condition in cities:
        if code[:2] != prefecture or not (max_int or condition):
            continue
        shown = max_int or condition
        rank = INTENSITY_ORDER.index(max_int or "5-")
        if code[:5] not in expected or rank > INTENSITY_ORDER.index(
            expected[code[:5]] if expected[code[:5]] in INTENSITY_ORDER else "5-"
        ):
            expected[code[:5]] = shown
    outcome = first(path, areas)
    got = {t.want.code: t.level.name for t in outcome.transitions if t.want.key != HYPOCENTRE}
    assert got == expected
    report_time = head_of(path, "ReportDateTime")
    for t in outcome.transitions:
        assert t.rule == QUAKE_RULE and t.expires == t.observed_at + 24 * 3_600_000
        assert t.want.event == head_of(path, "InfoKind") and report_time
    magnitude = next((m for m in body_of(path).iter() if m.tag.endswith("}Magnitude")), None)
    if magnitude is not None and magnitude.get("description"):
        assert all(magnitude.get("description") in t.want.text for t in outcome.transitions)


def test_a_pack_s_minimum_intensity_and_duration_apply():
    path = next(p for p in VXSE53_WITH_CITIES if {"1", "3"} <= {c[1] for c in cities_of(p)})
    cities = cities_of(path)
    areas, _ = areas_for(cities[0][0][:2], municipal=[c for c, *_ in cities])
    outcome = first(path, areas, settings=OfficialSettings("3", 3_600_000))
    levels = {t.level.name for t in outcome.transitions}
    assert levels and not levels & {"1", "2"}
    assert all(t.expires == t.observed_at + 3_600_000 for t in outcome.transitions)


@pytest.mark.parametrize("path", [p for p in samples("VXSE51") if head_of(p, "InfoType") != "取消"], ids=sample_id)
def test_vxse51_reaches_municipalities_through_the_earthquake_area_table(path):
    found = [
        (local(pref, "Code"), local(area, "Code"), local(area, "MaxInt"))
        for pref in children(body_of(path), "Intensity", "Observation", "Pref")
        for area in children(pref, "Area")
    ]
    prefecture = found[0][0]
    areas, made = areas_for(prefecture, earthquake=[a for p, a, _ in found if p == prefecture])
    outcome = first(path, areas)
    assert {t.want.code: t.level.name for t in outcome.transitions} == {
        made[a]: i for p, a, i in found if p == prefecture
    }


@pytest.mark.parametrize("path", [p for p in samples("VXSE52") if head_of(p, "InfoType") != "取消"], ids=sample_id)
def test_vxse52_is_one_alert_for_the_prefecture_s_topic_only(path):
    areas, _ = areas_for("14")
    outcome = first(path, areas)
    assert [(t.want.key, t.want.sharing_level, t.want.municipality_codes) for t in outcome.transitions] == [
        (HYPOCENTRE, "INTERNAL", ())
    ]
    hypocentre = next(e for e in body_of(path).iter() if e.tag.endswith("}Hypocenter"))
    assert outcome.transitions[0].want.name == local(hypocentre, "Area", "Name")


def test_a_later_report_of_the_same_earthquake_updates_its_alerts():
    sokuho = next(p for p in samples("VXSE51") if sample_id(p).startswith("32-35_07_04"))
    information = next(p for p in samples("VXSE53") if sample_id(p).startswith("32-35_07_06"))
    assert relay_key(read_any(validated(sokuho))) == relay_key(read_any(validated(information)))
    prefecture = "22"  # 静岡県: each 細分区域 of the 震度速報 is the municipalities VXSE53 lists under it
    under: dict[str, list[str]] = {}
    for pref in children(body_of(information), "Intensity", "Observation", "Pref"):
        for area in children(pref, "Area"):
            under[local(area, "Code")] = [local(c, "Code")[:5] for c in children(area, "City")]
    codes = {c for cs in under.values() for c in cs if c[:2] == prefecture}
    areas = JmaAreas.build(
        prefecture,
        [(c, None) for c in codes],
        earthquake_table=[AreaRow(a, a, tuple(cs), "test") for a, cs in under.items() if cs[0][:2] == prefecture],
    )
    raised = first(sokuho, areas)
    later = first(information, areas, raised.state)
    assert {t.msg_type for t in raised.transitions} == {"ALERT"}
    updated = {t.want.code: (t.msg_type, t.sequence) for t in later.transitions if t.want.code in raised.state.open}
    assert updated and set(updated.values()) == {("UPDATE", 1)}
    assert {t.alert_id for t in later.transitions if t.want.code in updated} <= {t.alert_id for t in raised.transitions}


# -- 津波 ---------------------------------------------------------------------------------------------------------
def forecast_of(path):
    return [
        (local(item, "Area", "Code"), local(item, "Category", "Kind", "Name"), local(item, "Category", "Kind", "Code"))
        for item in children(body_of(path), "Tsunami", "Forecast", "Item")
    ]


@pytest.mark.parametrize("path", samples("VTSE41"), ids=sample_id)
def test_vtse41_raises_a_warning_per_tsunami_area_under_one(path):
    found = forecast_of(path)
    areas, made = areas_for("14", tsunami=[code for code, *_ in found])
    outcome = first(path, areas)
    assert {(t.want.code, t.want.event) for t in outcome.transitions} == {
        (code, name) for code, name, kind_code in found if kind_code in {"51", "52", "53", "62"}
    }
    for t in outcome.transitions:
        assert t.rule == TSUNAMI_RULE and t.want.municipality_codes == (made[t.want.code],)
        assert t.head.status == STATUSES[control_of(path, "Status")]


def test_a_tsunami_warning_is_downgraded_then_cancelled_and_information_updates_its_text():
    event = [p for p in samples("32-39_12_") if p.name.endswith(("VTSE41.xml.gz", "VTSE51.xml.gz"))]
    event.sort(key=lambda p: head_of(p, "ReportDateTime"))
    codes = sorted({code for p in event for code, *_ in forecast_of(p)})
    areas, _ = areas_for("14", tsunami=codes)
    state, seen = OfficialState(), []
    for path in event:
        outcome = first(path, areas, state)
        state = outcome.state
        seen += [
            (sample_id(path)[-6:], t.want.code, t.msg_type, str(t.transition), t.level.name)
            for t in outcome.transitions
        ]
    kinds = {(msg, transition) for _, _, msg, transition, _ in seen}
    assert {("ALERT", "RAISED"), ("UPDATE", "UPDATED"), ("CANCEL", "CLEARED")} <= kinds
    assert not state.open  # the last VTSE41 lifts every warning


# -- 竜巻注意情報 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", samples("VPHW"), ids=sample_id)
def test_a_tornado_alert_per_first_area_issued_ends_at_its_validity(path):
    issued = [
        local(item, "Area", "Code")
        for warning in children(body_of(path), "Warning")
        if warning.get("type", "").endswith("（一次細分区域等）")
        for item in children(warning, "Item")
        if local(item, "Kind", "Status") == "発表"
    ]
    areas, made = areas_for(issued[0][:2], forecast=issued)
    outcome = first(path, areas)
    valid = read_any(validated(path)).head.valid_datetime
    assert {t.want.code for t in outcome.transitions} == set(issued)
    assert all(t.rule == TORNADO_RULE and t.expires == valid and t.msg_type == "ALERT" for t in outcome.transitions)
    assert head_of(path, "ValidDateTime")


# -- through the pipeline of the shipped Kanagawa pack: records, topics, CAP ---------------------------------------
KANAGAWA_SAMPLES = [
    "15_12_03_161130_VPWW53",  # 神奈川県's warnings
    "15_12_03_161130_VPWW54",  # the same in H27: de-duplicated, no second alert
    "32-35_08_06_240613_VXSE52",
    "32-35_08_07_240613_VXSE53",
    "32-39_12_02_250206_VTSE41",  # an exercise (訓練)
]


def test_kanagawa_s_alerts_as_records_topics_and_valid_cap(project_root):
    from streams.delivery import cap
    from streams.delivery.cap_schema import cap_validation_errors
    from streams.kernel.messages import InMessage
    from streams.kernel.topics import HubTopics
    from streams.official.pipeline import OfficialPipeline
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import OFFICIAL_REPORT, AvroCodec, default_store
    from streams.platform.topic_catalog import default_catalog_path, load_catalog
    from tests.support.all_hazards import ALL_HAZARDS, xml

    store = default_store()
    pack = load_pack(project_root / "regions" / "kanagawa")
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    pipeline = OfficialPipeline(pack, topics, store, clock=lambda: 0.0)
    codec, states, outs = AvroCodec(store, OFFICIAL_REPORT), {}, {}
    for offset, name in enumerate(KANAGAWA_SAMPLES):
        path = ALL_HAZARDS / f"{name}.xml.gz"
        value = codec.encode({"xml": xml(path), "entry_id": name, "url": "", "fetched_at": 0, "entry_updated": None})
        key = relay_key(read_any(validated(path))).encode()
        result = pipeline.process(
            [InMessage("official", 0, offset, key, value, 1)], lambda k: states.get(k, OfficialState())
        )
        states.update(result.states)
        assert not result.dead_letters, name
        outs[name] = result.alerts
    assert outs["15_12_03_161130_VPWW53"] and not outs["15_12_03_161130_VPWW54"]
    for name, alerts in outs.items():
        for out in alerts:
            record = out.record
            assert record["source"] == "jma" and record["event"] and record["official"]["credit"] == "出典：気象庁"
            document = cap.render(record)
            assert cap_validation_errors(document) == [], name
            text = document.decode()
            category = "Geo" if record["rule"] in ("jma_earthquake", "jma_tsunami") else "Met"
            assert f"<category>{category}</category>" in text and "出典：気象庁" in text
            assert f"<event>{record['event']}</event>" in text
            if record["status"] != "Actual":
                assert out.topics == (topics.alerts,)
            elif record["sharing_level"] == "INTERNAL":
                assert out.topics == (topics.alerts,)
            else:
                assert topics.public in out.topics
    from streams.publicmap.view import PublicMap, RegionView

    public_map = PublicMap([RegionView.of(pack)])
    public_map.apply([o.record for o in outs["15_12_03_161130_VPWW53"] if o.record["status"] == "Actual"])
    statuses = public_map.municipality_statuses()
    warned = {c for o in outs["15_12_03_161130_VPWW53"] for c in o.record["municipality_codes"]}
    assert warned and warned <= set(statuses)  # the residents' map colours every municipality under a warning
    assert all(statuses[c]["source"] == "jma" for c in warned)
    warning = outs["15_12_03_161130_VPWW53"][0].record
    assert warning["rule"] == "jma_warning" and warning["municipality_codes"]
    hypocentre = outs["32-35_08_06_240613_VXSE52"][0].record
    assert hypocentre["sharing_level"] == "INTERNAL" and hypocentre["municipality_codes"] == []
    quake = [o.record for o in outs["32-35_08_07_240613_VXSE53"] if o.record["station_id"] != hypocentre["station_id"]]
    assert quake and all(r["level"] in INTENSITY_ORDER and "規模" in r["official"]["text"] for r in quake)


# -- region.yaml official: ------------------------------------------------------------------------------------------
def test_a_pack_sets_the_earthquake_minimum_and_duration_and_the_loader_refuses_bad_values(project_root, tmp_path):
    import shutil

    from streams.packs.region_pack import PackError, load_pack

    assert load_pack(project_root / "regions" / "tochigi").relay_settings == OfficialSettings("1", 24 * 3_600_000)
    pack_dir = tmp_path / "tochigi"
    shutil.copytree(project_root / "regions" / "tochigi", pack_dir)
    manifest = pack_dir / "region.yaml"
    original = manifest.read_text(encoding="utf-8")
    manifest.write_text(original + '\nofficial:\n  earthquake_min_intensity: "5-"\n  earthquake_alert_hours: 6\n')
    assert load_pack(pack_dir).relay_settings == OfficialSettings("5-", 6 * 3_600_000)
    manifest.write_text(original + "\nofficial:\n  earthquake_min_intensity: 5弱\n  earthquake_alert_hours: 0\n")
    with pytest.raises(PackError) as caught:
        load_pack(pack_dir)
    text = str(caught.value)
    assert "official.earthquake_min_intensity" in text and "official.earthquake_alert_hours" in text


def test_replay_reads_gzip_samples_and_keys_them_by_event():
    from streams.hub.replay_input import official_messages
    from streams.platform.avro import OFFICIAL_REPORT, AvroCodec, default_store
    from tests.support.all_hazards import ALL_HAZARDS

    paths = [ALL_HAZARDS / "15_12_03_161130_VPWW53.xml.gz", ALL_HAZARDS / "32-35_08_07_240613_VXSE53.xml.gz"]
    found = official_messages(paths, {"14": ["t14"]}, AvroCodec(default_store(), OFFICIAL_REPORT), fetched_at=0)
    assert found.unreadable == [] and found.reports == 2
    assert [(m.topic, m.key.decode()) for m in found.messages] == [
        ("t14", "地震|20100705065610"),
        ("t14", "気象警報・注意報|"),
    ]
