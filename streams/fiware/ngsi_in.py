"""Orion subscription notifications (NGSI-v2) in: entities -> SensorReading records. Pure.

A notification is ``{"subscriptionId": …, "data": [entity, …]}`` with each entity *normalized*
(``{"attr": {"type", "value", "metadata"}}``) or *keyValues* (``{"attr": value}``), as the
``Ngsiv2-AttrsFormat`` header says. Each entity is mapped to a station of the region pack by the
pack's table ((Orion, entity id) -> station id, :mod:`streams.fiware.orion_table`), its value read from
the table's attribute (``waterLevel`` / ``precipitation`` by default) and its event time from
``dateObserved`` (or an IoT Agent's ``TimeInstant``). Anything that is not a usable reading raises
``InvalidReading`` with the hub's usual reason codes: unknown entity -> ``unknown_station``, an entity
of another type than the station's -> ``unknown_schema``, missing attributes -> ``missing_field``,
values that are not numbers, times without a zone, wrong units -> ``impossible_value``; then the
usual checks of :func:`streams.observed.readings.validate` apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.fiware.ngsi import ENTITY_TYPE_OF_KIND
from streams.kernel import json_input
from streams.kernel.json_input import JsonInputError
from streams.kernel.messages import AvroRecord
from streams.kernel.model import QUANTITY_UNITS, SensorKind, Station
from streams.observed.readings import (
    IMPOSSIBLE_VALUE,
    MISSING_FIELD,
    UNDECODABLE,
    UNKNOWN_SCHEMA,
    UNKNOWN_STATION,
    InvalidReading,
    finite_number,
)

NORMALIZED, KEY_VALUES = "normalized", "keyValues"
DEFAULT_ATTRIBUTE = {SensorKind.RIVER_LEVEL_GAUGE: "waterLevel", SensorKind.RAIN_GAUGE: "precipitation"}
DEFAULT_QUANTITY = {SensorKind.RIVER_LEVEL_GAUGE: "water_level", SensorKind.RAIN_GAUGE: "precipitation_1h"}
TIME_ATTRIBUTES = ("dateObserved", "TimeInstant")
# metadata unitCode (UN/CEFACT) -> (the hub's unit, factor)
UNIT_CODES = {"MTR": ("m", 1.0), "CMT": ("m", 0.01), "MMT": ("mm", 1.0)}


class NotificationError(InvalidReading):
    """The request is not an NGSI-v2 notification at all (nothing in it can be read): reason ``undecodable``.

    An InvalidReading, so the module has one error type: whatever a notification holds gives entities and
    records, or InvalidReading with a reason.
    """

    def __init__(self, detail: str):
        super().__init__(UNDECODABLE, detail)


@dataclass(frozen=True)
class EntityMapping:
    """One row of a pack's Orion table: which station an Orion entity feeds, from which attribute."""

    orion: str
    entity_id: str
    station_id: str
    attribute: str
    quantity: str
    entity_type: str


def default_mapping(
    orion: str, entity_id: str, station: Station, attribute: str = "", quantity: str = ""
) -> EntityMapping:
    return EntityMapping(
        orion=orion,
        entity_id=entity_id,
        station_id=station.station_id,
        attribute=attribute or DEFAULT_ATTRIBUTE[station.kind],
        quantity=quantity or DEFAULT_QUANTITY[station.kind],
        entity_type=ENTITY_TYPE_OF_KIND[station.kind],
    )


