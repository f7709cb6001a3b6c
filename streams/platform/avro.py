"""Avro codec on fastavro: single-object encoding by default, Confluent wire format with a registry.

Two framings, told apart by their first bytes, so one decoder reads both:

* **Avro single-object encoding** (the Avro spec): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's parsing canonical form + the Avro binary body. Any consumer with
  the ``avro/`` schemas decodes it; no registry service is needed. This is the hub's default.
* **Confluent wire format**: ``00`` + 4-byte big-endian schema id + body, with the schema registered
  in and fetched from a Confluent-compatible schema registry (``BOSAI_SCHEMA_REGISTRY_URL``).

Timestamps (``timestamp-millis``) are exchanged as plain epoch milliseconds (``int``) in both
directions: the core works on integers, which is both faster and free of time-zone surprises.

Every kind of bad bytes raises :class:`CodecError`, with a stable ``reason`` code that the
dead-letter path records.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from streams.kernel.messages import AvroRecord

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SO_HEADER = len(SINGLE_OBJECT_MAGIC) + 8
_CF_HEADER = 5

#: Schemas the hub writes, by short name -> Avro full name.
READING = "jp.bosai.hub.SensorReading"
ALERT = "jp.bosai.hub.Alert"
DEAD_LETTER = "jp.bosai.hub.DeadLetter"
ENRICHED = "jp.bosai.hub.EnrichedReading"
OFFICIAL_REPORT = "jp.bosai.hub.OfficialReport"


class CodecError(Exception):
    """Bytes that are not a message of a known schema, or a record that does not fit its schema.

    ``reason`` is one of ``truncated``, ``bad_magic``, ``unknown_schema``, ``undecodable``,
    ``not_encodable``, ``registry``.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AvroSchema:
    """One schema, parsed once: its full name, fastavro form, canonical form and fingerprint."""

    name: str
    source: str
    parsed: Schema  # fastavro's parsed form
    canonical: str
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO

    @property
    def json(self) -> str:
        return self.canonical


def _strip_logical_types(schema: Any) -> Any:
    """A copy of a (expanded) schema without logicalType, so timestamps decode as epoch-ms ints."""
    if isinstance(schema, dict):
        return {k: _strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_strip_logical_types(s) for s in schema]
    return schema


def _crc64_avro_le(canonical: str) -> bytes:
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


class SchemaStore:
    """Every known schema: the hub's own from ``avro/`` plus any older writer versions added.

    Look-ups by full name (the current reader schema) and by fingerprint (the writer schema of a
    single-object-encoded message).
    """

    def __init__(self) -> None:
        self._named: dict[str, dict[str, Any]] = {}  # fastavro's named types, by full name
        self._by_name: dict[str, AvroSchema] = {}
        self._by_fingerprint: dict[bytes, AvroSchema] = {}

    @classmethod
    def from_directory(cls, directory: Path) -> SchemaStore:
        """Load every ``*.avsc`` in ``directory``, resolving cross-file references by name, then the earlier
        versions kept in ``directory/history`` (so messages written with them still decode, into the
        current schema with its defaults)."""
        store = cls()
        store._load_files(directory, sorted(directory.glob("*.avsc")))
        history = sorted((directory / "history").glob("*.avsc"))
        if history:
            store._load_files(directory / "history", history)
        return store

    def _load_files(self, directory: Path, paths: list[Path]) -> None:
        store = self
        pending = {p: json.loads(p.read_text(encoding="utf-8")) for p in paths}
        if not pending:
            raise CodecError("unknown_schema", f"no *.avsc files in {directory}")
        # Files may reference each other in any order: retry until no progress.
        while pending:
            progressed = False
            errors: dict[Path, str] = {}
            for path, schema_json in list(pending.items()):
                try:
                    store.add(schema_json, source=str(path))
                except fastavro.schema.UnknownType as exc:
                    errors[path] = str(exc)
                    continue
                except Exception as exc:  # a broken schema file: say which
                    raise CodecError("unknown_schema", f"{path}: not a valid Avro schema: {exc}") from exc
                del pending[path]
                progressed = True
            if not progressed:
                detail = "; ".join(f"{p.name}: unknown type {e}" for p, e in errors.items())
                raise CodecError("unknown_schema", f"unresolvable references in {directory}: {detail}")

    def add(self, schema_json: Mapping[str, Any] | str, *, source: str = "<inline>") -> AvroSchema:
        """Register a schema (e.g. an older version a producer may still write with)."""
        document = json.loads(schema_json) if isinstance(schema_json, str) else dict(schema_json)
        named = dict(self._named)  # do not let an older version overwrite current named types
        parsed = parse_schema(copy.deepcopy(document), named_schemas=named)
        if not isinstance(parsed, dict):
            raise CodecError("unknown_schema", f"{source}: not a named record schema: {document!r:.80}")
        expanded = fastavro.schema.expand_schema(parsed)
        canonical = to_parsing_canonical_form(expanded)
        schema = AvroSchema(
            name=parsed["name"],
            source=source,
            parsed=parse_schema(_strip_logical_types(expanded), named_schemas={}),
            canonical=canonical,
            fingerprint=_crc64_avro_le(canonical),
        )
        if schema.name not in self._by_name:
            self._by_name[schema.name] = schema
            self._named.update(named)
        self._by_fingerprint[schema.fingerprint] = schema
        return schema

    def by_name(self, name: str) -> AvroSchema:
        try:
            return self._by_name[name]
        except KeyError:
            raise CodecError("unknown_schema", f"no schema named {name!r}; known: {sorted(self._by_name)}") from None

    def by_fingerprint(self, fp: bytes) -> AvroSchema | None:
        return self._by_fingerprint.get(fp)

    def named_types(self) -> dict[str, Any]:
        """The current named types (for parsing a schema that refers to them), a copy."""
        return copy.deepcopy(self._named)

    def versions(self, name: str) -> list[AvroSchema]:
        """Every known version of a schema: the current one first, then those kept in avro/history."""
        return [s for s in self._by_fingerprint.values() if s.name == name]

    def names(self) -> list[str]:
        return sorted(self._by_name)


