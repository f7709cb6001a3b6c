"""The hub's events as FIWARE NGSI-v2 entities (Orion), following the Smart Data Models. Pure.

Out: an alert event becomes an ``Alert`` entity (one per alert episode, upserted as it escalates and
clears); a station's latest reading becomes a ``WeatherObserved`` (rain gauge) or ``WaterObserved``
(river gauge) entity. Entities are NGSI-v2 *normalized* (``{"attr": {"type", "value", "metadata"}}``)
and go to Orion's ``POST /v2/op/update`` with ``actionType: append``.

Where the models stop, the hub extends them only as they allow (no schema sets
``additionalProperties: false``; enumerations are never stretched):

- landslide (土砂災害) is not among Alert's sub-categories: such alerts carry ``category:
  naturalDisaster``, no ``subCategory``, and ``data.hazard: "landslide"`` (``data`` is the model's
  own free payload);
- a cleared alert (CAP Cancel) gets ``validTo`` = the time it was cleared and ``severity:
  informational`` (the model has no status attribute), and ``data.msgType: "Cancel"``;
- ``waterLevel`` has minimum 0: a gauge reading below its zero (量水標零点) leaves ``waterLevel`` out
  and carries the value, any sign, in ``gaugeWaterLevel`` (present on every WaterObserved).

Orion refuses ``< > " ' = ; ( )`` in values: they become their full-width forms (（ ） ＝ …), which
read the same to a Japanese reader. Entity ids use only characters both Orion and the models'
identifier pattern accept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.kernel.access import Principal, visible
from streams.kernel.alerts import CAP_MSG_TYPE
from streams.kernel.messages import AvroRecord
from streams.kernel.model import SensorKind, Station

FORBIDDEN_CHARS = "<>\"'=;()"
_FULL_WIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in FORBIDDEN_CHARS})
_ID_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
MAX_ID = 256

ALERT, WEATHER_OBSERVED, WATER_OBSERVED = "Alert", "WeatherObserved", "WaterObserved"
ENTITY_TYPE_OF_KIND = {SensorKind.RAIN_GAUGE: WEATHER_OBSERVED, SensorKind.RIVER_LEVEL_GAUGE: WATER_OBSERVED}
DATA_PROVIDER = "bosai hub"
JMA_SOURCE = "https://www.jma.go.jp/"
JMA_CREDIT = "出典：気象庁"

# CAP severity -> the Alert model's severity.
# An NGSI v2 entity, normalized: id, type, and each attribute as {type, value, metadata} (Orion's JSON).
Entity = dict[str, Any]
Attribute = dict[str, Any]  # {type, value, metadata}

SEVERITY = {"Extreme": "critical", "Severe": "high", "Moderate": "medium", "Minor": "low", "Unknown": "informational"}
# JMA's exercises and tests (Control/Status 訓練 / 試験) reach only a prefecture's Orion, marked so no
# dashboard mistakes them for the real thing.
EXERCISE_MARK = {"Exercise": "【訓練】", "Test": "【試験】"}
# UN/CEFACT common codes, as the Smart Data Models write units (metadata unitCode).
UNIT_CODE = {"mm": "MMT", "m": "MTR"}
# Reading quantities on a WeatherObserved: precipitation is the model's (over the preceding hour);
# the others are the hub's extensions, named like it.
RAIN_ATTRIBUTES = {
    "precipitation_1h": "precipitation",
    "precipitation_3h": "precipitation3h",
    "precipitation_24h": "precipitation24h",
    "precipitation_increment": "precipitationIncrement",
}


# -- values Orion accepts ----------------------------------------------------------------------------


def sanitise(value: Any) -> Any:
    """The value with Orion's forbidden characters replaced by their full-width forms, at any depth."""
    if isinstance(value, str):
        return value.translate(_FULL_WIDTH)
    if isinstance(value, Mapping):
        return {sanitise(k): sanitise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitise(v) for v in value]
    return value


def has_forbidden(value: Any) -> bool:
    """Whether Orion would refuse this value (a forbidden character in any string inside it)."""
    if isinstance(value, str):
        return any(c in FORBIDDEN_CHARS for c in value)
    if isinstance(value, Mapping):
        return any(has_forbidden(k) or has_forbidden(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_forbidden(v) for v in value)
    return False


def _encode_part(part: str) -> str:
    """Letters, digits, '_', '-', '.' as they are; anything else as ~XX per UTF-8 byte (injective)."""
    return "".join(c if c in _ID_SAFE else "".join(f"~{b:02X}" for b in c.encode()) for c in part)


def entity_id(entity_type: str, *parts: str) -> str:
    """``urn:ngsi-ld:<type>:<part>:<part>…``: ASCII that Orion's and the models' id rules accept, ≤ 256."""
    text = f"urn:ngsi-ld:{entity_type}:" + ":".join(_encode_part(p) for p in parts)
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]
    return f"{text[: MAX_ID - 17]}~{digest}"


