"""A backup of the hub as values: its manifest, the records of a topic-partition as lines, and what ``verify`` finds.

A backup is a folder (``bosai backup create --out DIR``) whose ``manifest.json`` lists

- ``topics``: every catalog topic backed up, with its partitions, replication and configs (restore creates it
  alike), and per partition the offsets the backup covers (``start_offset`` .. ``end_offset``, the last stable
  offset at the cut), the number of committed records in between and the file that holds them;
- ``groups``: the consumer groups' committed offsets on those topics at the same cut (the workers' input
  offsets, the deliveries' positions), so a restored hub resumes where the backed-up one was;
- ``files``: every file in the folder with its sha256 and size, its kind (``topic``, ``pack``, ``access``,
  ``catalog``, ``credential``, ``archive``) and whether it holds a secret (then it is 0600, never printed).

Pure: what is read from files and from the cluster is passed in; the clock's reading too (``created_at``).
Every problem of a manifest names the key and what was expected.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.kernel.errors import ConfigError

FORMAT = 1  # the manifest's format version
MANIFEST = "manifest.json"
KINDS = ("topic", "pack", "access", "catalog", "credential", "archive")


@dataclass(frozen=True)
class PartitionBackup:
    """One topic-partition in the backup."""

    partition: int
    start_offset: int  # the log start offset when it was read (older records were gone)
    end_offset: int  # the last stable offset at the cut: every committed record before it is in the file
    records: int  # committed records between them (transaction markers take offsets, not records)
    file: str  # relative path of its records (gzip, JSON lines)


@dataclass(frozen=True)
class TopicBackup:
    """One catalog topic: how to create it again, and its partitions' records."""

    name: str
    catalog_id: str
    region: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    key_schema: str
    value_schema: str
    framing: str
    municipality_code: str | None
    backed_up: tuple[PartitionBackup, ...]

    @property
    def records(self) -> int:
        return sum(p.records for p in self.backed_up)


@dataclass(frozen=True)
class FileEntry:
    """A file of the backup folder."""

    path: str  # relative to the backup folder, '/'-separated
    sha256: str
    size: int
    kind: str  # one of KINDS
    secret: bool = False
    source: str = ""  # where it was copied from (packs, access, credentials): where restore puts it back


@dataclass(frozen=True)
class Manifest:
    created_at: str  # ISO 8601, UTC
    bosai_version: str
    prefix: str
    regions: tuple[str, ...]
    consistent: bool  # the cut: no group committed offsets while the topics' ends were read
    topics: tuple[TopicBackup, ...]
    groups: Mapping[str, Mapping[str, Mapping[int, int]]]  # group -> topic -> partition -> committed offset
    files: tuple[FileEntry, ...]
    notes: tuple[str, ...] = ()
    format: int = FORMAT

    @property
    def records(self) -> int:
        return sum(t.records for t in self.topics)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def to_json(self) -> str:
        document = {
            "format": self.format,
            "created_at": self.created_at,
            "bosai_version": self.bosai_version,
            "prefix": self.prefix,
            "regions": list(self.regions),
            "consistent": self.consistent,
            "records": self.records,
            "topics": [
                {
                    "name": t.name,
                    "catalog_id": t.catalog_id,
                    "region": t.region,
                    "partitions": t.partitions,
                    "replication_factor": t.replication_factor,
                    "configs": dict(sorted(t.configs.items())),
                    "key_schema": t.key_schema,
                    "value_schema": t.value_schema,
                    "framing": t.framing,
                    "municipality_code": t.municipality_code,
                    "records": t.records,
                    "backed_up": [
                        {
                            "partition": p.partition,
                            "start_offset": p.start_offset,
                            "end_offset": p.end_offset,
                            "records": p.records,
                            "file": p.file,
                        }
                        for p in t.backed_up
                    ],
                }
                for t in self.topics
            ],
            "groups": {
                group: {topic: {str(p): o for p, o in sorted(parts.items())} for topic, parts in sorted(topics.items())}
                for group, topics in sorted(self.groups.items())
            },
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "size": f.size,
                    "kind": f.kind,
                    "secret": f.secret,
                    **({"source": f.source} if f.source else {}),
                }
                for f in self.files
            ],
            "notes": list(self.notes),
        }
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# -- reading a manifest: every problem names the key -----------------------------------------------------------


