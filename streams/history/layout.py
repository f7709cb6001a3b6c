"""Where each archived row goes, and the manifest that commits the archive's files with their Kafka offsets.

The archive is a folder of Parquet files, Hive-partitioned by dataset, region and JST date::

    readings/region=tochigi/date=2023-09-04/part-00000017-000.parquet
    alerts/region=tochigi/date=2023-09-04/part-00000017-001.parquet
    _manifest.json

A file counts only once the manifest names it. The manifest is replaced as a whole (written beside, then
renamed over the old one: an atomic step), and it holds, with the list of files, the offset of every archived
topic-partition the archive continues from. Files and offsets therefore move together: a crash before the
rename leaves the old manifest (the new files are orphans, removed on start and written again from the old
offsets); a crash after it leaves the new one. Nothing is lost and nothing is archived twice, whenever the
process dies. This module is the pure part: names, the manifest as a value, and what to remove on start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from streams.kernel.errors import ConfigError
from streams.kernel.times import DAY_MS, jst

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1
TEMP_SUFFIX = ".tmp"
# dataset -> what it holds (the folder name is the dataset's name)
DATASETS = {
    "readings": "enriched readings (readings.enriched)",
    "alerts": "alert events (the prefecture's alerts topic: every event once)",
    "official": "official reports as received (official.raw)",
    "deadletters": "dead letters (deadletter)",
}
SPATIAL = ("readings", "alerts")  # the GeoParquet datasets (a point geometry each)
PART = re.compile(r"^part-(\d{8})-(\d{3})\.parquet$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One folder of the archive: a dataset, a region, a JST date (YYYY-MM-DD)."""

    dataset: str
    region: str
    date: str

    @property
    def folder(self) -> str:
        return f"{self.dataset}/region={self.region}/date={self.date}"

    def file(self, sequence: int, index: int) -> str:
        """The path of the ``index``-th file a flush (``sequence``) writes (relative to the archive)."""
        return f"{self.folder}/part-{sequence:08d}-{index:03d}.parquet"


def jst_date(epoch_ms: int) -> str:
    """The JST calendar date of an event time (the archive's date partition)."""
    return jst(epoch_ms).strftime("%Y-%m-%d")


def dates_between(since_ms: int | None, until_ms: int | None) -> tuple[str, str] | None:
    """The first and last JST dates an event-time range [since, until) may touch (None: unbounded)."""
    if since_ms is None and until_ms is None:
        return None
    first = jst_date(since_ms) if since_ms is not None else "0000-01-01"
    if until_ms is None:
        return first, "9999-12-31"
    return first, jst_date(until_ms - 1 if since_ms is None else max(since_ms, until_ms - 1))


OffsetRange = tuple[int, int]  # first and last offset of a topic-partition in one file


