"""Records into rows and back: a missing value stays missing with its quality, positions, delivered topics, and
alert lines exactly as `bosai replay --alerts-out` writes them."""

from __future__ import annotations

import shapely

from streams.history.rows import Source, alert_line, alert_row, reading_columns, reading_line, reading_row
from streams.kernel.alerts import alert_line as replay_alert_line
from streams.kernel.times import jst_iso
from tests.support.history_archive import T0, alert, enriched, stations_of


def test_a_value_jma_did_not_publish_stays_missing_with_its_quality(tochigi, tochigi_topics):
    key, row = reading_row(
        enriched("41277", T0, None, 12.5), Source(tochigi_topics.enriched, 3, 7), stations_of(tochigi)
    )

    assert row["precipitation_1h"] is None and row["precipitation_24h"] == 12.5
    assert row["quality"] == "MISSING"
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == (tochigi_topics.enriched, 3, 7)
    assert key.folder == "readings/region=tochigi/date=2023-09-04"
    columns = reading_columns([{**row, "observed_ms": row["observed_at"]}])
    line = reading_line({**row, "observed_ms": row["observed_at"]}, columns)
    assert columns == ["observed_at", "station_id", "precipitation_1h", "precipitation_24h", "quality"]
    assert line == {
        "observed_at": jst_iso(T0),
        "station_id": "41277",
        "precipitation_1h": None,
        "precipitation_24h": 12.5,
        "quality": "MISSING",
    }


def test_a_reading_without_its_own_position_gets_its_stations_as_a_wkb_point(tochigi, tochigi_topics):
    station = tochigi.stations["41277"]
    _, row = reading_row(enriched("41277", T0, 1.0), Source("t", 0, 0), stations_of(tochigi))
    _, own = reading_row(enriched("41277", T0, 1.0, location={"lat": 36.0, "lon": 139.0}), Source("t", 0, 1), {})

    assert (row["lon"], row["lat"]) == (station.lon, station.lat)
    assert shapely.from_wkb(row["geometry"]).equals(shapely.Point(station.lon, station.lat))
    assert (own["lon"], own["lat"], own["alt_m"]) == (139.0, 36.0, None)


def _back(row: dict) -> dict:
    return alert_line({**row, "observed_ms": row["observed_at"], "expires_ms": row["expires"]})


def test_an_archived_alert_reads_back_as_the_replays_line_with_the_topics_it_was_delivered_to(tochigi_topics):
    for record in (alert(0), alert(1, hour=2), alert(0, sharing="INTERNAL"), alert(0, status="Exercise")):
        _, row = alert_row(record, Source(tochigi_topics.alerts, 0, 0), tochigi_topics)
        delivered = {tochigi_topics.alerts}
        if record["status"] == "Actual" and record["sharing_level"] != "INTERNAL":
            delivered |= {tochigi_topics.municipal["09201"], tochigi_topics.public}

        assert _back(row) == replay_alert_line(record, delivered)
