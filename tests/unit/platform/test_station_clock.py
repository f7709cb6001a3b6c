"""The station silence metrics: event time, built when Prometheus scrapes."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.platform.metrics import StationClock

HOUR_S = 3600


def _samples(region: str) -> dict[tuple[str, str], float]:
    exposition = generate_latest(REGISTRY).decode()
    return {
        (sample.name, sample.labels.get("station", "")): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.labels.get("region") == region
        and sample.name.startswith(("bosai_station_silence", "bosai_station_last_reading", "bosai_silent"))
    }


def test_silence_is_event_time_since_each_station_s_last_reading_and_a_silent_station_is_counted():
    clock = StationClock("clocktest", ["A", "B", "C"])
    t0 = 1_693_800_000_000  # ms

    clock.update({"A": t0, "B": t0})
    clock.update({"A": t0 + 2 * HOUR_S * 1000})

    samples = _samples("clocktest")
    assert samples[("bosai_station_silence_seconds", "A")] == 0
    assert samples[("bosai_station_silence_seconds", "B")] == 2 * HOUR_S
    assert samples[("bosai_station_silence_seconds", "C")] == 2 * HOUR_S  # never heard: since the first event
    assert samples[("bosai_station_last_reading_timestamp_seconds", "A")] == t0 / 1000 + 2 * HOUR_S
    assert ("bosai_station_last_reading_timestamp_seconds", "C") not in samples
    assert samples[("bosai_silent_stations", "")] == 2


def test_an_older_reading_does_not_move_a_station_s_clock_back():
    clock = StationClock("clockback", ["A"])
    t0 = 1_693_800_000_000

    clock.update({"A": t0})
    clock.update({"A": t0 - HOUR_S * 1000})

    assert _samples("clockback")[("bosai_station_last_reading_timestamp_seconds", "A")] == t0 / 1000


def test_before_any_reading_a_region_reports_no_silent_station_and_no_per_station_series():
    StationClock("clockquiet", ["A", "B"])

    assert _samples("clockquiet") == {("bosai_silent_stations", ""): 0}
