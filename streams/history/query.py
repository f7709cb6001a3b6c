"""What a query of the archive asks, as values: the filter (time range, stations, municipality, bbox, public
only) turned into SQL with parameters, and OGC API - Features' parameters (``datetime``, ``bbox``, ``limit``,
``offset``) parsed, with the paging links of a page of items.

Times are event times (epoch ms). ``bosai history`` ranges are JST dates or timestamps with ``--to``
exclusive (like ``bosai replay``); an OGC ``datetime`` interval is closed (both ends included), as the
standard says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.history.layout import dates_between

BBox = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat (OGC:CRS84)
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
TIME_COLUMN = {"readings": "observed_at", "alerts": "observed_at", "official": "fetched_at", "deadletters": "failed_at"}
ORDER = {
    "readings": "observed_at, station_id, kafka_topic, kafka_partition, kafka_offset",
    "alerts": "observed_at, station_id, rule, sequence, kafka_offset",
    "official": "fetched_at, kafka_offset",
    "deadletters": "failed_at, kafka_offset",
}


class QueryError(ValueError):
    """A query parameter that cannot be understood: the message says which and what was expected."""


@dataclass(frozen=True)
class Filter:
    """Which rows of one dataset: every condition given must hold."""

    dataset: str
    since_ms: int | None = None
    until_ms: int | None = None
    until_inclusive: bool = False  # OGC intervals are closed; `bosai history --to` is exclusive
    station_ids: tuple[str, ...] | None = None
    municipality: str | None = None  # alerts: a JIS code among the alert's municipality codes
    bbox: BBox | None = None
    public: bool = False  # alerts: sharing level PUBLIC and status Actual only
    regions: tuple[str, ...] | None = None
    alert: tuple[str, int] | None = None  # alerts: one event, by alert id and sequence

    def dates(self) -> tuple[str, str] | None:
        """The JST dates (inclusive) the range may touch: the files to open."""
        until = self.until_ms + 1 if self.until_ms is not None and self.until_inclusive else self.until_ms
        return dates_between(self.since_ms, until)

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (``?`` parameters) and their values."""
        column = TIME_COLUMN[self.dataset]
        clauses: list[str] = []
        params: list[Any] = []
        if self.since_ms is not None:
            clauses.append(f"epoch_ms({column}) >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append(f"epoch_ms({column}) {'<=' if self.until_inclusive else '<'} ?")
            params.append(self.until_ms)
        if self.station_ids is not None:
            if not self.station_ids:
                clauses.append("false")
            else:
                clauses.append(f"station_id IN ({', '.join('?' for _ in self.station_ids)})")
                params.extend(self.station_ids)
        if self.municipality is not None:
            clauses.append("list_contains(municipality_codes, ?)")
            params.append(self.municipality)
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if west <= east:
                clauses.append("lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?")
                params.extend([west, east, south, north])
            else:  # across the antimeridian (OGC: the first longitude above the second)
                clauses.append("(lon >= ? OR lon <= ?) AND lat BETWEEN ? AND ?")
                params.extend([west, east, south, north])
        if self.public:
            clauses.append("sharing_level = 'PUBLIC' AND status = 'Actual'")
        if self.alert is not None:
            clauses.append("alert_id = ? AND sequence = ?")
            params.extend(self.alert)
        if self.regions is not None:
            clauses.append(f"region IN ({', '.join('?' for _ in self.regions)})" if self.regions else "false")
            params.extend(self.regions)
        return (" AND ".join(clauses) or "true"), params


# -- OGC API - Features parameters --------------------------------------------------------------------------


def _instant(text: str, which: str) -> int | None:
    if text in ("", ".."):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f"datetime: {which} {text!r} is not RFC 3339 (e.g. 2023-09-04T15:00:00+09:00)") from None
    if moment.tzinfo is None:
        raise QueryError(f"datetime: {which} {text!r} has no time zone (Z or +09:00)")
    return int(moment.timestamp() * 1000)


def parse_datetime(text: str | None) -> tuple[int | None, int | None]:
    """OGC ``datetime``: an instant, or a closed interval ``start/end`` (``..`` or empty: open)."""
    if text is None or not text.strip():
        return None, None
    if "/" not in text:
        instant = _instant(text.strip(), "instant")
        if instant is None:
            raise QueryError("datetime: an instant cannot be '..'")
        return instant, instant
    start, _, end = text.strip().partition("/")
    since, until = _instant(start, "start"), _instant(end, "end")
    if since is not None and until is not None and since > until:
        raise QueryError(f"datetime: the interval {text!r} ends before it starts")
    return since, until


def parse_bbox(text: str | None) -> BBox | None:
    """OGC ``bbox``: four numbers, lon/lat (OGC:CRS84); six (with heights) are accepted, heights ignored."""
    if text is None or not text.strip():
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise QueryError(f"bbox: {text!r} is not comma-separated numbers") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise QueryError(f"bbox: {len(values)} numbers given, expected 4 (min lon, min lat, max lon, max lat)")
    west, south, east, north = values
    if south > north:
        raise QueryError(f"bbox: {text!r} has its southern latitude above its northern one")
    return west, south, east, north  # west > east: across the antimeridian


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise QueryError(f"limit: {text!r} is not a whole number") from None
    if limit < 1:
        raise QueryError(f"limit: {limit} is below 1")
    return min(limit, MAX_LIMIT)


def parse_offset(text: str | None) -> int:
    if text is None or text == "":
        return 0
    try:
        offset = int(text)
    except ValueError:
        raise QueryError(f"offset: {text!r} is not a whole number") from None
    if offset < 0:
        raise QueryError(f"offset: {offset} is below 0")
    return offset


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~,:")


def _quote(text: str) -> str:
    """Percent-encoding of a query value (RFC 3986: unreserved characters, and ',' ':' as OGC writes them)."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def query_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items())


def in_bbox(bbox: BBox | None, bounds: Sequence[float]) -> bool:
    """Whether a geometry's bounds (min lon, min lat, max lon, max lat) meet the bbox."""
    if bbox is None:
        return True
    if bounds[3] < bbox[1] or bounds[1] > bbox[3]:
        return False
    if bbox[0] <= bbox[2]:
        return not (bounds[2] < bbox[0] or bounds[0] > bbox[2])
    return bounds[2] >= bbox[0] or bounds[0] <= bbox[2]  # across the antimeridian


def page_links(
    base: str, query: Mapping[str, str], *, offset: int, limit: int, returned: int, matched: int | None
) -> list[dict[str, str]]:
    """``self``, and ``next`` / ``prev`` when there are more items after / before this page (same filters)."""
    kept = {k: v for k, v in query.items() if k not in ("offset", "limit")}

    def link(rel: str, at: int) -> dict[str, str]:
        params = query_string({**kept, "limit": str(limit), "offset": str(at)})
        return {"rel": rel, "type": "application/geo+json", "title": rel, "href": f"{base}?{params}"}

    links = [link("self", offset)]
    more = returned == limit if matched is None else offset + returned < matched
    if more:
        links.append(link("next", offset + returned))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    return links
