"""What long-running readers keep stays bounded: the feed's and the map's alert episodes (found by the soak)."""

from __future__ import annotations

import pytest

from streams.delivery.atom import CurrentAlerts
from streams.delivery.cap import cap_identifier
from streams.kernel.times import HOUR_MS, parse_jst
from streams.packs.region_pack import load_pack
from streams.publicmap.view import PublicMap, RegionView
from tests.support.web_data import alert, cancel_of

START = parse_jst("2023-09-04T13:00", option="t")


def _episodes(days: int):
    """One public episode a day, raised at 13:00 and cancelled at 15:00 (event time), for ``days`` days."""
    for day in range(days):
        raised_at = START + day * 24 * HOUR_MS
        raised = alert(alert_id=f"tochigi-rain_1h-41277-{day:04d}", observed_at=raised_at)
        yield raised
        yield cancel_of(raised, raised_at + 2 * HOUR_MS)


def test_the_feed_forgets_episodes_long_over_and_keeps_what_it_still_lists():
    alerts = CurrentAlerts(prune_every=1)

    for record in _episodes(400):
        alerts.apply(record)

    assert len(alerts.latest) <= 2 and len(alerts.by_identifier) <= 4, "a year of alerts, a day's worth kept"
    last = cancel_of(alert(alert_id="tochigi-rain_1h-41277-0399", observed_at=START + 399 * 24 * HOUR_MS), 0)
    assert [r["alert_id"] for r in alerts.current()] == [last["alert_id"]], "the last all-clear is still listed"
    assert cap_identifier(last["alert_id"], 1) in alerts.by_identifier


def test_an_open_episode_and_a_recent_cancel_are_never_forgotten():
    alerts = CurrentAlerts(prune_every=1)
    open_one = alert(alert_id="tochigi-rain_1h-41172-open", observed_at=START)
    alerts.apply(open_one)

    for record in _episodes(30):
        alerts.apply(record)

    assert open_one["alert_id"] in alerts.latest
    assert cap_identifier(open_one["alert_id"], open_one["sequence"]) in alerts.by_identifier
    assert alerts.prune() == []


def test_a_relayed_alert_past_its_expiry_is_forgotten_once_the_retention_has_passed_too():
    alerts = CurrentAlerts(prune_every=1)
    expiring = alert(alert_id="tochigi-jma-record_rain-0001", observed_at=START, expires=START + HOUR_MS)
    alerts.apply(expiring)
    later = START + HOUR_MS + alerts.cancel_retention_ms

    alerts.apply(alert(alert_id="tochigi-rain_1h-41277-late", observed_at=later))
    kept_at_the_horizon = expiring["alert_id"] in alerts.latest
    alerts.apply(alert(alert_id="tochigi-rain_1h-41277-later", observed_at=later + 1))

    assert kept_at_the_horizon, "still listed as ended for the retention"
    assert expiring["alert_id"] not in alerts.latest
    assert cap_identifier(expiring["alert_id"], expiring["sequence"]) not in alerts.by_identifier


def test_with_the_default_prune_interval_a_year_of_daily_episodes_keeps_a_bounded_number():
    alerts = CurrentAlerts()

    for record in _episodes(365):
        alerts.apply(record)

    assert len(alerts.latest) <= alerts.prune_every // 2 + 2 and len(alerts.by_identifier) <= alerts.prune_every + 4


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


def test_the_map_forgets_the_first_sight_of_episodes_the_feed_forgot(tochigi):
    public_map = PublicMap([RegionView.of(tochigi)])
    public_map.feed.prune_every = 1

    public_map.apply(alerts=list(_episodes(200)))

    assert len(public_map.first_seen) <= 2 and len(public_map.feed.latest) <= 2
