"""Rules and the alert lifecycle, pure: thresholds, hysteresis, escalation, gaps, windows, ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.kernel.model import RiverStages, SensorKind, Station
from streams.kernel.rules import HOUR_MS, measure, next_rank, sample_of
from streams.observed.lifecycle import StationState, alert_id_for, evaluate_reading
from streams.packs.rule_file import load_rules

T0 = 1_693_782_000_000  # 2023-09-04T08:00+09:00
RAIN_BANDS = [20.0, 30.0, 50.0, 80.0]


@pytest.fixture(scope="module")
def rules(project_root: Path):
    return load_rules(project_root / "regions/_template/rules.yaml")


@pytest.fixture(scope="module")
def gauge() -> Station:
    return Station("41277", SensorKind.RAIN_GAUGE, "宇都宮", "Utsunomiya", 36.548, 139.868, 119.0, "09201")


@pytest.fixture(scope="module")
def river_gauge() -> Station:
    return Station(
        "R1",
        SensorKind.RIVER_LEVEL_GAUGE,
        "田川",
        "Tagawa",
        36.55,
        139.88,
        100.0,
        "09201",
        river_stages=RiverStages(1.0, 2.0, 2.5, 3.0, 3.6),
    )


@pytest.mark.parametrize(
    "value, expected", [(0, 0), (19.9, 0), (20, 1), (29.5, 1), (30, 2), (50, 3), (79.9, 3), (80, 4), (153, 4)]
)
def test_jma_bands_from_nothing(value, expected):
    assert next_rank(RAIN_BANDS, 5.0, 0, value) == expected


@pytest.mark.parametrize(
    "current, value, expected",
    [
        (3, 47.0, 3),  # wobbling just under 50: kept
        (3, 45.0, 3),  # exactly threshold - hysteresis: kept
        (3, 44.9, 2),  # below: down to intense (30 - 5 = 25 <= 44.9)
        (3, 24.0, 1),  # down two levels at once
        (1, 15.0, 1),  # heavy kept down to 15
        (1, 14.9, 0),  # cleared
        (2, 80.0, 4),  # up jumps straight to the level reached
    ],
)
def test_hysteresis_keeps_a_level_until_the_value_falls_clearly_below(current, value, expected):
    assert next_rank(RAIN_BANDS, 5.0, current, value) == expected


def _run(rules, station, series, state=None):
    """Feed (hour offset, values) in order; return all transitions and the final state."""
    state = state or StationState()
    transitions = []
    for hour, values in series:
        state, found = evaluate_reading(
            state, region="tochigi", station=station, rules=rules, observed_at=int(T0 + hour * HOUR_MS), values=values
        )
        transitions += found
    return transitions, state


def rain(mm):
    return {"precipitation_1h": mm}


def test_an_episode_raises_escalates_deescalates_and_clears_with_one_event_each(rules, gauge):
    series = [(0, rain(5)), (1, rain(22)), (2, rain(55)), (3, rain(52)), (4, rain(40)), (5, rain(3))]

    transitions, state = _run(rules, gauge, series)

    rain_1h = [t for t in transitions if t.rule.id == "rain_1h"]
    assert [(t.transition, t.msg_type, t.level.name, t.sequence) for t in rain_1h] == [
        ("RAISED", "ALERT", "heavy", 0),
        ("ESCALATED", "UPDATE", "very_heavy", 1),
        ("DEESCALATED", "UPDATE", "intense", 2),
        ("CLEARED", "CANCEL", "intense", 3),
    ]
    alert_id = alert_id_for("tochigi", "rain_1h", "41277", T0 + HOUR_MS)
    assert {t.alert_id for t in rain_1h} == {alert_id} == {"tochigi-rain_1h-41277-20230904T0900JST"}
    assert [t.references for t in rain_1h] == [None, f"{alert_id}/0", f"{alert_id}/1", f"{alert_id}/2"]
    assert "rain_1h" not in state.rules


def test_a_new_episode_after_clearing_gets_a_new_id(rules, gauge):
    transitions, _ = _run(rules, gauge, [(0, rain(25)), (1, rain(0)), (2, rain(25))])

    ids = [t.alert_id for t in transitions if t.rule.id == "rain_1h"]
    assert ids[0] == ids[1] != ids[2]


def test_missing_values_neither_raise_nor_clear(rules, gauge):
    transitions, state = _run(
        rules, gauge, [(0, rain(55)), (1, rain(None)), (2, {"precipitation_1h": None, "precipitation_24h": None})]
    )

    assert [t.transition for t in transitions if t.rule.id == "rain_1h"] == ["RAISED"]
    assert state.rules["rain_1h"].rank == 3


def test_redelivered_or_late_readings_change_nothing(rules, gauge):
    _, state = _run(rules, gauge, [(0, rain(55)), (1, rain(60))])

    again, same = _run(rules, gauge, [(1, rain(0)), (0, rain(0))], state=state)

    assert again == [] and same == state


def test_the_same_series_gives_the_same_transitions_whatever_came_before_it_in_wall_time(rules, gauge):
    series = [(h, rain(v)) for h, v in enumerate([0, 21, 33, 51, 81, 49, 30, 10, 0])]

    first, _ = _run(rules, gauge, series)
    second, _ = _run(rules, gauge, series)

    assert first == second


def test_three_hour_rainfall_is_summed_from_hourly_values_in_event_time(rules, gauge):
    rule = rules.rule("rain_3h")
    history = (sample_of(T0, {"precipitation_1h": 30.0}), sample_of(T0 + HOUR_MS, {"precipitation_1h": 30.0}))

    total = measure(rule, T0 + 2 * HOUR_MS, {"precipitation_1h": 25.0}, history)
    with_gap = measure(rule, T0 + 3 * HOUR_MS, {"precipitation_1h": 25.0}, history)  # T0 is out of the window

    assert total == 85.0
    assert with_gap == 55.0
    transitions, _ = _run(rules, gauge, [(0, rain(30)), (1, rain(30)), (2, rain(25))])
    assert [(t.rule.id, t.level.name) for t in transitions if t.rule.id == "rain_3h"] == [("rain_3h", "heavy")]


def test_cumulative_rainfall_from_a_sensor_that_reports_increments(rules):
    rule = rules.rule("rain_3h")
    history = tuple(sample_of(T0 + k * 600_000, {"precipitation_increment": 5.0}) for k in range(18))  # 10-min steps

    total = measure(rule, T0 + 18 * 600_000, {"precipitation_increment": 5.0}, history)

    # the window (T0+18*10min - 3 h, T0+18*10min] holds samples 1..17 and the current one
    assert total == 5.0 * 18


def test_cumulative_rule_uses_a_reported_rolling_sum_as_is(rules):
    rule = rules.rule("rain_24h")

    assert measure(rule, T0, {"precipitation_1h": 3.0, "precipitation_24h": 160.5}, ()) == 160.5
    assert measure(rule, T0, {"precipitation_1h": None, "precipitation_24h": None}, ()) is None


def test_river_stages_map_to_warning_levels_from_the_gauges_own_thresholds(rules, river_gauge):
    levels = [
        (0, {"water_level": 1.5}),
        (1, {"water_level": 2.1}),
        (2, {"water_level": 3.05}),
        (3, {"water_level": 3.7}),
        (4, {"water_level": 2.95}),
        (5, {"water_level": 1.85}),
    ]

    transitions, _ = _run(rules, river_gauge, levels)

    stage = [
        (t.level.name, t.level.warning_level, t.msg_type, t.threshold)
        for t in transitions
        if t.rule.id == "river_stage"
    ]
    assert stage == [
        ("level_2", 2, "ALERT", 2.0),
        ("level_4", 4, "UPDATE", 3.0),
        ("level_5", 5, "UPDATE", 3.6),
        ("level_4", 4, "UPDATE", 3.0),
        ("level_4", 4, "CANCEL", 3.0),
    ]  # 1.85 < 2.0 - 0.1


def test_river_stage_hysteresis_holds_a_level_through_small_dips(rules, river_gauge):
    transitions, _ = _run(
        rules,
        river_gauge,
        [
            (0, {"water_level": 2.55}),
            (1, {"water_level": 2.45}),
            (2, {"water_level": 2.52}),
            (3, {"water_level": 2.41}),
        ],
    )

    assert [t.transition for t in transitions if t.rule.id == "river_stage"] == ["RAISED"]


def test_rapid_rise_is_measured_over_its_window(rules, river_gauge):
    transitions, _ = _run(
        rules, river_gauge, [(0, {"water_level": 1.0}), (0.5, {"water_level": 1.2}), (1, {"water_level": 1.6})]
    )

    rise = [t for t in transitions if t.rule.id == "river_rise"]
    assert [(t.level.name, round(t.value, 2)) for t in rise] == [("rapid_rise", 0.6)]


def test_a_station_override_changes_its_thresholds_only(rules, gauge):
    from dataclasses import replace

    strict = replace(gauge, rule_overrides={"rain_1h": {"thresholds": {"heavy": 10}}})

    transitions, _ = _run(rules, strict, [(0, rain(12))])
    normal, _ = _run(rules, gauge, [(0, rain(12))])

    assert [t.level.name for t in transitions] == ["heavy"] and normal == []


def test_state_survives_a_json_round_trip(rules, gauge):
    _, state = _run(rules, gauge, [(0, rain(30)), (1, rain(55))])

    assert len(state.history) == 2 and state.rules
    assert StationState.from_json(state.to_json()) == state
    assert StationState.from_json(state.to_bytes()) == state  # the table's form
    # what the table held before samples were flat tuples stored as bytes still loads
    old_form = dict(state.to_json(), history=[[t, {"precipitation_1h": p1h}] for t, p1h, _, _ in state.history])
    assert StationState.from_json(json.loads(json.dumps(old_form))) == state


def test_an_old_history_entry_without_remembered_values_is_left_out_not_kept_as_none(rules, gauge):
    _, state = _run(rules, gauge, [(0, rain(30)), (1, rain(55))])
    # the old [t, {quantity: value}] form could hold none of the values the rules remember: it was restored
    # as None in the history, and the station's next reading then failed on it
    old_form = dict(state.to_json(), history=[[0, {"precipitation_10min": 3.0}], *state.to_json()["history"]])

    restored = StationState.from_json(json.loads(json.dumps(old_form)))

    assert restored == state and None not in restored.history
    transitions, _ = _run(rules, gauge, [(2, rain(60))], state=restored)
    assert transitions == []


def test_next_rank_matches_its_definition_on_random_inputs():
    import random

    def by_definition(thresholds, hysteresis, current, value):
        up = max((i + 1 for i, t in enumerate(thresholds) if t is not None and value >= t), default=0)
        if up >= current:
            return up
        return max(
            (i + 1 for i, t in enumerate(thresholds[:current]) if t is not None and value >= t - hysteresis), default=0
        )

    rng = random.Random(3)
    for _ in range(5000):
        thresholds = sorted(rng.uniform(0, 100) for _ in range(rng.randint(1, 5)))
        thresholds = [None if rng.random() < 0.15 else t for t in thresholds]
        current = rng.randint(0, len(thresholds))
        value, hysteresis = rng.uniform(-5, 110), rng.choice([0.0, 2.0, 5.0])
        assert next_rank(thresholds, hysteresis, current, value) == by_definition(
            thresholds, hysteresis, current, value
        )


def test_hourly_sums_match_their_definition_on_random_10_minute_and_irregular_histories(rules):
    import random

    def by_definition(rule, observed_at, current, history):
        start = observed_at - rule.window_ms
        earlier = [s for s in history if start < s[0] < observed_at and (observed_at - s[0]) % HOUR_MS == 0]
        return round(current + sum(s[1] or 0.0 for s in earlier), 3)

    rng = random.Random(11)
    for _ in range(2000):
        steps = [
            rng.choice([600_000, 600_000, 600_000, 1_200_000, HOUR_MS, 300_000]) for _ in range(rng.randint(0, 200))
        ]
        times = [T0 + sum(steps[: k + 1]) for k in range(len(steps))]
        history = tuple(  # a reading without a value leaves no sample
            sample_of(t, {"precipitation_1h": round(rng.uniform(0, 40), 1)}) for t in times if rng.random() > 0.1
        )
        observed_at = (times[-1] if times else T0) + rng.choice([600_000, HOUR_MS, 2 * HOUR_MS])
        for rule in (rules.rule("rain_3h"), rules.rule("rain_24h")):
            assert measure(rule, observed_at, {"precipitation_1h": 5.0}, history) == by_definition(
                rule, observed_at, 5.0, history
            )