def valid_entity_id(text: object) -> bool:
    """Orion's rules for ids: 1..256 printable ASCII, no whitespace, no & ? / #, no forbidden character."""
    return (
        isinstance(text, str)
        and 1 <= len(text) <= MAX_ID
        and all(0x21 <= ord(c) <= 0x7E for c in text)
        and not any(c in "&?/#" + FORBIDDEN_CHARS for c in text)
    )


def iso_utc(epoch_ms: int) -> str:
    """2023-09-04T04:00:00.000Z (the models' ISO 8601 UTC, as Orion renders DateTime)."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """An ISO 8601 time with a zone (as Orion renders DateTime) -> epoch milliseconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return int(moment.timestamp() * 1000)


def _attr(value: Any, ngsi_type: str, **metadata: tuple[str, Any]) -> Attribute:
    out: Attribute = {"type": ngsi_type, "value": sanitise(value)}
    if metadata:
        out["metadata"] = {name: {"type": t, "value": sanitise(v)} for name, (t, v) in metadata.items()}
    return out


def _number(value: float, unit: str) -> Attribute:
    return _attr(value, "Number", unitCode=("Text", UNIT_CODE[unit])) if unit in UNIT_CODE else _attr(value, "Number")


def _point(lat: float, lon: float) -> Attribute:
    return _attr({"type": "Point", "coordinates": [lon, lat]}, "geo:json")


def key_values(entity: Mapping[str, Any]) -> Entity:
    """A normalized entity as keyValues (what Orion returns with options=keyValues)."""
    return {k: v if k in ("id", "type") else v["value"] for k, v in entity.items()}


# -- alerts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertKind:
    """How an alert's rule reads in the Alert model."""

    category: str  # the model's category
    sub_category: str | None  # the model's subCategory, None where its closed list has nothing that fits
    hazard: str  # the hub's word, in data.hazard: heavy_rain, river_flood, landslide, …


def alert_kind(rule: str, unit: str = "", warning_level: int | None = None) -> AlertKind:
    """The Alert model's category and sub-category for a rule id (a pack may name its rules freely)."""
    name = rule.lower()
    if "landslide" in name or "dosha" in name:
        return AlertKind("naturalDisaster", None, "landslide")
    if "flood" in name or "river" in name or unit == "m":
        return AlertKind("naturalDisaster", "flood" if warning_level == 5 else "floodRisk", "river_flood")
    if "rain" in name or unit == "mm":
        return AlertKind("weather", "rainfall", "heavy_rain")
    return AlertKind("naturalDisaster", None, name)


def alert_entity_id(alert_id: str) -> str:
    return entity_id(ALERT, "bosai", alert_id)


def observation_entity_id(region: str, station: Station) -> str:
    return entity_id(ENTITY_TYPE_OF_KIND[station.kind], "bosai", region, station.station_id)


def _alert_data(alert: AvroRecord, kind: AlertKind) -> dict[str, Any]:
    """The hub's details in the model's free ``data`` payload (None values left out)."""
    data = {
        "alertId": alert["alert_id"],
        "sequence": alert["sequence"],
        "msgType": CAP_MSG_TYPE.get(alert["msg_type"], alert["msg_type"]),
        "transition": alert["transition"],
        "hazard": kind.hazard,
        "rule": alert["rule"],
        "level": alert["level"],
        "warningLevel": alert.get("warning_level"),
        "capSeverity": alert["severity"],
        "sharingLevel": alert["sharing_level"],
        "status": alert.get("status", "Actual"),
        "issuer": alert.get("source", "hub"),
        "stationId": alert.get("station_id"),
        "value": alert.get("value"),
        "unit": alert.get("unit") or None,
        "threshold": alert.get("threshold"),
        "municipalityCodes": list(alert["municipality_codes"]),
        "areaDescription": alert["area"]["description"],
    }
    official = alert.get("official")
    if official:
        data["official"] = {
            "infoKind": official["info_kind"],
            "headTitle": official["head_title"],
            "headline": official.get("headline", ""),
            "publishingOffice": official["publishing_office"],
            "eventId": official["event_id"],
            "serial": official["serial"],
            "infoType": official["info_type"],
            "credit": official.get("credit", JMA_CREDIT),
        }
    return {k: v for k, v in data.items() if v is not None}


