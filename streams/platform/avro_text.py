"""Avro schema documents as values: the named types a document defines, and a document standing alone.

A schema file may refer to a named type another file defines (``"type": "jp.bosai.hub.GeoPoint"``). A schema
registry serves each schema as one text, with every named type it uses defined inline (the first time it
occurs, by name after): :func:`stand_alone`. Kept versions are named ``<Name>.v<N>.avsc``
(:data:`HISTORY_NAME`). Pure: documents in, documents out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
HISTORY_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


def _full_name(node: Mapping[str, Any], namespace: str) -> tuple[str, str]:
    """(full name, namespace for what it encloses) of a named type's definition."""
    name = str(node["name"])
    if "." in name:
        return name, name.rpartition(".")[0]
    space = str(node.get("namespace", namespace) or "")
    return (f"{space}.{name}" if space else name), space


def named_definitions(node: Any, namespace: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type (record, enum, fixed) a schema document defines, by full name, as written."""
    out = {} if out is None else out
    if isinstance(node, list):
        for item in node:
            named_definitions(item, namespace, out)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
            full, namespace = _full_name(node, namespace)
            out.setdefault(full, node)
        for key in ("type", "items", "values"):
            if key in node and not isinstance(node[key], str):
                named_definitions(node[key], namespace, out)
        for field_node in node.get("fields", []) if isinstance(node.get("fields"), list) else []:
            named_definitions(field_node, namespace, out)
    return out


def stand_alone(node: Any, named: Mapping[str, Any], namespace: str = "", defined: set[str] | None = None) -> Any:
    """The schema with every reference to a type defined in another file replaced by that type's definition
    (the first time it occurs; by name after), so the text stands alone (a registry serves it so)."""
    defined = set() if defined is None else defined
    if isinstance(node, str):
        if node in PRIMITIVES:
            return node
        full = node if "." in node or not namespace else f"{namespace}.{node}"
        if full in defined or full not in named:
            return node
        return stand_alone(copy.deepcopy(named[full]), named, namespace, defined)
    if isinstance(node, list):
        return [stand_alone(item, named, namespace, defined) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
        full, namespace = _full_name(node, namespace)
        defined.add(full)
    for key in ("type", "items", "values"):
        if key in out:
            out[key] = stand_alone(out[key], named, namespace, defined)
    if isinstance(out.get("fields"), list):
        out["fields"] = [stand_alone(f, named, namespace, defined) for f in out["fields"]]
    return out
