"""A read-only Confluent Schema Registry over the hub's own Avro schemas, as values (pure part).

The hub's schemas (``avro/`` and ``avro/history/``) are the registry's whole content: nothing is registered
at run time, so every answer follows from the files alone.

- **Ids are stable**: a schema's id is derived from its CRC-64-AVRO fingerprint (the one single-object
  encoding already carries), so the same schema has the same id on every machine, after every restart and
  whatever order the files are read in (:func:`schema_id`). Two schemas whose ids collide are refused when
  the registry is built.
- **Subjects**: the record name of every schema (RecordNameStrategy, e.g. ``jp.bosai.hub.Alert``) and
  ``<topic>-value`` of every topic that clients read in the Confluent wire format (TopicNameStrategy). A
  subject's versions are its schema's versions: ``avro/history/<Name>.v<N>.avsc`` as version N, the current
  file as the version after the last one kept.
- **Read-only**: every write is refused as Confluent refuses an operation the caller may not do (403,
  ``error_code`` 40301); an unknown method on a known path is 405 (``error_code`` 405).

Answers are ``(status, body)`` pairs with Confluent's error codes (40401 subject not found, 40402 version not
found, 40403 schema not found, 42202 invalid version), so the HTTP shell
(:mod:`streams.registry.server`) only moves them. Pure: comparing a posted schema needs its
fingerprint, which the shell computes (it needs the Avro library) and passes in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, Any]

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
INVALID_VERSION = 42202
INVALID_SCHEMA = 42201
FORBIDDEN = 40301
COMPATIBILITY = "BACKWARD"  # what avro/history keeps: every new version reads the data of the previous ones
MODE = "READONLY"


def schema_id(fingerprint: bytes) -> int:
    """The registry id of a schema: the first four bytes of its CRC-64-AVRO fingerprint (as single-object
    encoding writes it, little-endian) read as a positive 31-bit integer; never 0."""
    if len(fingerprint) != 8:
        raise ValueError(f"a CRC-64-AVRO fingerprint has 8 bytes, not {len(fingerprint)}")
    return int.from_bytes(fingerprint[:4], "little") & 0x7FFFFFFF or 1


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of one of the hub's schemas."""

    name: str  # Avro full name, e.g. jp.bosai.hub.Alert
    version: int  # 1, 2, … in the order avro/history keeps them; the current file last
    schema: str  # the schema's JSON text, named types it refers to defined inline (no references)
    id: int  # schema_id of the fingerprint the hub's messages carry
    fingerprint: bytes  # CRC-64-AVRO of ``schema`` parsed alone, to recognise a schema posted for a look-up


def _error(status: int, code: int, message: str) -> Answer:
    return status, {"error_code": code, "message": message}


def refused(method: str, path: str) -> Answer:
    """A write: this registry is read-only (Confluent's answer to an operation the caller may not do)."""
    return _error(
        403,
        FORBIDDEN,
        f"{method} {path}: this schema registry is read-only; its schemas are the hub's avro/ files "
        f"(mode {MODE}): change them there",
    )


def not_allowed(method: str) -> Answer:
    return _error(405, 405, f"HTTP 405 Method Not Allowed ({method})")


@dataclass(frozen=True)
class TopicSubjects:
    """``<topic>-value`` subjects: concrete names, and patterns for topics under other prefixes (replays)."""

    named: Mapping[str, str] = field(default_factory=dict)  # subject -> Avro full name of its value schema
    patterns: tuple[tuple[re.Pattern[str], str], ...] = ()  # (pattern of the subject, Avro full name)

    def schema_of(self, subject: str) -> str | None:
        if subject in self.named:
            return self.named[subject]
        for pattern, name in self.patterns:
            if pattern.fullmatch(subject):
                return name
        return None


def subject_pattern(name_template: str, regions: Iterable[str]) -> re.Pattern[str]:
    """The subjects ``<topic>-value`` of a catalog name template, whatever the prefix (e.g. a replay's)."""
    parts = re.split(r"({prefix}|{region}|{municipality_code}|{prefecture_code})", name_template)
    placeholders = {
        "{prefix}": r"[A-Za-z0-9._-]+?",
        "{region}": "(?:" + "|".join(re.escape(r) for r in sorted(regions)) + ")",
        "{municipality_code}": r"\d{5}",
        "{prefecture_code}": r"\d{2}",
    }
    return re.compile("".join(placeholders.get(p, re.escape(p)) for p in parts) + "-value")


