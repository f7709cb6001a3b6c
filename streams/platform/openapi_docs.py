"""The OpenAPI 3.1 documents of the hub's HTTP doors (``openapi/<door>.yaml``), read and checked on load.

Each server serves its own at ``/openapi.json``; the documents live in the checkout (found like ``avro/``),
are validated with openapi-spec-validator and fuzzed against the live servers by the tests
(``tests/integration/test_openapi_doors.py``); see docs/interfaces.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.kernel.errors import ConfigError
from streams.platform.settings import project_root
from streams.platform.yamlfile import read_yaml

DOORS = ("gateway", "feed", "web", "registry", "history")


def openapi_path(door: str) -> Path:
    return project_root() / "openapi" / f"{door}.yaml"


def load_openapi(door: str) -> dict[str, Any]:
    """One door's document, as data (the server serves it as JSON)."""
    if door not in DOORS:
        raise ValueError(f"no HTTP door {door!r}; the doors are {DOORS}")
    path = openapi_path(door)
    document = read_yaml(path, f"OpenAPI document of {door}")
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise ConfigError(path, "not an OpenAPI 3.1 document", where="openapi", expected="openapi: 3.1.x")
    if not isinstance(document.get("paths"), dict):
        raise ConfigError(path, "no paths", where="paths", expected="a mapping of the door's paths")
    return document