@dataclass(frozen=True)
class ArchivedFile:
    """A committed file: where it is, what it holds, and the offsets its rows came from."""

    path: str  # relative to the archive, '/'-separated
    key: PartitionKey
    rows: int
    sequence: int  # the flush that wrote it
    offsets: Mapping[str, Mapping[int, OffsetRange]] = field(default_factory=dict)  # topic -> partition -> range

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dataset": self.key.dataset,
            "region": self.key.region,
            "date": self.key.date,
            "rows": self.rows,
            "sequence": self.sequence,
            "offsets": {t: {str(p): list(r) for p, r in sorted(ps.items())} for t, ps in sorted(self.offsets.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArchivedFile:
        offsets = {
            str(t): {int(p): (int(r[0]), int(r[1])) for p, r in ps.items()} for t, ps in data.get("offsets", {}).items()
        }
        key = PartitionKey(str(data["dataset"]), str(data["region"]), str(data["date"]))
        return cls(str(data["path"]), key, int(data["rows"]), int(data["sequence"]), offsets)


@dataclass(frozen=True)
class Manifest:
    """What the archive holds: its files, and per topic-partition the next offset to archive."""

    sequence: int = 0  # flushes (and compactions) committed
    offsets: Mapping[str, Mapping[int, int]] = field(default_factory=dict)  # topic -> partition -> next offset
    files: tuple[ArchivedFile, ...] = ()
    committed_at_ms: int = 0  # wall clock of the commit (for people; never used to decide anything)

    def next_offset(self, topic: str, partition: int) -> int | None:
        return self.offsets.get(topic, {}).get(partition)

    def files_of(
        self, dataset: str, *, regions: Iterable[str] | None = None, dates: tuple[str, str] | None = None
    ) -> list[ArchivedFile]:
        """The dataset's files, of the regions and between the dates (inclusive) when given."""
        wanted = set(regions) if regions is not None else None
        return [
            f
            for f in self.files
            if f.key.dataset == dataset
            and (wanted is None or f.key.region in wanted)
            and (dates is None or dates[0] <= f.key.date <= dates[1])
        ]

    def rows_of(self, dataset: str) -> int:
        return sum(f.rows for f in self.files_of(dataset))

    def committed(
        self, written: Sequence[ArchivedFile], offsets: Mapping[str, Mapping[int, int]], now_ms: int
    ) -> Manifest:
        """The manifest after one flush: its files added, the offsets moved on (never back)."""
        merged: dict[str, dict[int, int]] = {t: dict(ps) for t, ps in self.offsets.items()}
        for topic, partitions in offsets.items():
            for partition, offset in partitions.items():
                known = merged.setdefault(topic, {}).get(partition)
                if known is not None and offset < known:
                    raise ValueError(f"{topic}[{partition}]: offset {offset} is before the archived {known}")
                merged[topic][partition] = offset
        return Manifest(self.sequence + 1, merged, (*self.files, *written), now_ms)

    def replaced(self, old: Sequence[ArchivedFile], new: ArchivedFile, now_ms: int) -> Manifest:
        """The manifest after a compaction: ``old`` files replaced by ``new`` (same rows), offsets unchanged."""
        gone = {f.path for f in old}
        if sum(f.rows for f in old) != new.rows:
            raise ValueError(
                f"compaction of {new.key.folder} would change {sum(f.rows for f in old)} rows to {new.rows}"
            )
        kept = tuple(f for f in self.files if f.path not in gone)
        return replace(self, sequence=self.sequence + 1, files=(*kept, new), committed_at_ms=now_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "sequence": self.sequence,
            "committed_at_ms": self.committed_at_ms,
            "offsets": {t: {str(p): o for p, o in sorted(ps.items())} for t, ps in sorted(self.offsets.items())},
            "files": [f.to_json() for f in self.files],
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str) -> Manifest:
        """The manifest from its JSON; ConfigError naming the file, the key and what was expected."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(source, f"not JSON: {exc}", expected="the archive's manifest") from None
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise ConfigError(source, "unknown manifest", where="version", expected=f"version: {MANIFEST_VERSION}")
        try:
            offsets = {str(t): {int(p): int(o) for p, o in ps.items()} for t, ps in data["offsets"].items()}
            files = tuple(ArchivedFile.from_json(f) for f in data["files"])
            return cls(int(data["sequence"]), offsets, files, int(data.get("committed_at_ms", 0)))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ConfigError(
                source, f"unreadable manifest: {type(exc).__name__}: {exc}", expected="sequence, offsets, files"
            ) from None


def strays(manifest: Manifest, found: Iterable[str]) -> list[str]:
    """Files in the archive's folders the manifest does not name: temporary files of an interrupted write and
    files of a flush whose manifest was never committed. Both are removed before archiving resumes."""
    named = {f.path for f in manifest.files}
    return sorted(p for p in found if p.endswith(TEMP_SUFFIX) or (PART.match(p.rsplit("/", 1)[-1]) and p not in named))


def to_compact(manifest: Manifest, *, min_files: int, before_date: str) -> list[list[ArchivedFile]]:
    """Groups of files to merge: every partition folder of a date before ``before_date`` (a day that is over)
    with at least ``min_files`` files."""
    folders: dict[PartitionKey, list[ArchivedFile]] = {}
    for f in manifest.files:
        folders.setdefault(f.key, []).append(f)
    return [
        sorted(files, key=lambda f: f.path)
        for key, files in sorted(folders.items())
        if key.date < before_date and len(files) >= min_files
    ]


def merged_offsets(files: Iterable[ArchivedFile]) -> dict[str, dict[int, OffsetRange]]:
    """The offset ranges of several files as one (the lowest first, the highest last offset)."""
    merged: dict[str, dict[int, OffsetRange]] = {}
    for f in files:
        for topic, partitions in f.offsets.items():
            for partition, (first, last) in partitions.items():
                known = merged.setdefault(topic, {}).get(partition)
                merged[topic][partition] = (
                    (first, last) if known is None else (min(known[0], first), max(known[1], last))
                )
    return merged


def day_before(epoch_ms: int) -> str:
    """The JST date of the day before ``epoch_ms`` (compaction waits for a day to be over, with a day's margin
    for late readings)."""
    return jst_date(epoch_ms - DAY_MS)
