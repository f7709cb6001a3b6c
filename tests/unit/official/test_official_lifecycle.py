"""The lifecycle of relayed official alerts: order, reconcile, 訂正 and 取消, floods, record rain, exercises."""

from __future__ import annotations

import pytest

from streams.kernel.region import AreaRow
from streams.kernel.times import HOUR_MS
from streams.official.jma_xml import parse_report
from streams.official.lifecycle import OfficialState, apply_report, targets_of
from streams.official.report import ReportError, read_report
from streams.packs.jma_areas import JmaAreas, areas_of
from streams.packs.region_init import init_pack
from streams.packs.region_pack import load_pack
from tests.support.jma_samples import (
    HAKODATE,
    KANAGAWA,
    ROKKAKU,
    SAGA_N03,
    as_exercise,
    flood_with_code,
    kanagawa_record_rain,
    later,
    sample,
    with_area_status,
    with_info_type,
)


@pytest.fixture(scope="module")
def kanagawa(project_root):
    return load_pack(project_root / "regions" / "kanagawa")


@pytest.fixture(scope="module")
def saga(tmp_path_factory):
    return init_pack("saga", SAGA_N03, None, tmp_path_factory.mktemp("packs") / "saga")


def run(areas: JmaAreas, documents, region="kanagawa", state=None):
    """Apply the documents in turn; (final state, [(area, msg_type, transition, sequence)], outcomes)."""
    state = state or OfficialState()
    events, outcomes = [], []
    for xml in documents:
        report = read_report(parse_report(xml))
        targets, _skipped = targets_of(report, areas)
        outcome = apply_report(state, report, targets, region=region)
        state = outcome.state
        outcomes.append(outcome.outcome)
        events += [(t.target.name, t.msg_type, t.transition, t.sequence) for t in outcome.transitions]
    return state, events, outcomes


def test_the_kanagawa_sequence_raises_each_area_once_and_cancels_it_once(kanagawa):
    state, events, outcomes = run(areas_of(kanagawa), [sample(p) for p in KANAGAWA])

    assert events == [
        ("小田原市", "ALERT", "RAISED", 0),
        ("真鶴町", "ALERT", "RAISED", 0),
        ("湯河原町", "ALERT", "RAISED", 0),
        ("箱根町", "ALERT", "RAISED", 0),  # joins in Serial 2; the others 継続: nothing new
        ("小田原市", "CANCEL", "CLEARED", 1),
        ("箱根町", "CANCEL", "CLEARED", 1),
        ("真鶴町", "CANCEL", "CLEARED", 1),
        ("湯河原町", "CANCEL", "CLEARED", 1),
    ]
    assert outcomes == ["applied"] * 3 and state.open == {}


def test_alert_ids_carry_the_area_code_and_the_raise_time_and_cancels_reference_the_raise(kanagawa):
    report = read_report(parse_report(sample(KANAGAWA[0])))
    raised = apply_report(OfficialState(), report, targets_of(report, areas_of(kanagawa))[0], region="kanagawa")
    cleared_report = read_report(parse_report(sample(KANAGAWA[2])))
    cleared = apply_report(
        raised.state, cleared_report, targets_of(cleared_report, areas_of(kanagawa))[0], region="kanagawa"
    )

    odawara = raised.transitions[0]
    cancel = next(t for t in cleared.transitions if t.target.code == "1420600")
    assert odawara.alert_id == "kanagawa-jma_landslide-1420600-20241102T1850JST"
    assert (odawara.level.name, odawara.level.warning_level) == ("警戒レベル4相当", 4)
    assert cancel.references == f"{odawara.alert_id}/0" and cancel.references_observed_at == report.report_datetime


def test_a_duplicate_or_older_report_changes_nothing(kanagawa):
    first, second = sample(KANAGAWA[0]), sample(KANAGAWA[1])

    state, events, outcomes = run(areas_of(kanagawa), [first, second, second, first])

    assert outcomes == ["applied", "applied", "duplicate", "older"]
    assert len(events) == 4 and len(state.open) == 4


def test_a_hub_starting_mid_event_raises_every_area_under_warning_at_once(kanagawa):
    _, events, _ = run(areas_of(kanagawa), [sample(KANAGAWA[1])])

    assert sorted(name for name, msg, _, _ in events if msg == "ALERT") == ["小田原市", "湯河原町", "真鶴町", "箱根町"]


def test_an_area_shown_as_none_without_a_clearance_is_cancelled(kanagawa):
    missed_clearance = with_area_status(sample(KANAGAWA[1]), "小田原市", "なし")

    _, events, _ = run(areas_of(kanagawa), [sample(KANAGAWA[0]), missed_clearance])

    assert ("小田原市", "CANCEL", "CLEARED", 1) in events


def test_clearance_or_none_with_nothing_open_produces_nothing(kanagawa):
    state, events, outcomes = run(areas_of(kanagawa), [sample(KANAGAWA[2])])

    assert events == [] and outcomes == ["applied"] and state.open == {}


def test_a_correction_of_the_last_report_replaces_it(kanagawa):
    corrected = with_info_type(with_area_status(sample(KANAGAWA[0]), "湯河原町", "なし"), "訂正")

    state, events, outcomes = run(areas_of(kanagawa), [sample(KANAGAWA[0]), corrected])

    assert outcomes == ["applied", "applied"]
    assert events[3:] == [
        ("小田原市", "UPDATE", "UPDATED", 1),
        ("真鶴町", "UPDATE", "UPDATED", 1),
        ("湯河原町", "CANCEL", "CLEARED", 1),
    ]
    assert sorted(state.open) == ["1420600", "1438300"]


