"""JSON from outside the hub (HTTP bodies, JMA's AMeDAS maps), read with bounds. Pure.

Strict JSON (orjson: no NaN or Infinity literals, no byte order mark, numbers beyond a double refused,
integers beyond 64 bits read as floats) nested at most ``MAX_DEPTH`` levels, so nothing that walks
the document afterwards (validation, ``repr`` in an error message) can run out of stack. Python's
``json`` raises RecursionError — not a ValueError — on a body of ten thousand ``[``.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 32  # a reading batch or an NGSI notification is 5 levels deep


class JsonInputError(ValueError):
    """Bytes that are not a JSON document the hub reads (the message says why, for the sender)."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The document, or JsonInputError (not UTF-8 JSON, a number out of range, nested too deep)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JsonInputError(f"not JSON: {exc}") from None
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise JsonInputError(f"nested deeper than {max_depth} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return document