class SchemaRegistryClient:
    """Minimal client for a Confluent-compatible schema registry (REST, JSON), with caches.

    Only the two calls the codec needs: register a schema under a subject, fetch a schema by id.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def _request(self, method: str, path: str, body: dict[str, str] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Content-Type": "application/vnd.schemaregistry.v1+json",
                "Accept": "application/vnd.schemaregistry.v1+json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise CodecError("registry", f"{method} {self.url}{path}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CodecError("registry", f"{method} {self.url}{path}: {exc}") from exc

    def register(self, subject: str, schema: AvroSchema) -> int:
        key = (subject, schema.canonical)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        answer = self._request("POST", f"/subjects/{subject}/versions", {"schema": schema.canonical})
        schema_id = int(answer["id"])
        with self._lock:
            self._ids[key] = schema_id
            self._schemas[schema_id] = schema.canonical
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        with self._lock:
            if schema_id in self._schemas:
                return self._schemas[schema_id]
        answer = self._request("GET", f"/schemas/ids/{schema_id}")
        schema = answer.get("schema") if isinstance(answer, dict) else None
        if not isinstance(schema, str):
            raise CodecError(
                "registry", f"GET {self.url}/schemas/ids/{schema_id}: no schema text in {str(answer)[:200]}"
            )
        with self._lock:
            self._schemas[schema_id] = schema
        return schema


class AvroCodec:
    """Encode records of one schema and decode messages of any known writer schema into it.

    ``decode`` reads both framings; ``encode`` writes single-object encoding unless a registry
    client and subject are given, then Confluent wire format.
    """

    def __init__(
        self,
        store: SchemaStore,
        schema_name: str,
        *,
        registry: SchemaRegistryClient | None = None,
        subject: str | None = None,
    ):
        self.store = store
        self.schema = store.by_name(schema_name)
        self.registry = registry
        self.subject = subject
        if registry is not None and not subject:
            raise ValueError("a registry codec needs the subject to register under (e.g. '<topic>-value')")
        self._header = SINGLE_OBJECT_MAGIC + self.schema.fingerprint
        self._registry_writers: dict[int, Schema] = {}

    # -- encoding --------------------------------------------------------------------------
    def _header_for_write(self) -> bytes:
        if self.registry is None or self.subject is None:  # (a registry codec has a subject: see __init__)
            return self._header
        schema_id = self.registry.register(self.subject, self.schema)  # cached after the first call
        return CONFLUENT_MAGIC + struct.pack(">I", schema_id)

    def encode(self, record: AvroRecord) -> bytes:
        return self.encode_many([record])[0]

    def encode_many(self, records: Iterable[AvroRecord]) -> list[bytes]:
        """Encode a batch; one buffer reused, the header computed once."""
        header = self._header_for_write()
        parsed = self.schema.parsed
        out: list[bytes] = []
        buf = io.BytesIO()
        writer = fastavro.schemaless_writer
        for record in records:
            buf.seek(0)
            buf.truncate()
            try:
                writer(buf, parsed, record)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise CodecError("not_encodable", f"record does not fit {self.schema.name}: {exc}") from exc
            out.append(header + buf.getvalue())
        return out

    # -- decoding --------------------------------------------------------------------------
    def _writer_for(self, payload: bytes) -> tuple[Schema, int]:
        if payload[:2] == SINGLE_OBJECT_MAGIC:
            if len(payload) < _SO_HEADER:
                raise CodecError("truncated", f"{len(payload)} bytes is shorter than the single-object header")
            writer = self.store.by_fingerprint(payload[2:_SO_HEADER])
            if writer is None:
                raise CodecError("unknown_schema", f"no known schema has fingerprint {payload[2:_SO_HEADER].hex()}")
            if writer.name != self.schema.name:
                raise CodecError("unknown_schema", f"message is a {writer.name}, expected a {self.schema.name}")
            return writer.parsed, _SO_HEADER
        if payload[:1] == CONFLUENT_MAGIC and self.registry is not None:
            if len(payload) < _CF_HEADER:
                raise CodecError("truncated", f"{len(payload)} bytes is shorter than the Confluent header")
            (schema_id,) = struct.unpack(">I", payload[1:_CF_HEADER])
            registered = self._registry_writers.get(schema_id)
            if registered is None:
                registered = self._registry_writer(schema_id)
                self._registry_writers[schema_id] = registered
            return registered, _CF_HEADER
        if not payload:
            raise CodecError("truncated", "empty message")
        raise CodecError("bad_magic", f"not Avro single-object encoded (starts with {payload[:4].hex() or 'nothing'})")

    def _registry_writer(self, schema_id: int) -> Schema:
        """The writer schema a registry has under ``schema_id``: a record of this codec's name, else CodecError."""
        registry = self.registry
        if registry is None:
            raise CodecError("registry", f"schema id {schema_id}: this codec has no registry")
        try:
            writer = parse_schema(_strip_logical_types(json.loads(registry.schema_by_id(schema_id))), named_schemas={})
        except CodecError:
            raise
        except Exception as exc:  # not JSON, not an Avro schema: fastavro raises many types
            raise CodecError("unknown_schema", f"registry schema id {schema_id} is not usable: {exc}") from exc
        name = writer.get("name") if isinstance(writer, dict) else writer
        if name != self.schema.name:
            raise CodecError("unknown_schema", f"message is a {name}, expected a {self.schema.name}")
        return writer

    def decode(self, payload: bytes | None) -> AvroRecord:
        if payload is None:
            raise CodecError("truncated", "message has no value (null)")
        writer, offset = self._writer_for(payload)
        body = io.BytesIO(payload)
        body.seek(offset)
        try:
            # same schema: no resolution needed (several times faster than resolving)
            reader = None if writer is self.schema.parsed else self.schema.parsed
            record = fastavro.schemaless_reader(body, writer, reader)
        except EOFError as exc:
            raise CodecError("truncated", f"body ends early: {exc}") from exc
        except Exception as exc:  # fastavro raises many types for garbage bodies
            raise CodecError("undecodable", f"{type(exc).__name__}: {exc}") from exc
        if body.tell() != len(payload):
            raise CodecError("undecodable", f"{len(payload) - body.tell()} trailing bytes after the record")
        return cast(AvroRecord, record)  # a record schema (every codec's: see __init__) reads a dict

    def decode_many(self, payloads: Iterable[bytes | None]) -> list[AvroRecord | CodecError]:
        """Decode a batch: each item is the record or the CodecError for that message (a null value is one)."""
        results: list[AvroRecord | CodecError] = []
        decode = self.decode
        for payload in payloads:
            try:
                results.append(decode(payload))
            except CodecError as exc:
                results.append(exc)
        return results