def parse_notification(body: bytes) -> list[Any]:
    """The notification's entities (each still to be checked), or NotificationError."""
    try:
        document = json_input.loads(body)
    except JsonInputError as exc:
        raise NotificationError(str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise NotificationError('not an NGSI-v2 notification: expected {"subscriptionId": …, "data": [entities]}')
    entities: list[Any] = document["data"]  # each checked by entity_record
    return entities


def attrs_format(header: str | None, entity: Mapping[str, Any]) -> str:
    """normalized or keyValues: the Ngsiv2-AttrsFormat header, else what the entity looks like."""
    if header in (NORMALIZED, KEY_VALUES):
        return header
    attributes = [v for k, v in entity.items() if k not in ("id", "type")]
    looks_normalized = attributes and all(isinstance(v, dict) and "value" in v for v in attributes)
    return NORMALIZED if looks_normalized else KEY_VALUES


def _value_and_metadata(entity: Mapping[str, Any], name: str, fmt: str) -> tuple[Any, Mapping[str, Any]]:
    raw = entity.get(name)
    if fmt == KEY_VALUES:
        return raw, {}
    if raw is None:
        return None, {}
    if not isinstance(raw, dict) or "value" not in raw:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"attribute {name} is {raw!r}, expected {{'type': …, 'value': …}}")
    metadata = raw.get("metadata") or {}
    return raw["value"], metadata if isinstance(metadata, dict) else {}


def _event_time(entity: Mapping[str, Any], fmt: str, where: str) -> int:
    for name in TIME_ATTRIBUTES:
        value, _ = _value_and_metadata(entity, name, fmt)
        if value is None:
            continue
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise InvalidReading(IMPOSSIBLE_VALUE, f"{where}: {name} {value!r} is not an ISO 8601 time")
        if moment.tzinfo is None:
            raise InvalidReading(IMPOSSIBLE_VALUE, f"{where}: {name} {value!r} has no time zone (Z or ±hh:mm)")
        return int(moment.timestamp() * 1000)
    raise InvalidReading(MISSING_FIELD, f"{where}: no dateObserved (or TimeInstant)")


def _measurement(entity: Mapping[str, Any], mapping: EntityMapping, fmt: str, where: str) -> AvroRecord:
    value, metadata = _value_and_metadata(entity, mapping.attribute, fmt)
    if value is None:
        raise InvalidReading(MISSING_FIELD, f"{where}: no attribute {mapping.attribute}")
    number = finite_number(value)
    if number is None:
        raise InvalidReading(IMPOSSIBLE_VALUE, f"{where}: {mapping.attribute} is {value!r:.80}, expected a number")
    unit = QUANTITY_UNITS[mapping.quantity]
    code = (metadata.get("unitCode") or {}).get("value") if isinstance(metadata.get("unitCode"), dict) else None
    if code is not None:
        known = UNIT_CODES.get(code) if isinstance(code, str) else None
        if known is None or known[0] != unit:
            raise InvalidReading(
                IMPOSSIBLE_VALUE, f"{where}: {mapping.attribute} in unitCode {code!r:.40}, expected one for {unit}"
            )
        number = number * known[1]
    return {"quantity": mapping.quantity, "value": number, "unit": unit}


def entity_record(
    entity: Any,
    *,
    orion: str,
    fmt_header: str | None,
    mappings: Mapping[tuple[str, str], EntityMapping],
    stations: Mapping[str, Station],
    produced_at: int,
) -> AvroRecord:
    """One notified entity as a SensorReading record (not yet validated), or InvalidReading."""
    if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
        raise InvalidReading(MISSING_FIELD, f"entity {str(entity)[:80]!r} has no id")
    entity_id = entity["id"]
    where = f"entity {entity_id}"
    mapping = mappings.get((orion, entity_id))
    if mapping is None or mapping.station_id not in stations:
        raise InvalidReading(UNKNOWN_STATION, f"{where} of Orion {orion} is not in the region pack's Orion table")
    if entity.get("type") != mapping.entity_type:
        raise InvalidReading(
            UNKNOWN_SCHEMA,
            f"{where} is of type {entity.get('type')!r}; station {mapping.station_id} takes {mapping.entity_type}",
        )
    fmt = attrs_format(fmt_header, entity)
    station = stations[mapping.station_id]
    return {
        "station_id": station.station_id,
        "sensor_kind": station.kind.avro_symbol,
        "observed_at": _event_time(entity, fmt, where),
        "location": None,
        "measurements": [_measurement(entity, mapping, fmt, where)],
        "quality": "OK",
        "source": f"orion:{orion}",
        "produced_at": produced_at,
    }