def alert_entity(alert: AvroRecord, *, source_entity_id: str | None = None) -> Entity:
    """One alert event as the episode's Alert entity (normalized); a Cancel marks it cleared."""
    cancelled = alert["msg_type"] == "CANCEL"
    kind = alert_kind(alert["rule"], alert.get("unit", ""), alert.get("warning_level"))
    entity: Entity = {
        "id": alert_entity_id(alert["alert_id"]),
        "type": ALERT,
        "category": _attr(kind.category, "Text"),
        "severity": _attr("informational" if cancelled else SEVERITY.get(alert["severity"], "informational"), "Text"),
        "dateIssued": _attr(iso_utc(alert["observed_at"]), "DateTime"),
        "name": _attr(alert["event"], "Text"),
        "description": _attr(EXERCISE_MARK.get(alert.get("status", "Actual"), "") + alert["headline"], "Text"),
        "dataProvider": _attr(DATA_PROVIDER, "Text"),
        "data": _attr(_alert_data(alert, kind), "StructuredValue"),
    }
    if kind.sub_category:
        entity["subCategory"] = _attr(kind.sub_category, "Text")
    if alert["msg_type"] == "ALERT":
        entity["validFrom"] = _attr(iso_utc(alert["observed_at"]), "DateTime")
    if cancelled:
        entity["validTo"] = _attr(iso_utc(alert["observed_at"]), "DateTime")
    elif alert.get("expires"):
        entity["validTo"] = _attr(iso_utc(alert["expires"]), "DateTime")
    if alert.get("source") == "jma":
        entity["alertSource"] = _attr(JMA_SOURCE, "URL")
        entity["source"] = _attr(JMA_CREDIT, "Text")
    else:
        entity["alertSource"] = (
            _attr(source_entity_id, "Relationship")
            if source_entity_id
            else _attr(f"urn:bosai:{alert['region']}", "URL")
        )
    point = (alert.get("area") or {}).get("point")
    if point:
        entity["location"] = _point(point["lat"], point["lon"])
    return entity


def alert_version(alert: AvroRecord) -> tuple[int, int]:
    """Order of an alert episode's messages: a later one must never be overwritten by an earlier one."""
    return (alert["sequence"], alert["observed_at"])


# -- observations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """What an observation entity says about where its station is."""

    region: str
    prefecture_name: str
    municipality_name: str | None


def _common(station: Station, place: Place, observed_at: int, lat: float, lon: float, source: str) -> Entity:
    address = {"addressCountry": "JP", "addressRegion": place.prefecture_name}
    if place.municipality_name:
        address["addressLocality"] = place.municipality_name
    return {
        "dateObserved": _attr(iso_utc(observed_at), "DateTime"),
        "location": _point(lat, lon),
        "address": _attr(address, "StructuredValue"),
        "name": _attr(station.name, "Text"),
        "alternateName": _attr(station.name_en, "Text"),
        "stationCode": _attr(station.station_id, "Text"),
        "dataProvider": _attr(DATA_PROVIDER, "Text"),
        "source": _attr(JMA_CREDIT if source.startswith("jma") else source or DATA_PROVIDER, "Text"),
    }


def observation_entity(enriched: AvroRecord, station: Station, place: Place) -> Entity | None:
    """A valid reading (the EnrichedReading record) as its station's latest observation; None when its
    main value (1-hour rainfall, water level) is missing — the entity then keeps the last complete one."""
    reading = enriched["reading"]
    values = {m["quantity"]: m["value"] for m in reading["measurements"]}
    location = reading.get("location") or {"lat": station.lat, "lon": station.lon}
    entity: Entity = {"id": observation_entity_id(place.region, station), "type": ENTITY_TYPE_OF_KIND[station.kind]}
    common = _common(
        station, place, reading["observed_at"], location["lat"], location["lon"], reading.get("source", "")
    )
    if station.kind is SensorKind.RIVER_LEVEL_GAUGE:
        level = values.get("water_level")
        if level is None:
            return None
        entity |= common | {"gaugeWaterLevel": _number(level, "m")}
        if level >= 0:
            entity["waterLevel"] = _number(level, "m")
        return entity
    if values.get("precipitation_1h") is None and values.get("precipitation_increment") is None:
        return None
    entity |= common
    for quantity, attribute in RAIN_ATTRIBUTES.items():
        if values.get(quantity) is not None:
            entity[attribute] = _number(values[quantity], "mm")
    return entity


# Model attributes an observation may lack (a gauge below its zero, a rain gauge reporting only
# increments): when a reading lacks one, the entity's previous value is removed, never left beside
# a newer dateObserved.
REMOVABLE = {WATER_OBSERVED: ("waterLevel",), WEATHER_OBSERVED: ("precipitation",)}


def absent_attributes(entity: Mapping[str, Any]) -> tuple[str, ...]:
    """The removable attributes this entity does not carry (to delete from the Orion's copy)."""
    return tuple(a for a in REMOVABLE.get(entity["type"], ()) if a not in entity)


# -- who sees what -----------------------------------------------------------------------------------

READINGS_NONE, READINGS_OWN, READINGS_ALL = "none", "own_stations", "all"
READINGS_CHOICES = (READINGS_NONE, READINGS_OWN, READINGS_ALL)


def orion_may_see_alert(principals: Sequence[Principal], alert: AvroRecord) -> bool:
    """An Orion sees what one of its principals may see (access_policy.visible); exercises and tests
    (JMA 訓練/試験) only where the prefecture is the reader, as on the Kafka topics."""
    actual = alert.get("status", "Actual") == "Actual"
    return any(visible(p, alert) and (actual or p.role in ("hub", "prefecture")) for p in principals)


def orion_may_see_reading(readings: str, codes: frozenset[str], enriched: AvroRecord) -> bool:
    """``all`` (a prefecture's Orion), ``own_stations`` (stations in its municipalities) or ``none``."""
    if readings == READINGS_ALL:
        return True
    if readings == READINGS_OWN:
        return enriched.get("municipality_code") in codes or enriched.get("city_code") in codes
    return False
