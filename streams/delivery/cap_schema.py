"""XML Schemas the hub validates against, loaded once from the checkout: OASIS CAP 1.2 (``cap/``)."""

from __future__ import annotations

import functools
from pathlib import Path

import xmlschema

from streams.platform.settings import project_root


def cap_schema_path() -> Path:
    return project_root() / "cap" / "CAP-v1.2.xsd"


@functools.lru_cache(maxsize=1)
def _cap_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(cap_schema_path()))


def cap_validation_errors(document: bytes) -> list[str]:
    """Why document is not valid CAP 1.2 (empty when it is)."""
    return [str(error.reason or error) for error in _cap_schema().iter_errors(document.decode("utf-8"))]
