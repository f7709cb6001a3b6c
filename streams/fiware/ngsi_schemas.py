"""FIWARE Smart Data Models JSON Schemas (``fiware/smart-data-models/``), loaded once from the checkout.

Every remote ``$ref`` (``https://smart-data-models.github.io/…``) is answered from the local copies:
nothing is fetched. The schemas describe an entity's keyValues form, so a normalized entity is
checked after projecting each attribute to its value. ``format`` (date-time, uri) is asserted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from streams.fiware.ngsi import ALERT, WATER_OBSERVED, WEATHER_OBSERVED, key_values
from streams.platform.settings import project_root

SDM = "https://smart-data-models.github.io"
SHARED = {
    f"{SDM}/data-models/common-schema.json": "data-models/common-schema.json",
    f"{SDM}/dataModel.Alert/alert-schema.json": "dataModel.Alert/alert-schema.json",
    f"{SDM}/dataModel.Weather/weather-schema.json": "dataModel.Weather/weather-schema.json",
    f"{SDM}/dataModel.Environment/Environment-schema.json": "dataModel.Environment/Environment-schema.json",
}
ENTITY_SCHEMAS = {
    ALERT: "dataModel.Alert/Alert/schema.json",
    WEATHER_OBSERVED: "dataModel.Weather/WeatherObserved/schema.json",
    WATER_OBSERVED: "dataModel.Environment/WaterObserved/schema.json",
}


def models_dir() -> Path:
    return project_root() / "fiware" / "smart-data-models"


def _load(relative: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((models_dir() / relative).read_text(encoding="utf-8"))
    return schema


def _offline(uri: str) -> Resource:
    # referencing declares its attrs classes with the pre-PEP 681 __dataclass_transform__, unread by mypy
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@functools.lru_cache(maxsize=1)
def validators() -> dict[str, Draft202012Validator]:
    """One validator per entity type, with every $ref resolved from the local copies."""
    schemas = {t: _load(p) for t, p in ENTITY_SCHEMAS.items()}
    resources = [(url, Resource.from_contents(_load(p))) for url, p in SHARED.items()]
    resources += [(s["$id"], Resource.from_contents(s)) for s in schemas.values()]
    registry = Registry(retrieve=_offline).with_resources(resources)  # type: ignore[call-arg]  # (as above)
    return {t: Draft202012Validator(s, registry=registry, format_checker=FormatChecker()) for t, s in schemas.items()}


def schema_errors(entity: Mapping[str, Any]) -> list[str]:
    """Why the entity (normalized or keyValues) does not follow its Smart Data Model; empty when it does."""
    validator = validators().get(str(entity.get("type")))
    if validator is None:
        return [f"no Smart Data Model here for type {entity.get('type')!r} (known: {', '.join(ENTITY_SCHEMAS)})"]
    attributes = [v for k, v in entity.items() if k not in ("id", "type")]
    normalized = bool(attributes) and all(isinstance(v, dict) and "value" in v for v in attributes)
    instance = key_values(entity) if normalized else entity
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(entity)'}: {e.message[:200]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]