class Registry:
    """What the registry answers, for every read of the Confluent Schema Registry API it serves."""

    def __init__(self, schemas: Sequence[RegisteredSchema], topics: TopicSubjects = TopicSubjects()):
        self.by_id: dict[int, RegisteredSchema] = {}
        for schema in schemas:
            other = self.by_id.get(schema.id)
            if other is not None and other.schema != schema.schema:
                raise ValueError(
                    f"schema id {schema.id} of {schema.name} v{schema.version} collides with {other.name} "
                    f"v{other.version}: change one of them (a doc string is enough)"
                )
            self.by_id[schema.id] = schema
        self.versions_of: dict[str, list[RegisteredSchema]] = {}
        for schema in sorted(schemas, key=lambda s: (s.name, s.version)):
            self.versions_of.setdefault(schema.name, []).append(schema)
        for name, versions in self.versions_of.items():
            numbers = [s.version for s in versions]
            if numbers != list(range(1, len(numbers) + 1)):
                raise ValueError(f"{name}: versions {numbers}, expected 1..{len(numbers)} without gaps")
        self.topics = topics
        unknown = sorted({n for n in topics.named.values()} - set(self.versions_of))
        if unknown:
            raise ValueError(f"topic subjects name schemas the registry does not hold: {unknown}")

    # -- subjects ------------------------------------------------------------------------------------
    def subjects(self) -> list[str]:
        return sorted([*self.versions_of, *self.topics.named])

    def _schema_name(self, subject: str) -> str | None:
        if subject in self.versions_of:
            return subject
        return self.topics.schema_of(subject)

    def _versions(self, subject: str) -> list[RegisteredSchema] | None:
        name = self._schema_name(subject)
        return None if name is None else self.versions_of.get(name)

    def subject_versions(self, subject: str) -> Answer:
        versions = self._versions(subject)
        if versions is None:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return 200, [s.version for s in versions]

    def subject_version(self, subject: str, version: str) -> Answer:
        versions = self._versions(subject)
        if versions is None:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        if version in ("latest", "-1"):
            chosen = versions[-1]
        else:
            if not re.fullmatch(r"[1-9]\d{0,9}", version) or int(version) > 2**31 - 1:
                return _error(
                    422,
                    INVALID_VERSION,
                    f"The specified version '{version}' is not a valid version id. Allowed values are between "
                    f'[1, 2^31-1] and the string "latest"',
                )
            if int(version) > len(versions):
                return _error(404, VERSION_NOT_FOUND, f"Version {version} not found.")
            chosen = versions[int(version) - 1]
        return 200, self._subject_body(subject, chosen)

    @staticmethod
    def _subject_body(subject: str, schema: RegisteredSchema) -> dict[str, Any]:
        return {"subject": subject, "version": schema.version, "id": schema.id, "schema": schema.schema}

    def lookup(self, subject: str, fingerprint: bytes | None) -> Answer:
        """``POST /subjects/{subject}``: is this schema (by its fingerprint; None: not an Avro schema) one
        of the subject's versions?"""
        versions = self._versions(subject)
        if versions is None:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        if fingerprint is None:
            return _error(422, INVALID_SCHEMA, "Invalid schema: not an Avro schema")
        for schema in versions:
            if schema.fingerprint == fingerprint:
                return 200, self._subject_body(subject, schema)
        return _error(404, SCHEMA_NOT_FOUND, "Schema not found")

    # -- schemas by id -----------------------------------------------------------------------------------
    def _by_id(self, raw_id: str) -> RegisteredSchema | None:
        if not re.fullmatch(r"\d{1,10}", raw_id):
            return None
        return self.by_id.get(int(raw_id))

    def schema(self, raw_id: str) -> Answer:
        found = self._by_id(raw_id)
        if found is None:
            return _error(404, SCHEMA_NOT_FOUND, "Schema not found")
        return 200, {"schema": found.schema}

    def schema_text(self, raw_id: str) -> Answer:
        found = self._by_id(raw_id)
        if found is None:
            return _error(404, SCHEMA_NOT_FOUND, "Schema not found")
        return 200, found.schema

    def schema_versions(self, raw_id: str) -> Answer:
        """``GET /schemas/ids/{id}/versions``: every (subject, version) this schema is (named subjects)."""
        found = self._by_id(raw_id)
        if found is None:
            return _error(404, SCHEMA_NOT_FOUND, "Schema not found")
        subjects = [found.name] + sorted(s for s, n in self.topics.named.items() if n == found.name)
        return 200, [{"subject": s, "version": found.version} for s in subjects]

    def schema_subjects(self, raw_id: str) -> Answer:
        status, body = self.schema_versions(raw_id)
        return (status, [v["subject"] for v in body]) if status == 200 else (status, body)

    @staticmethod
    def config() -> Answer:
        return 200, {"compatibilityLevel": COMPATIBILITY}

    @staticmethod
    def mode() -> Answer:
        return 200, {"mode": MODE}
