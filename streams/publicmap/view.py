"""The residents' map (住民向け地図, GIS 発信): what the public page shows, decided here (pure).

``PublicMap`` is fed alert events (from the public alerts topics) and enriched readings, and holds what
a resident may see: the current public alerts (one per episode, its latest message), the highest one
per municipality, the latest values of public stations, and the public Atom/CAP messages. It checks
the sharing levels itself as well, whatever topic a record came from: an alert that is not PUBLIC or
not ``Actual``, or a reading of a station whose ``sharing`` is not public, changes nothing.

An alert stays on the map until its episode is cancelled, or until its ``expires`` time has passed in
event time (the newest observation or alert time seen for its region: during a replay the map follows
the replay, and live it follows the observations within their reporting interval).

``apply`` returns a ``Change`` (what a page that has the previous state needs to catch up), so the web
server only moves bytes. GeoJSON for other programs is built by :mod:`streams.publicmap.geojson`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from streams.delivery.atom import CurrentAlerts, feed_entries
from streams.delivery.cap import cap_identifier
from streams.kernel.access import Principal, visible
from streams.kernel.alerts import Level
from streams.kernel.messages import AvroRecord
from streams.kernel.model import SensorKind, Station
from streams.kernel.region import RegionPack
from streams.kernel.rules import Rule, Sample, measure, sample_of
from streams.kernel.times import DAY_MS, HOUR_MS, jst_iso
from streams.publicmap import labels
from streams.publicmap.labels import PageData

PUBLIC_PRINCIPAL = Principal(name="public", role="public", description="anyone: the residents' map", grants=())

# Rolling sums the page shows, computed as the rules do: the reported value when the sensor sends it,
# else summed in event time from increments or whole-hour 1-hour values (streams.kernel.rules.measure).
_RAIN_1H = Rule("map_1h", "cumulative", "precipitation_1h", "mm", (), 0.0, "public", window_ms=HOUR_MS)
_RAIN_24H = Rule("map_24h", "cumulative", "precipitation_24h", "mm", (), 0.0, "public", window_ms=DAY_MS)


@dataclass(frozen=True)
class RegionView:
    """What the map needs of one region pack: names, public stations, English event names."""

    name: str
    prefecture_name: str
    names: Mapping[str, str]  # municipality / designated city code -> name (wards as 横浜市中区)
    stations: Mapping[str, Station]  # public stations only
    events_en: Mapping[tuple[str, str], str]  # (rule, level) -> English event
    bounds: tuple[float, float, float, float]  # lon/lat: west, south, east, north

    @classmethod
    def of(cls, pack: RegionPack) -> RegionView:
        names = {m.code: f"{m.city_name or ''}{m.name}" for m in pack.municipalities}
        names.update(pack.designated_cities)
        levels: list[tuple[str, Level]] = [(r.id, lv) for r in pack.rules.rules for lv in r.levels]
        return cls(
            name=pack.name,
            prefecture_name=pack.prefecture_name,
            names=names,
            stations={sid: s for sid, s in pack.stations.items() if s.is_public},
            events_en={(rule_id, lv.name): lv.event_en for rule_id, lv in levels},
            bounds=pack.index.bounds,
        )


@dataclass
class Change:
    """What changed on the map: alerts added or updated, alerts gone, municipalities re-coloured, stations."""

    alerts: list[PageData] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    municipalities: dict[str, PageData | None] = field(default_factory=dict)  # None: no alert any more
    stations: list[PageData] = field(default_factory=list)
    official_landslide: list[str] | None = None  # the new set of codes, when it changed
    data_time: int | None = None

    @property
    def has_alerts(self) -> bool:
        return bool(self.alerts or self.removed or self.municipalities or self.official_landslide is not None)

    def __bool__(self) -> bool:
        return self.has_alerts or bool(self.stations)

    def alerts_event(self) -> PageData:
        return {
            "alerts": self.alerts,
            "removed": self.removed,
            "municipalities": self.municipalities,
            "official_landslide": self.official_landslide,
            "data_time": self.data_time,
        }

    def stations_event(self) -> PageData:
        return {"stations": self.stations, "data_time": self.data_time}


def is_public_alert(record: AvroRecord) -> bool:
    """Only Actual alerts whose sharing level lets anyone see them (``access_policy.visible``)."""
    return record.get("status", "Actual") == "Actual" and visible(PUBLIC_PRINCIPAL, record)


class PublicMap:
    """The public picture of one or more regions, rebuilt from the topics and kept current."""

    def __init__(self, regions: Sequence[RegionView]):
        self.regions = {r.name: r for r in regions}
        self.feed = CurrentAlerts()  # public alert events: the Atom feed and the CAP messages
        self.first_seen: dict[str, int] = {}  # alert id -> event time of its first message
        self.station_values: dict[tuple[str, str], PageData] = {}
        self._history: dict[tuple[str, str], tuple[Sample, ...]] = {}
        self.data_time: dict[str, int] = {}  # region -> newest event time seen
        self._items: dict[str, PageData] = {}  # the current list, as last computed
        self._statuses: dict[str, PageData] = {}
        self._landslide: list[str] = []
        self.version = 0  # +1 per change: caches and ETags key on it
        self.ignored = 0  # records refused (not public, not Actual, unknown or non-public station)

    # -- input -------------------------------------------------------------------------------------
    def apply(self, alerts: Iterable[AvroRecord] = (), readings: Iterable[AvroRecord] = ()) -> Change:
        """Apply alert events and enriched readings; what changed for a page that had the state before."""
        change = Change()
        for record in alerts:
            self._apply_alert(record)
        for enriched in readings:
            value = self._apply_reading(enriched)
            if value is not None:
                change.stations.append(value)
        if change.stations:  # one entry per station: the newest
            change.stations = list({(s["region"], s["id"]): s for s in change.stations}.values())
        self._diff(change)
        if change:
            self.version += 1
            change.data_time = max(self.data_time.values(), default=None)
        return change

    def _apply_alert(self, record: AvroRecord) -> None:
        if not is_public_alert(record):
            self.ignored += 1
            return
        record = dict(record)
        for forgotten in self.feed.apply(record):  # episodes over for good: bounded memory
            self.first_seen.pop(forgotten, None)
        alert_id = record["alert_id"]
        self.first_seen[alert_id] = min(self.first_seen.get(alert_id, record["observed_at"]), record["observed_at"])
        self._advance(record["region"], record["observed_at"])

    def _apply_reading(self, enriched: AvroRecord) -> PageData | None:
        reading = enriched["reading"]
        region = self.regions.get(enriched.get("region", ""))
        station = region.stations.get(reading["station_id"]) if region else None
        if region is None or station is None:  # unknown, or not public: never shown
            self.ignored += 1
            return None
        key = (region.name, station.station_id)
        observed_at = reading["observed_at"]
        previous = self.station_values.get(key)
        if previous is not None and observed_at <= previous["observed_at"]:
            return None
        values = {m["quantity"]: m["value"] for m in reading["measurements"]}
        history = self._history.get(key, ())
        value = station_value(
            region,
            station,
            observed_at,
            values,
            quality=reading.get("quality", "OK"),
            precipitation_1h=measure(_RAIN_1H, observed_at, values, history),
            precipitation_24h=measure(_RAIN_24H, observed_at, values, history),
        )
        horizon = observed_at - DAY_MS
        kept = tuple(s for s in history if s[0] > horizon)
        sample = sample_of(observed_at, values)
        self._history[key] = kept + (sample,) if sample is not None else kept
        self.station_values[key] = value
        self._advance(region.name, observed_at)
        return value

    def _advance(self, region: str, event_ms: int) -> None:
        if event_ms > self.data_time.get(region, 0):
            self.data_time[region] = event_ms

    # -- what is current ---------------------------------------------------------------------------
    def _is_current(self, record: AvroRecord) -> bool:
        if record["msg_type"] == "CANCEL":
            return False
        expires = record.get("expires")
        return expires is None or expires > self.data_time.get(record["region"], 0)

    def current_records(self) -> list[AvroRecord]:
        """The latest message of every open public episode, newest first."""
        records = [r for r in self.feed.latest.values() if self._is_current(r)]
        return sorted(records, key=lambda r: (r["observed_at"], r["alert_id"]), reverse=True)

    def _diff(self, change: Change) -> None:
        records = self.current_records()
        items = {r["alert_id"]: self.item(r) for r in records}
        change.alerts = [i for alert_id, i in items.items() if self._items.get(alert_id) != i]
        change.removed = sorted(set(self._items) - set(items))
        statuses = self._municipality_statuses(records)
        for code in sorted(set(statuses) | set(self._statuses)):
            if statuses.get(code) != self._statuses.get(code):
                change.municipalities[code] = statuses.get(code)
        landslide = sorted(
            {
                code
                for r in records
                if labels.is_jma(r) and (r.get("official") or {}).get("info_kind") == labels.LANDSLIDE_ALERT_INFO
                for code in r["municipality_codes"]
            }
        )
        if landslide != self._landslide:
            change.official_landslide = landslide
        self._items, self._statuses, self._landslide = items, statuses, landslide

    def _municipality_statuses(self, records: Sequence[AvroRecord]) -> dict[str, PageData]:
        """Per municipality: the highest current alert (its tone and label) and how many there are."""
        tops: dict[str, AvroRecord] = {}
        counts: dict[str, int] = {}
        for record in records:
            for code in record["municipality_codes"]:
                counts[code] = counts.get(code, 0) + 1
                if code not in tops or labels.priority(record) > labels.priority(tops[code]):
                    tops[code] = record
        return {
            code: {
                "code": code,
                "name": self._name(record["region"], code),
                "tone": labels.tone_of(record),
                "label": labels.level_label(record, self._event_en(record)),
                "source": record.get("source", "hub"),
                "alert_id": record["alert_id"],
                "count": counts[code],
            }
            for code, record in sorted(tops.items())
        }

    # -- shown values --------------------------------------------------------------------------------
    def _name(self, region: str, code: str) -> str:
        view = self.regions.get(region)
        return view.names.get(code, code) if view else code

    def _event_en(self, record: AvroRecord) -> str | None:
        view = self.regions.get(record["region"])
        return view.events_en.get((record.get("rule", ""), record.get("level", ""))) if view else None

    def item(self, record: AvroRecord) -> PageData:
        """One entry of the alert list: where, what, level, since when (JST), source, its CAP message."""
        region = self.regions.get(record["region"])
        event_en = self._event_en(record)
        names = [self._name(record["region"], c) for c in record["municipality_codes"]]
        station = region.stations.get(record.get("station_id", "")) if region else None
        identifier = cap_identifier(record["alert_id"], record["sequence"])
        observed_at: int = record["observed_at"]
        since = self.first_seen.get(record["alert_id"], observed_at)
        area_ja = "、".join(names) or record["area"]["description"]
        official = record.get("official") or {}
        return {
            "id": record["alert_id"],
            "sequence": record["sequence"],
            "region": record["region"],
            "municipalities": [
                {"code": c, "name": n} for c, n in zip(record["municipality_codes"], names, strict=True)
            ],
            "area": {"ja": area_ja, "en": area_ja},
            "what": labels.what_label(record, event_en),
            "headline": labels.headline(
                record, station_name_en=station.name_en if station else None, area_en=area_ja, event_en=event_en
            ),
            "level": labels.level_label(record, event_en),
            "warning_level": record.get("warning_level"),
            "tone": labels.tone_of(record),
            "since": since,
            "since_jst": jst_iso(since),
            "updated": record["observed_at"],
            "updated_jst": jst_iso(record["observed_at"]),
            "expires_jst": jst_iso(record["expires"]) if record.get("expires") else None,
            "source": labels.source_label(record),
            "title": official.get("head_title") if labels.is_jma(record) else None,
            "cap": f"/cap/{identifier}.xml",
            "station": {"id": station.station_id, "lat": station.lat, "lon": station.lon} if station else None,
        }

    def alert_items(self) -> list[PageData]:
        return [self.item(r) for r in self.current_records()]

    def municipality_statuses(self) -> dict[str, PageData]:
        return self._municipality_statuses(self.current_records())

    def official_landslide_codes(self) -> list[str]:
        return list(self._landslide)

    def stations(self) -> list[PageData]:
        return [self.station_values[k] for k in sorted(self.station_values)]

    def snapshot(self) -> PageData:
        """Everything the page shows, in one document (the live stream sends changes to it)."""
        return {
            "version": self.version,
            "data_time": max(self.data_time.values(), default=None),
            "alerts": self.alert_items(),
            "municipalities": self.municipality_statuses(),
            "official_landslide": self.official_landslide_codes(),
            "stations": self.stations(),
        }

    def public_feed(self) -> list[AvroRecord]:
        """The entries of ``public.atom``: public alerts, with recent cancels (``atom.CurrentAlerts``)."""
        return feed_entries(self.feed, PUBLIC_PRINCIPAL, public_only=True)

    def cap_record(self, identifier: str) -> AvroRecord | None:
        record = self.feed.by_identifier.get(identifier)
        return record if record is not None and is_public_alert(record) else None


def station_value(
    region: RegionView,
    station: Station,
    observed_at: int,
    values: Mapping[str, float | None],
    *,
    quality: str,
    precipitation_1h: float | None,
    precipitation_24h: float | None,
) -> PageData:
    """A public station's latest values as the page shows them (rain: 1 h and 24 h; river: level and stage)."""
    is_river = station.kind is SensorKind.RIVER_LEVEL_GAUGE
    water_level = values.get("water_level") if is_river else None
    return {
        "id": station.station_id,
        "region": region.name,
        "kind": station.kind.value,
        "name": {"ja": station.name, "en": station.name_en or station.name},
        "municipality": region.names.get(station.municipality_code or "", ""),
        "lat": station.lat,
        "lon": station.lon,
        "observed_at": observed_at,
        "observed_jst": jst_iso(observed_at),
        "quality": quality,
        "precipitation_1h": None if is_river else precipitation_1h,
        "precipitation_24h": None if is_river else precipitation_24h,
        "rain_class": None if is_river else labels.rain_class(precipitation_1h),
        "water_level": water_level,
        "river_stage": labels.river_stage(water_level, station.river_stages) if is_river else None,
    }