class _Reader:
    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, problem: str, expected: str) -> ConfigError:
        return ConfigError(self.file, problem, where=where, expected=expected)

    def get(self, raw: Any, key: str, kind: type | tuple[type, ...], where: str, expected: str) -> Any:
        if not isinstance(raw, dict) or key not in raw:
            raise self.fail(f"{where}.{key}" if where else key, "missing", expected)
        value = raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
            raise self.fail(f"{where}.{key}" if where else key, f"is {value!r}", expected)
        return value

    def count(self, raw: Any, key: str, where: str) -> int:
        value: int = self.get(raw, key, int, where, "an integer >= 0")
        if value < 0:
            raise self.fail(f"{where}.{key}", f"is {value}", "an integer >= 0")
        return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _relative(reader: _Reader, path: str, where: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise reader.fail(where, f"path {path!r} leaves the backup folder", "a relative path inside it")
    return path


def _partition(reader: _Reader, raw: Any, where: str) -> PartitionBackup:
    entry = PartitionBackup(
        partition=reader.count(raw, "partition", where),
        start_offset=reader.count(raw, "start_offset", where),
        end_offset=reader.count(raw, "end_offset", where),
        records=reader.count(raw, "records", where),
        file=_relative(reader, reader.get(raw, "file", str, where, "a relative path"), f"{where}.file"),
    )
    if entry.end_offset < entry.start_offset or entry.records > entry.end_offset - entry.start_offset:
        raise reader.fail(
            where,
            f"offsets {entry.start_offset}..{entry.end_offset} cannot hold {entry.records} records",
            "start_offset <= end_offset and records <= end_offset - start_offset",
        )
    return entry


def _topic(reader: _Reader, raw: Any, i: int) -> TopicBackup:
    where = f"topics[{i}]"
    name = reader.get(raw, "name", str, where, "a topic name")
    where = f"topics[{i}] {name}"
    configs = reader.get(raw, "configs", dict, where, "a mapping of topic configs")
    municipality = raw.get("municipality_code")
    if municipality is not None and not isinstance(municipality, str):
        raise reader.fail(f"{where}.municipality_code", f"is {municipality!r}", "a JIS code or null")
    partitions = reader.get(raw, "partitions", int, where, "an integer >= 1")
    backed_up = tuple(
        _partition(reader, p, f"{where}.backed_up[{j}]")
        for j, p in enumerate(reader.get(raw, "backed_up", list, where, "a list of partitions"))
    )
    numbers = [p.partition for p in backed_up]
    if numbers != list(range(partitions)):
        raise reader.fail(f"{where}.backed_up", f"partitions {numbers}", f"0..{partitions - 1}, in order")
    return TopicBackup(
        name=name,
        catalog_id=reader.get(raw, "catalog_id", str, where, "a catalog id"),
        region=reader.get(raw, "region", str, where, "a region name"),
        partitions=partitions,
        replication_factor=reader.get(raw, "replication_factor", int, where, "an integer >= 1"),
        configs={str(k): str(v) for k, v in configs.items()},
        key_schema=reader.get(raw, "key_schema", str, where, "string or an Avro full name"),
        value_schema=reader.get(raw, "value_schema", str, where, "json, string or an Avro full name"),
        framing=reader.get(raw, "framing", str, where, "single-object or confluent"),
        municipality_code=municipality,
        backed_up=backed_up,
    )


def _file(reader: _Reader, raw: Any, i: int) -> FileEntry:
    where = f"files[{i}]"
    path = _relative(reader, reader.get(raw, "path", str, where, "a relative path"), f"{where}.path")
    where = f"files[{i}] {path}"
    sha = reader.get(raw, "sha256", str, where, "64 hex digits")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise reader.fail(f"{where}.sha256", f"is {sha!r}", "64 lower-case hex digits")
    kind = reader.get(raw, "kind", str, where, f"one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise reader.fail(f"{where}.kind", f"is {kind!r}", f"one of {', '.join(KINDS)}")
    return FileEntry(
        path=path,
        sha256=sha,
        size=reader.count(raw, "size", where),
        kind=kind,
        secret=reader.get(raw, "secret", bool, where, "true or false"),
        source=str(raw.get("source", "")),
    )


def _groups(reader: _Reader, raw: Any) -> dict[str, dict[str, dict[int, int]]]:
    if not isinstance(raw, dict):
        raise reader.fail("groups", f"is {raw!r}", "a mapping group -> topic -> partition -> offset")
    groups: dict[str, dict[str, dict[int, int]]] = {}
    for group, topics in raw.items():
        if not isinstance(topics, dict):
            raise reader.fail(f"groups.{group}", f"is {topics!r}", "a mapping topic -> partition -> offset")
        groups[group] = {}
        for topic, parts in topics.items():
            where = f"groups.{group}.{topic}"
            if not isinstance(parts, dict) or not all(
                isinstance(p, str) and p.isdigit() and isinstance(o, int) and not isinstance(o, bool) and o >= 0
                for p, o in parts.items()
            ):
                raise reader.fail(where, f"is {parts!r}", 'a mapping "partition" -> offset >= 0')
            groups[group][topic] = {int(p): o for p, o in parts.items()}
    return groups


def parse_manifest(text: str, file: str) -> Manifest:
    """The manifest in ``text`` (read from ``file``); ``ConfigError`` naming the key when it is not one."""
    reader = _Reader(file)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise reader.fail("", f"not JSON: {exc}", "the manifest.json bosai backup create writes") from None
    if not isinstance(raw, dict):
        raise reader.fail("", "not a JSON object", "the manifest.json bosai backup create writes")
    version = raw.get("format")
    if version != FORMAT:
        raise reader.fail("format", f"is {version!r}", f"{FORMAT} (this bosai reads backups of format {FORMAT})")
    topics = tuple(_topic(reader, t, i) for i, t in enumerate(reader.get(raw, "topics", list, "", "a list of topics")))
    files = tuple(_file(reader, f, i) for i, f in enumerate(reader.get(raw, "files", list, "", "a list of files")))
    paths = [f.path for f in files]
    if len(paths) != len(set(paths)):
        raise reader.fail("files", "a path is listed twice", "each file once")
    listed = set(paths)
    for topic in topics:
        for part in topic.backed_up:
            if part.file not in listed:
                raise reader.fail(
                    f"topics {topic.name}[{part.partition}].file",
                    f"{part.file} is not in files",
                    "a file listed in files",
                )
    regions = reader.get(raw, "regions", list, "", "a list of region names")
    notes = raw.get("notes", [])
    return Manifest(
        created_at=reader.get(raw, "created_at", str, "", "an ISO 8601 time"),
        bosai_version=reader.get(raw, "bosai_version", str, "", "a version"),
        prefix=reader.get(raw, "prefix", str, "", "a topic prefix"),
        regions=tuple(str(r) for r in regions),
        consistent=reader.get(raw, "consistent", bool, "", "true or false"),
        topics=topics,
        groups=_groups(reader, raw.get("groups", {})),
        files=files,
        notes=tuple(str(n) for n in notes) if isinstance(notes, list) else (),
    )


# -- records as lines ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackedUpRecord:
    """A committed record as the backup keeps it (key, value and header values are bytes, or None)."""

    offset: int
    timestamp: int  # ms
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def record_line(record: BackedUpRecord) -> str:
    """One JSON line: bytes in base64, a tombstone's value null."""
    return (
        json.dumps(
            {
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": _b64(record.key),
                "value": _b64(record.value),
                "headers": [[k, _b64(v)] for k, v in record.headers],
            },
            separators=(",", ":"),
        )
        + "\n"
    )


class BadLine(ValueError):
    """A line of a records file that is not a backed-up record."""


def _bytes(value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadLine(f"{what} is {type(value).__name__}, not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadLine(f"{what} is not base64") from None


def parse_line(line: str | bytes) -> BackedUpRecord:
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadLine("not a JSON object")
    offset, timestamp, headers = raw.get("offset"), raw.get("timestamp"), raw.get("headers", [])
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadLine(f"offset is {offset!r}")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise BadLine(f"timestamp is {timestamp!r}")
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) for h in headers
    ):
        raise BadLine("headers is not a list of [name, base64] pairs")
    return BackedUpRecord(
        offset=offset,
        timestamp=timestamp,
        key=_bytes(raw.get("key"), "key"),
        value=_bytes(raw.get("value"), "value"),
        headers=tuple((h[0], _bytes(h[1], f"header {h[0]}") or b"") for h in headers),
    )


# -- restoring offsets -------------------------------------------------------------------------------------------


def translate_offset(old_offsets: Sequence[int], committed: int, base: int) -> int:
    """Where a group committed at ``committed`` on the backed-up partition resumes on the restored one.

    The restore writes the backed-up records in order from offset ``base`` without transactions, so the record
    that had offset ``old_offsets[i]`` gets ``base + i`` (its markers and aborted records are not copied). The
    group's next record is the first with an old offset at or after ``committed``."""
    return base + bisect.bisect_left(old_offsets, committed)


# -- verify: the files against the manifest -------------------------------------------------------------------


@dataclass(frozen=True)
class FoundFile:
    """What verify found on disk for one listed file (None: missing)."""

    sha256: str
    size: int
    records: int | None = None  # for a topic file: the records read from it
    problem: str = ""  # a topic file that could not be read to its end (not gzip, a bad line, offsets out of order)


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(manifest: Manifest, found: Mapping[str, FoundFile | None], extra: Iterable[str] = ()) -> Findings:
    """Every listed file against what was found: present, same size and sha256, a topic file's records counted.

    ``extra``: files in the folder the manifest does not list (added, or a backup that was not finished)."""
    findings = Findings()
    expected_records = {p.file: (t.name, p) for t in manifest.topics for p in t.backed_up}
    for entry in manifest.files:
        got = found.get(entry.path)
        findings.checked += 1
        if got is None:
            findings.problems.append(
                f"{entry.path}: missing (expected {entry.size} bytes, sha256 {entry.sha256[:12]}…)"
            )
            continue
        if got.size != entry.size:
            findings.problems.append(f"{entry.path}: size {got.size} bytes, expected {entry.size}")
        if got.sha256 != entry.sha256:
            findings.problems.append(f"{entry.path}: sha256 {got.sha256[:12]}…, expected {entry.sha256[:12]}…")
        if entry.path in expected_records:
            topic, part = expected_records[entry.path]
            if got.problem:
                findings.problems.append(f"{entry.path}: {got.problem}")
            elif got.records != part.records:
                findings.problems.append(
                    f"{entry.path}: {got.records} records, expected {part.records} ({topic}[{part.partition}])"
                )
            findings.records += got.records or 0
    for path in sorted(extra):
        findings.problems.append(f"{path}: not in the manifest")
    return findings


def check_offsets(offsets: Iterable[int], part: PartitionBackup) -> str:
    """'' when the offsets increase and lie within the partition's backed-up range, else what is wrong."""
    previous = -1
    for offset in offsets:
        if offset <= previous:
            return f"offset {offset} after {previous}: not in offset order"
        if not part.start_offset <= offset < part.end_offset:
            return f"offset {offset} outside {part.start_offset}..{part.end_offset}"
        previous = offset
    return ""
