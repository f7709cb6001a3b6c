"""Avro codec on fastavro: single-object encoding by default, Confluent wire format with a registry.

Two framings, told apart by their first bytes, so one decoder reads both:

* **Avro single-object encoding** (the Avro spec): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's parsing canonical form + the Avro binary body. Any consumer with
  the ``avro/`` schemas decodes it; no registry service is needed. This is the hub's default.
* **Confluent wire format**: ``00`` + 4-byte big-endian schema id + body. The id of each of the hub's
  schemas is derived from its fingerprint (:func:`streams.platform.schema_registry.schema_id`), the ids the
  hub's own registry serves (``bosai registry serve``), so it is known without asking anyone; with a
  deployment's own registry (``BOSAI_SCHEMA_REGISTRY_URL``) ids are that registry's, asked for once per
  subject. The topics clients read carry this framing (``framing: confluent`` in ``topics/catalog.yaml``;
  :mod:`streams.platform.wire`).

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from streams.kernel.messages import AvroRecord
from streams.platform.avro_text import HISTORY_NAME, named_definitions, stand_alone
from streams.platform.schema_registry import schema_id

if TYPE_CHECKING:
    from streams.platform.registry_client import SchemaRegistryClient

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
    full: str = ""  # the schema as written (docs, defaults, logical types), named types it uses inlined
    version: int = 0  # its version in avro/ (history files .v<N>, the current one after them); 0: added inline

    @property
    def json(self) -> str:
        return self.canonical

    @property
    def registry_id(self) -> int:
        """Its id in the hub's schema registry (and in Confluent-framed messages): from the fingerprint."""
        return schema_id(self.fingerprint)


def _history_version(path: Path) -> int:
    """The version number in an earlier schema's file name (avro/history/<Name>.v<N>.avsc)."""
    found = HISTORY_NAME.match(path.name)
    if found is None:
        raise CodecError("unknown_schema", f"{path}: not a history schema file name (<Name>.v<N>.avsc)")
    return int(found["version"])


def _strip_logical_types(schema: Any) -> Any:
    """A copy of a (expanded) schema without logicalType, so timestamps decode as epoch-ms ints."""
    if isinstance(schema, dict):
        return {k: _strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_strip_logical_types(s) for s in schema]
    return schema


def _crc64_avro_le(canonical: str) -> bytes:
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def text_fingerprint(text: str) -> bytes | None:
    """The CRC-64-AVRO fingerprint of a stand-alone schema text (every named type it uses defined in it), as a
    registry client computes it; None when the text is not an Avro schema."""
    try:
        return _crc64_avro_le(to_parsing_canonical_form(parse_schema(json.loads(text), named_schemas={})))
    except Exception:  # not JSON, not a schema, unknown types: fastavro raises many kinds
        return None


