"""A region pack's Orion table: which Orion entity feeds which station (``bosai gateway``'s Orion door).

A CSV named in ``region.yaml`` under ``files: {orion_entities: orion_entities.csv}`` (optional; a
pack without it takes no Orion notifications)::

    orion,entity_id,station_id,attribute,quantity
    nasushiobara,urn:ngsi-ld:WaterObserved:nasushiobara-naka-01,R-09-213-01,,
    nasushiobara,RainGauge-07,NS-RAIN-07,rainfall,precipitation_1h

``attribute`` and ``quantity`` may be left empty: a river gauge then reads ``waterLevel`` (metres,
``water_level``) of a ``WaterObserved``, a rain gauge ``precipitation`` (mm over the hour,
``precipitation_1h``) of a ``WeatherObserved``; an optional ``entity_type`` column overrides the type.
Every row is checked: the Orion is in the bridge file, the station in the pack, the id one Orion accepts.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from streams.fiware.ngsi import valid_entity_id
from streams.fiware.ngsi_in import EntityMapping, default_mapping
from streams.kernel.errors import ConfigError
from streams.kernel.model import QUANTITY_UNITS, SensorKind
from streams.kernel.region import RegionPack
from streams.platform.checks import Problems, read_csv
from streams.platform.yamlfile import read_yaml

COLUMNS = ("orion", "entity_id", "station_id", "attribute", "quantity", "entity_type")
REQUIRED = {"orion", "entity_id", "station_id"}
ATTRIBUTE = re.compile(r"[A-Za-z0-9_:.-]{1,256}")
KIND_QUANTITIES = {
    SensorKind.RIVER_LEVEL_GAUGE: {"water_level"},
    SensorKind.RAIN_GAUGE: {q for q in QUANTITY_UNITS if q.startswith("precipitation")},
}

OrionTable = dict[tuple[str, str], EntityMapping]


def table_path(pack: RegionPack) -> Path | None:
    """The pack's Orion table file, when region.yaml names one."""
    manifest = Path(pack.path) / "region.yaml"
    files = (read_yaml(manifest, "region manifest") or {}).get("files") or {}
    name = files.get("orion_entities")
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ConfigError(
            manifest, f"files.orion_entities is {name!r}", where="files", expected="a CSV file in the pack"
        )
    return Path(pack.path) / name


def _row(
    row: dict[str, str], where: str, path: Path, pack: RegionPack, orions: Collection[str], problems: Problems
) -> EntityMapping | None:
    orion, entity_id, station_id = (row.get(k, "").strip() for k in ("orion", "entity_id", "station_id"))
    if orion not in orions:
        problems.add(
            path, f"orion {orion!r}", where=where, expected=f"an Orion of the bridge file ({', '.join(sorted(orions))})"
        )
        return None
    if not valid_entity_id(entity_id):
        problems.add(
            path,
            f"entity_id {entity_id!r}",
            where=where,
            expected="an id Orion accepts (ASCII, ≤ 256, no space & ? / # < > \" ' = ; ( ))",
        )
        return None
    station = pack.stations.get(station_id)
    if station is None:
        problems.add(
            path, f"station {station_id!r} is not in {pack.name}", where=where, expected="a station of the pack"
        )
        return None
    attribute = (row.get("attribute") or "").strip()
    if attribute and not ATTRIBUTE.fullmatch(attribute):
        problems.add(path, f"attribute {attribute!r}", where=where, expected="an NGSI attribute name")
        return None
    quantity = (row.get("quantity") or "").strip()
    if quantity and quantity not in KIND_QUANTITIES[station.kind]:
        problems.add(
            path,
            f"quantity {quantity!r} for {station.kind.value} {station_id}",
            where=where,
            expected=" | ".join(sorted(KIND_QUANTITIES[station.kind])),
        )
        return None
    mapping = default_mapping(orion, entity_id, station, attribute, quantity)
    entity_type = (row.get("entity_type") or "").strip()
    if entity_type:
        if not valid_entity_id(entity_type):
            problems.add(path, f"entity_type {entity_type!r}", where=where, expected="an NGSI type name")
            return None
        mapping = EntityMapping(**{**mapping.__dict__, "entity_type": entity_type})
    return mapping


def load_orion_table(pack: RegionPack, orions: Collection[str]) -> OrionTable:
    """The pack's (Orion, entity id) -> station mappings; every problem reported at once (ConfigError)."""
    path = table_path(pack)
    if path is None:
        return {}
    problems = Problems()
    header, rows = read_csv(path, problems, expected=f"the Orion table: {', '.join(COLUMNS)}")
    if problems:
        raise problems.items[0]
    missing = REQUIRED - set(header)
    if missing:
        raise ConfigError(path, f"missing columns {sorted(missing)}", where="header", expected=", ".join(COLUMNS))
    table: OrionTable = {}
    for number, row in rows:
        where = f"row {number} entity_id={row.get('entity_id', '')!r}"
        mapping = _row(row, where, path, pack, orions, problems)
        if mapping is None:
            continue
        key = (mapping.orion, mapping.entity_id)
        if key in table:
            problems.add(path, f"entity {key[1]} of {key[0]} listed twice", where=where, expected="one row per entity")
            continue
        table[key] = mapping
    if len(problems.items) == 1:
        raise problems.items[0]
    if problems:
        raise ConfigError(path, f"{len(problems.items)} problems:\n  - " + "\n  - ".join(map(str, problems.items)))
    return table
