"""AMeDAS 10-minute map files read into readings: the quality flags, and a changed layout that is never silent."""

from __future__ import annotations

import pytest

from streams.kernel.times import parse_jst
from streams.observed.amedas_map import LayoutError, map_file, parse_latest_time, readings_of

T = parse_jst("2023-09-04T15:00", option="t")
STATIONS = {"41277": object(), "41331": object()}


def values(reading):
    return {m["quantity"]: m["value"] for m in reading["measurements"]}


def test_a_value_counts_only_with_flag_zero_and_otherwise_is_missing():
    document = {
        "41277": {"precipitation10m": [12.5, 0], "precipitation1h": [71.0, 0], "precipitation24h": [None, 5]},
        "41331": {"precipitation10m": [3.0, 1], "precipitation1h": [None, 0], "precipitation24h": [0, 6]},
        "99999": {"precipitation1h": [1.0, 0]},
    }

    utsunomiya, mooka = readings_of(document, STATIONS, T)

    assert values(utsunomiya) == {"precipitation_10min": 12.5, "precipitation_1h": 71.0, "precipitation_24h": None}
    assert utsunomiya["quality"] == "OK" and utsunomiya["observed_at"] == T
    assert values(mooka) == {"precipitation_10min": None, "precipitation_1h": None, "precipitation_24h": None}
    assert mooka["quality"] == "MISSING"


def test_an_empty_map_is_normal_and_a_station_not_in_it_gives_nothing():
    assert readings_of({}, STATIONS, T) == []
    assert readings_of({"11001": {"precipitation1h": [0.0, 0]}}, STATIONS, T) == []


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"41277": [1, 0]},
        {"41277": {"precipitation1h": 1.0}},
        {"41277": {"precipitation1h": [1.0, "0"]}},
        {"41277": {"precipitation1h": ["1.0", 0]}},
        {"41277": {"rain1h": [1.0, 0]}, "41331": {"rain1h": [0.0, 0]}},
    ],
    ids=["not-an-object", "station-not-an-object", "not-a-pair", "flag-not-int", "value-not-number", "renamed"],
)
def test_a_changed_layout_raises_a_clear_error(document):
    with pytest.raises(LayoutError):
        readings_of(document, STATIONS, T)


def test_file_names_and_latest_time_follow_jma_s_layout():
    assert map_file(T) == "map/20230904150000.json"
    assert parse_latest_time("2023-09-04T15:00:00+09:00\n") == T
    with pytest.raises(LayoutError):
        parse_latest_time("<html>maintenance</html>")
    with pytest.raises(LayoutError):
        parse_latest_time("2023-09-04T15:05:00+09:00")