class PrefixedRecordEncoder:
    """Encodes records whose FIRST field is another record that is already Avro binary.

    The Avro binary of a record is its fields' encodings one after another, so a record
    ``{inner, a, b…}`` is ``inner's bytes + encode({a, b…})``. The hub's enriched reading is the raw
    reading (as it arrived) followed by where it is: the reading is copied, not decoded and encoded
    again, and the "where" part — the same for every reading of a station — is encoded once per place.
    """

    def __init__(self, store: SchemaStore, schema_name: str):
        schema = json.loads(store.by_name(schema_name).canonical)
        first = schema["fields"][0]
        inner_name = first["type"].get("name") if isinstance(first["type"], dict) else first["type"]
        if not isinstance(inner_name, str) or inner_name not in store.names():
            raise CodecError("unknown_schema", f"{schema_name}: its first field {first['name']} is not a named record")
        self.first_field = first["name"]
        self.inner = AvroCodec(store, inner_name)
        rest = {"type": "record", "name": f"{schema['name']}Rest", "fields": schema["fields"][1:]}
        self._rest = parse_schema(rest, named_schemas=store.named_types())
        self._header = SINGLE_OBJECT_MAGIC + store.by_name(schema_name).fingerprint
        self._inner_header = SINGLE_OBJECT_MAGIC + self.inner.schema.fingerprint

    def rest_bytes(self, rest: AvroRecord) -> bytes:
        """The encoding of every field after the first."""
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, self._rest, rest)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise CodecError(
                "not_encodable", f"record does not fit the rest of {self.first_field}'s record: {exc}"
            ) from exc
        return buf.getvalue()

    def inner_body(self, payload: bytes | None, record: AvroRecord) -> bytes:
        """The first field's bytes: the payload's own body when it was written with the current schema
        (single-object encoding), else the decoded record encoded again."""
        if payload is not None and payload[:_SO_HEADER] == self._inner_header:
            return payload[_SO_HEADER:]
        return self.inner.encode(record)[_SO_HEADER:]

    def join(self, inner_body: bytes, rest: bytes) -> bytes:
        return self._header + inner_body + rest


def default_store() -> SchemaStore:
    """The hub's schemas from the project's ``avro/`` folder."""
    from streams.platform.settings import project_root

    return SchemaStore.from_directory(project_root() / "avro")