def test_a_correction_of_a_superseded_report_changes_nothing(kanagawa):
    late_correction = with_info_type(sample(KANAGAWA[0]), "訂正")

    _, events, outcomes = run(areas_of(kanagawa), [sample(KANAGAWA[0]), sample(KANAGAWA[1]), late_correction])

    assert outcomes[-1] == "superseded" and len(events) == 4


def test_a_withdrawal_cancels_what_the_withdrawn_report_raised_and_nothing_else(kanagawa):
    withdrawal = with_info_type(sample(KANAGAWA[1]), "取消")

    state, events, outcomes = run(areas_of(kanagawa), [sample(KANAGAWA[0]), sample(KANAGAWA[1]), withdrawal])

    assert outcomes[-1] == "withdrawn"
    assert events[-1] == ("箱根町", "CANCEL", "CLEARED", 1)
    assert sorted(state.open) == ["1420600", "1438300", "1438400"]


def test_an_exercise_gets_its_own_alert_ids_and_status(kanagawa):
    report = read_report(parse_report(as_exercise(sample(KANAGAWA[0]))))

    outcome = apply_report(OfficialState(), report, targets_of(report, areas_of(kanagawa))[0], region="kanagawa")

    assert {t.report.status for t in outcome.transitions} == {"Exercise"}
    assert all(t.alert_id.endswith("-exercise") for t in outcome.transitions)


def test_the_state_survives_its_json_form(kanagawa):
    state, _, _ = run(areas_of(kanagawa), [sample(KANAGAWA[0]), sample(KANAGAWA[1])])

    assert OfficialState.from_json(state.to_bytes()) == state


def test_the_hakodate_sequence_with_a_split_town_in_its_table():
    areas = JmaAreas.build(
        "01",
        [(c, None) for c in ("01202", "01236", "01331", "01332", "01333", "01334", "01337", "01343", "01345")]
        + [(c, None) for c in ("01346", "01347", "01361", "01362", "01363", "01364", "01367", "01370", "01371")],
        [
            AreaRow("0134601", "八雲町八雲", ("01346",), "test: JMA splits 八雲町"),
            AreaRow("0134602", "八雲町熊石", ("01346",), "test: JMA splits 八雲町"),
        ],
    )

    _, events, _ = run(areas, [sample(p) for p in HAKODATE], region="oshima")

    assert [(n, m) for n, m, _, _ in events] == [
        ("松前町", "ALERT"),
        ("福島町", "ALERT"),
        ("知内町", "ALERT"),
        ("松前町", "CANCEL"),
        ("福島町", "CANCEL"),
        ("知内町", "CANCEL"),
    ]


def test_an_own_area_that_maps_to_no_municipality_is_an_error_not_a_silent_skip():
    areas = JmaAreas.build("01", [("01202", None)])
    report = read_report(parse_report(sample(HAKODATE[0])))

    with pytest.raises(ReportError) as refused:
        targets_of(report, areas)

    assert refused.value.reason == "unknown_area" and "0133100" in refused.value.detail


# -- flood forecasts --------------------------------------------------------------------------------------


def test_a_flood_forecast_alerts_the_municipalities_it_names_at_its_level(saga):
    report = read_report(parse_report(sample(ROKKAKU)))
    targets, skipped = targets_of(report, areas_of(saga))

    outcome = apply_report(OfficialState(), report, targets, region="saga")

    (alert,) = outcome.transitions
    assert (alert.msg_type, alert.rule, alert.level.name, alert.level.warning_level) == (
        "ALERT",
        "jma_flood",
        "警戒レベル3相当",
        3,
    )
    assert alert.target.municipality_codes == ("41206", "41209", "41423", "41424", "41425")
    assert alert.alert_id == "saga-jma_flood-890904000100-20210813T1510JST" and skipped == 0


def test_later_flood_forecasts_update_the_alert_and_a_clearance_cancels_it(saga):
    first = sample(ROKKAKU)
    danger = later(flood_with_code(first, "40", "氾濫危険情報"), "2021-08-13T16:10:00+09:00", "2")
    again = later(flood_with_code(first, "40", "氾濫危険情報"), "2021-08-13T17:10:00+09:00", "3")
    cleared = later(flood_with_code(first, "10", "氾濫注意情報解除"), "2021-08-13T23:10:00+09:00", "4")

    state, events, _ = run(areas_of(saga), [first, danger, again, cleared], region="saga")

    assert [(m, t, s) for _, m, t, s in events] == [
        ("ALERT", "RAISED", 0),
        ("UPDATE", "ESCALATED", 1),
        ("UPDATE", "UPDATED", 2),
        ("CANCEL", "CLEARED", 3),
    ]
    assert state.open == {}


def test_an_unknown_flood_code_is_refused(saga):
    report = read_report(parse_report(flood_with_code(sample(ROKKAKU), "60", "未知の情報")))

    with pytest.raises(ReportError) as refused:
        targets_of(report, areas_of(saga))

    assert refused.value.reason == "unhandled_code"


def test_a_flood_forecast_of_another_prefecture_has_no_targets(kanagawa):
    report = read_report(parse_report(sample(ROKKAKU)))

    targets, skipped = targets_of(report, areas_of(kanagawa))

    assert targets == [] and skipped == 5


# -- 記録的短時間大雨情報 -----------------------------------------------------------------------------------


def test_record_rain_raises_a_public_alert_that_expires_an_hour_after_the_report(kanagawa):
    report = read_report(parse_report(kanagawa_record_rain()))
    targets, _ = targets_of(report, areas_of(kanagawa))

    outcome = apply_report(OfficialState(), report, targets, region="kanagawa")

    (alert,) = outcome.transitions
    assert (alert.msg_type, alert.rule, alert.expires) == ("ALERT", "jma_record_rain", report.report_datetime + HOUR_MS)
    assert len(alert.target.municipality_codes) == 58 + 3  # every municipality and ward, and the three cities