class SchemaStore:
    """Every known schema: the hub's own from ``avro/`` plus any older writer versions added.

    Look-ups by full name (the current reader schema), by fingerprint (the writer schema of a
    single-object-encoded message) and by registry id (of a Confluent-framed one). ``registry``: a
    deployment's own schema registry (``BOSAI_SCHEMA_REGISTRY_URL``), asked for ids the hub does not know.
    """

    def __init__(self, registry: SchemaRegistryClient | None = None) -> None:
        self._named: dict[str, Any] = {}
        self._by_name: dict[str, AvroSchema] = {}
        self._by_fingerprint: dict[bytes, AvroSchema] = {}
        self._by_id: dict[int, AvroSchema] = {}
        self._raw_named: dict[str, Any] = {}  # named types as written in the files, for the full texts
        self.registry = registry

    @classmethod
    def from_directory(cls, directory: Path, *, registry: SchemaRegistryClient | None = None) -> SchemaStore:
        """Load every ``*.avsc`` in ``directory``, resolving cross-file references by name, then the earlier
        versions kept in ``directory/history`` (``<Name>.v<N>.avsc``: so messages written with them still
        decode, into the current schema with its defaults). The current file of a schema is the version
        after the last one kept."""
        store = cls(registry)
        history = sorted((directory / "history").glob("*.avsc"))
        kept: dict[str, int] = {}
        for path in history:
            match = HISTORY_NAME.match(path.name)
            if match is None:
                raise CodecError("unknown_schema", f"{path}: a kept version is named <Name>.v<N>.avsc, e.g. Alert.v1")
            kept[match["name"]] = max(kept.get(match["name"], 0), int(match["version"]))
        store._load_files(directory, sorted(directory.glob("*.avsc")), lambda p: kept.get(p.stem, 0) + 1)
        if history:
            store._load_files(directory / "history", history, _history_version)
        return store

    def _load_files(self, directory: Path, paths: list[Path], version_of: Callable[[Path], int]) -> None:
        store = self
        pending = {p: json.loads(p.read_text(encoding="utf-8")) for p in paths}
        if not pending:
            raise CodecError("unknown_schema", f"no *.avsc files in {directory}")
        for schema_json in pending.values():
            for full, node in named_definitions(schema_json).items():
                self._raw_named.setdefault(full, node)
        # Files may reference each other in any order: retry until no progress.
        while pending:
            progressed = False
            errors: dict[Path, str] = {}
            for path, schema_json in list(pending.items()):
                try:
                    store.add(schema_json, source=str(path), version=version_of(path))
                except fastavro.schema.UnknownType as exc:
                    errors[path] = str(exc)
                    continue
                except CodecError:
                    raise
                except Exception as exc:  # a broken schema file: say which
                    raise CodecError("unknown_schema", f"{path}: not a valid Avro schema: {exc}") from exc
                del pending[path]
                progressed = True
            if not progressed:
                detail = "; ".join(f"{p.name}: unknown type {e}" for p, e in errors.items())
                raise CodecError("unknown_schema", f"unresolvable references in {directory}: {detail}")

    def add(self, schema_json: Mapping[str, Any] | str, *, source: str = "<inline>", version: int = 0) -> AvroSchema:
        """Register a schema (e.g. an older version a producer may still write with)."""
        document = json.loads(schema_json) if isinstance(schema_json, str) else dict(schema_json)
        named = dict(self._named)  # do not let an older version overwrite current named types
        parsed = parse_schema(copy.deepcopy(document), named_schemas=named)
        if not isinstance(parsed, dict):
            raise CodecError("unknown_schema", f"{source}: not a named record schema: {document!r:.80}")
        expanded = fastavro.schema.expand_schema(parsed)
        canonical = to_parsing_canonical_form(expanded)
        full = json.dumps(stand_alone(schema_json, self._raw_named), ensure_ascii=False, separators=(",", ":"))
        schema = AvroSchema(
            name=parsed["name"],
            source=source,
            parsed=parse_schema(_strip_logical_types(expanded), named_schemas={}),
            canonical=canonical,
            fingerprint=_crc64_avro_le(canonical),
            full=full,
            version=version,
        )
        if text_fingerprint(full) is None:
            raise CodecError("unknown_schema", f"{source}: its stand-alone text does not parse: {full[:200]}")
        other = self._by_id.get(schema.registry_id)
        if other is not None and other.fingerprint != schema.fingerprint:
            raise CodecError(
                "unknown_schema",
                f"{source}: its registry id {schema.registry_id} collides with {other.source}'s; change either "
                f"(a doc string is enough)",
            )
        if schema.name not in self._by_name:
            self._by_name[schema.name] = schema
            self._named.update(named)
        self._by_fingerprint[schema.fingerprint] = schema
        self._by_id[schema.registry_id] = schema
        return schema

    def by_name(self, name: str) -> AvroSchema:
        try:
            return self._by_name[name]
        except KeyError:
            raise CodecError("unknown_schema", f"no schema named {name!r}; known: {sorted(self._by_name)}") from None

    def by_fingerprint(self, fp: bytes) -> AvroSchema | None:
        return self._by_fingerprint.get(fp)

    def by_registry_id(self, registry_id: int) -> AvroSchema | None:
        return self._by_id.get(registry_id)

    def named_types(self) -> dict[str, Any]:
        """The current named types (for parsing a schema that refers to them), a copy."""
        return copy.deepcopy(self._named)

    def versions(self, name: str) -> list[AvroSchema]:
        """Every known version of a schema: the current one first, then those kept in avro/history."""
        return [s for s in self._by_fingerprint.values() if s.name == name]

    def all_versions(self) -> list[AvroSchema]:
        """Every schema read from the files, by name and version (what the hub's registry serves)."""
        return sorted((s for s in self._by_fingerprint.values() if s.version), key=lambda s: (s.name, s.version))

    def names(self) -> list[str]:
        return sorted(self._by_name)


class AvroCodec:
    """Encode records of one schema and decode messages of any known writer schema into it.

    ``decode`` reads both framings: a Confluent-framed message's writer schema is found by its id among the
    hub's schemas, else asked of the registry (``registry``, or the store's). ``encode`` writes single-object
    encoding unless a registry client and subject are given, then Confluent wire format with that registry's
    id (a topic's framing is :mod:`streams.platform.wire`'s job).
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
        self._lookup = registry or store.registry  # asked for ids the hub does not know
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
        if payload[:1] == CONFLUENT_MAGIC:
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
        raise CodecError(
            "bad_magic",
            f"neither Avro single-object encoding nor the Confluent wire format (starts with {payload[:4].hex()})",
        )

    def _registry_writer(self, schema_id: int) -> Any:
        """The writer schema of ``schema_id``: one of the hub's, else the registry's; a record of this codec's
        name, else CodecError."""
        known = self.store.by_registry_id(schema_id)
        if known is not None:
            if known.name != self.schema.name:
                raise CodecError("unknown_schema", f"message is a {known.name}, expected a {self.schema.name}")
            return known.parsed
        if self._lookup is None:
            raise CodecError(
                "unknown_schema", f"no known schema has registry id {schema_id} (and no BOSAI_SCHEMA_REGISTRY_URL)"
            )
        try:
            writer = parse_schema(
                _strip_logical_types(json.loads(self._lookup.schema_by_id(schema_id))), named_schemas={}
            )
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
    """The hub's schemas from the project's ``avro/`` folder (with the deployment's own schema registry, when
    ``BOSAI_SCHEMA_REGISTRY_URL`` names one)."""
    from streams.platform.registry_client import SchemaRegistryClient
    from streams.platform.settings import project_root, registry_url

    url = registry_url()
    return SchemaStore.from_directory(project_root() / "avro", registry=SchemaRegistryClient(url) if url else None)
