"""Query filters as SQL, OGC API - Features parameters, and the paging links of a page of items."""

from __future__ import annotations

import pytest

from streams.history.query import (
    MAX_LIMIT,
    Filter,
    QueryError,
    in_bbox,
    page_links,
    parse_bbox,
    parse_datetime,
    parse_limit,
    parse_offset,
)
from streams.kernel.times import parse_jst


def test_a_cli_range_is_half_open_and_an_ogc_interval_closed():
    since, until = parse_jst("2023-09-04", option="f"), parse_jst("2023-09-05", option="t")

    half_open, params = Filter("readings", since_ms=since, until_ms=until, station_ids=("41277",)).where()
    closed, _ = Filter("readings", since_ms=since, until_ms=until, until_inclusive=True).where()

    assert half_open == "epoch_ms(observed_at) >= ? AND epoch_ms(observed_at) < ? AND station_id IN (?)"
    assert params == [since, until, "41277"]
    assert "epoch_ms(observed_at) <= ?" in closed
    assert Filter("readings", since_ms=since, until_ms=until).dates() == ("2023-09-04", "2023-09-04")
    assert Filter("readings", since_ms=since, until_ms=until, until_inclusive=True).dates() == (
        "2023-09-04",
        "2023-09-05",
    )


def test_public_alerts_of_a_municipality_in_a_bbox():
    sql, params = Filter("alerts", municipality="09201", bbox=(139.0, 36.0, 140.0, 37.0), public=True).where()

    assert sql == (
        "list_contains(municipality_codes, ?) AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ? "
        "AND sharing_level = 'PUBLIC' AND status = 'Actual'"
    )
    assert params == ["09201", 139.0, 140.0, 36.0, 37.0]
    assert Filter("readings", station_ids=()).where()[0] == "false"
    assert Filter("readings").where() == ("true", [])


def test_ogc_datetime_instants_and_intervals():
    at = parse_jst("2023-09-04T15:00+09:00", option="t")

    assert parse_datetime("2023-09-04T06:00:00Z") == (at, at)
    assert parse_datetime("2023-09-04T15:00:00+09:00/..") == (at, None)
    assert parse_datetime("../2023-09-04T06:00:00Z") == (None, at)
    assert parse_datetime(None) == (None, None)
    for bad, reason in [("yesterday", "not RFC 3339"), ("2023-09-04T15:00", "no time zone"), ("..", "cannot")]:
        with pytest.raises(QueryError, match=reason):
            parse_datetime(bad)
    with pytest.raises(QueryError, match="ends before it starts"):
        parse_datetime("2023-09-05T00:00Z/2023-09-04T00:00Z")


def test_ogc_bbox_limit_and_offset():
    assert parse_bbox("139.5,36.2,140.1,37.0") == (139.5, 36.2, 140.1, 37.0)
    assert parse_bbox("139.5,36.2,0,140.1,37.0,100") == (139.5, 36.2, 140.1, 37.0)
    assert parse_bbox(None) is None
    assert parse_bbox("170,-20,-170,20") == (170.0, -20.0, -170.0, 20.0)  # across the antimeridian
    assert in_bbox((170.0, -20.0, -170.0, 20.0), (175.0, 0.0, 175.0, 0.0))
    assert not in_bbox((170.0, -20.0, -170.0, 20.0), (139.0, 0.0, 139.0, 0.0))
    assert "lon >= ? OR lon <= ?" in Filter("readings", bbox=(170.0, -20.0, -170.0, 20.0)).where()[0]
    for bad in ("1,2,3", "a,b,c,d", "139,37,140,36"):
        with pytest.raises(QueryError, match="bbox"):
            parse_bbox(bad)
    assert parse_limit(None) == 100 and parse_limit("20") == 20 and parse_limit("999999") == MAX_LIMIT
    assert parse_offset("") == 0 and parse_offset("40") == 40
    for call, bad in ((parse_limit, "0"), (parse_limit, "x"), (parse_offset, "-1")):
        with pytest.raises(QueryError):
            call(bad)
    assert in_bbox((139.0, 36.0, 140.0, 37.0), (139.5, 36.5, 139.5, 36.5))
    assert not in_bbox((139.0, 36.0, 140.0, 37.0), (141.0, 36.5, 142.0, 36.6))
    assert in_bbox(None, (0, 0, 0, 0))


def test_paging_links_keep_the_filters_and_say_next_and_prev():
    query = {"bbox": "139,36,140,37", "datetime": "2023-09-04T00:00:00+09:00/..", "limit": "10", "offset": "10"}

    links = {
        link["rel"]: link["href"]
        for link in page_links("http://h/x", query, offset=10, limit=10, returned=10, matched=25)
    }

    assert links["next"] == "http://h/x?bbox=139,36,140,37&datetime=2023-09-04T00:00:00%2B09:00%2F..&limit=10&offset=20"
    assert links["prev"].endswith("limit=10&offset=0")
    last = page_links("http://h/x", {}, offset=20, limit=10, returned=5, matched=25)
    assert [link["rel"] for link in last] == ["self", "prev"]
    first = page_links("http://h/x", {}, offset=0, limit=10, returned=3, matched=3)
    assert [link["rel"] for link in first] == ["self"]
