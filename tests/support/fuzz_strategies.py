"""Hypothesis strategies shared by the fuzz tests: byte mutations of real inputs, Avro records from a schema,
JSON values (with the awkward ones: huge integers, NaN, deep nesting), text that breaks naive parsers."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

# Text a parser of dates, numbers and codes meets in the wild: digits of other scripts (isdigit() but not
# int()-able: '²', '٣', '１'), signs, zones, whitespace, NUL and other control characters, Japanese.
AWKWARD_CHARS = "0123456789²³¹٣١１２+-:.TZ eE_/\\\x00\x01\x0b\x7f\u2028\ufeff\u3000警報解除発表継続なし"
awkward_text = st.text(alphabet=st.sampled_from(AWKWARD_CHARS), max_size=40) | st.text(max_size=40)
DATE_LIKE = st.sampled_from(
    [
        "2023-09-04T13:00:00+09:00",
        "2023-09-04T13:00:00Z",
        "2023-09-04T13:00:00",
        "2023-09-04",
        "0001-01-01T00:00:00+09:00",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59",
        "2023-02-30T00:00:00+09:00",
        "1969-12-31T23:59:59.999999+00:00",
        "",
        "T",
    ]
)
dates = DATE_LIKE | awkward_text

# Numbers JSON may carry: huge integers (Python's json reads up to 4300 digits), NaN, infinities, -0.0.
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(10**300)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**63, -(2**63) - 1, 2**64]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, awkward_text, dates)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(awkward_text, children, max_size=5),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, *, max_edits: int = 4) -> bytes:
    """``seed`` with a few byte-level edits: flips, inserts, deletes, duplicated ranges, truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x3C, 0x26, 0x22, 0x2C, 0x0A]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "duplicate" and data:
            chunk = data[at : at + draw(st.integers(1, 64))]
            data[at:at] = chunk * draw(st.integers(1, 8))
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def avro_values(schema: Any, named: dict[str, Any] | None = None, depth: int = 0) -> st.SearchStrategy:
    """Values of a (fastavro-parsed, logical types stripped) Avro schema: every branch of every union."""
    if named is None:
        named = dict(schema.get("__named_schemas", {})) if isinstance(schema, dict) else {}
    if isinstance(schema, str):
        primitive = _PRIMITIVES.get(schema)
        if primitive is not None:
            return primitive
        return st.deferred(lambda: avro_values(named[schema], named, depth + 1))
    if isinstance(schema, list):
        return st.one_of([avro_values(s, named, depth) for s in schema])
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        fields = {f["name"]: avro_values(f["type"], named, depth + 1) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        named[schema["name"]] = schema
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(avro_values(schema["items"], named, depth + 1), max_size=3 if depth < 3 else 0)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), avro_values(schema["values"], named, depth + 1), max_size=3)
    return avro_values(kind, named, depth)


_PRIMITIVES = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=64),
    "string": st.text(max_size=32),
}


def same_value(a: Any, b: Any) -> bool:
    """Equality that treats float('nan') as equal to itself and 32-bit floats as rounded."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b
