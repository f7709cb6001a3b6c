"""The archive on disk: GeoParquet files written whole or not at all, and the manifest that commits them.

Every file is written under a temporary name, flushed to disk (fsync) and renamed; the manifest
(:mod:`streams.history.layout`) is written the same way, last. Readers use only the files the manifest names.
The spatial datasets (readings, alerts) are GeoParquet 1.1: a ``geometry`` column of WKB points with the ``geo``
metadata (lon/lat, OGC:CRS84, the file's bbox); each file also carries ``bosai`` metadata (dataset, region,
date, flush, and the Kafka offset range of each topic-partition it holds), so a file explains itself.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from streams.history.layout import (
    MANIFEST,
    SPATIAL,
    TEMP_SUFFIX,
    ArchivedFile,
    Manifest,
    OffsetRange,
    PartitionKey,
    merged_offsets,
    strays,
)
from streams.history.rows import QUANTITIES, Row
from streams.kernel.errors import BosaiError, ConfigError

log = logging.getLogger("bosai.history")
WRITER_LOCK = "_writer.lock"  # held (flock) by the archiver while it runs

_TS = pa.timestamp("ms", tz="UTC")
_KAFKA = [("kafka_topic", pa.string()), ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64())]
_MEASUREMENT = pa.struct([("quantity", pa.string()), ("value", pa.float64()), ("unit", pa.string())])
SCHEMAS: dict[str, pa.Schema] = {
    "readings": pa.schema(
        [
            *_KAFKA,
            ("region", pa.string()),
            ("station_id", pa.string()),
            ("sensor_kind", pa.string()),
            ("observed_at", _TS),
            ("quality", pa.string()),
            ("source", pa.string()),
            ("produced_at", _TS),
            ("municipality_code", pa.string()),
            ("city_code", pa.string()),
            ("geofence_method", pa.string()),
            ("distance_m", pa.float64()),
            ("hazard_zone_ids", pa.list_(pa.string())),
            ("measurements", pa.list_(_MEASUREMENT)),
            *[(q, pa.float64()) for q in QUANTITIES],
            ("lon", pa.float64()),
            ("lat", pa.float64()),
            ("alt_m", pa.float64()),
            ("geometry", pa.binary()),
        ]
    ),
    "alerts": pa.schema(
        [
            *_KAFKA,
            ("region", pa.string()),
            ("alert_id", pa.string()),
            ("sequence", pa.int32()),
            ("msg_type", pa.string()),
            ("transition", pa.string()),
            ("references", pa.string()),
            ("references_observed_at", _TS),
            ("prefecture_code", pa.string()),
            ("rule", pa.string()),
            ("level", pa.string()),
            ("level_rank", pa.int32()),
            ("warning_level", pa.int32()),
            ("event", pa.string()),
            ("headline", pa.string()),
            ("severity", pa.string()),
            ("urgency", pa.string()),
            ("certainty", pa.string()),
            ("sharing_level", pa.string()),
            ("station_id", pa.string()),
            ("observed_at", _TS),
            ("value", pa.float64()),
            ("unit", pa.string()),
            ("threshold", pa.float64()),
            ("area_description", pa.string()),
            ("hazard_zone_ids", pa.list_(pa.string())),
            ("municipality_codes", pa.list_(pa.string())),
            ("source_readings", pa.string()),
            ("source", pa.string()),
            ("status", pa.string()),
            ("expires", _TS),
            ("official", pa.string()),
            ("topics", pa.list_(pa.string())),
            ("lon", pa.float64()),
            ("lat", pa.float64()),
            ("geometry", pa.binary()),
        ]
    ),
    "official": pa.schema(
        [
            *_KAFKA,
            ("region", pa.string()),
            ("entry_id", pa.string()),
            ("url", pa.string()),
            ("entry_title", pa.string()),
            ("entry_updated", _TS),
            ("fetched_at", _TS),
            ("source", pa.string()),
            ("xml", pa.binary()),
        ]
    ),
    "deadletters": pa.schema(
        [
            *_KAFKA,
            ("region", pa.string()),
            ("reason", pa.string()),
            ("error_detail", pa.string()),
            ("stage", pa.string()),
            ("source_topic", pa.string()),
            ("source_partition", pa.int32()),
            ("source_offset", pa.int64()),
            ("source_timestamp", _TS),
            ("original_key", pa.binary()),
            ("original_value", pa.binary()),
            ("failed_at", _TS),
            ("worker", pa.string()),
        ]
    ),
}


def geo_metadata(table: pa.Table) -> dict[str, Any]:
    """GeoParquet 1.1 metadata of a table with a WKB point ``geometry`` column (and lon/lat columns)."""
    lons = [v for v in table.column("lon").to_pylist() if v is not None]
    lats = [v for v in table.column("lat").to_pylist() if v is not None]
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["Point"]}
    if lons and lats:
        column["bbox"] = [min(lons), min(lats), max(lons), max(lats)]
    return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(temp: Path, final: Path) -> None:
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)
    _fsync_dir(final.parent)


class ArchiveStore:
    """One archive folder: its manifest, its files, written durably and committed atomically."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """The archive's one writer: a second archiver on the same folder is refused, not interleaved."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / WRITER_LOCK
        with open(path, "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BosaiError(f"{path}: another archiver writes to this archive (one writer per folder)") from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def manifest(self) -> Manifest:
        """The committed manifest (an empty one when nothing was ever archived here)."""
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise ConfigError(self.manifest_path, f"cannot read: {exc.strerror or exc}") from None
        return Manifest.from_text(text, str(self.manifest_path))

    def commit(self, manifest: Manifest) -> None:
        """Make ``manifest`` the archive's: written beside, flushed, renamed over the old one."""
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / (MANIFEST + TEMP_SUFFIX)
        temp.write_text(manifest.to_text(), encoding="utf-8")
        _replace_durably(temp, self.manifest_path)

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def found(self) -> list[str]:
        """Every Parquet and temporary file under the dataset folders (relative paths)."""
        paths = []
        for dataset in SCHEMAS:
            folder = self.root / dataset
            if folder.is_dir():
                paths += [p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file()]
        return paths

    def remove_strays(self, manifest: Manifest) -> list[str]:
        """Remove what an interrupted flush or compaction left (files the manifest does not name)."""
        removed = strays(manifest, self.found())
        for relative in removed:
            (self.root / relative).unlink(missing_ok=True)
        if removed:
            log.info("removed %d file(s) no committed manifest names: %s", len(removed), removed[:5])
        return removed

    def write(
        self,
        key: PartitionKey,
        rows: Sequence[Row],
        *,
        sequence: int,
        index: int,
        offsets: Mapping[str, Mapping[int, OffsetRange]],
    ) -> ArchivedFile:
        """Write one file (durably, under its final name); it counts once a manifest naming it is committed."""
        table = pa.Table.from_pylist(list(rows), schema=SCHEMAS[key.dataset])
        relative = key.file(sequence, index)
        return self._write_table(key, table, relative, sequence, offsets)

    def _write_table(
        self,
        key: PartitionKey,
        table: pa.Table,
        relative: str,
        sequence: int,
        offsets: Mapping[str, Mapping[int, OffsetRange]],
    ) -> ArchivedFile:
        archived = ArchivedFile(relative, key, table.num_rows, sequence, offsets)
        metadata = {b"bosai": json.dumps(archived.to_json(), ensure_ascii=False).encode()}
        if key.dataset in SPATIAL:
            metadata[b"geo"] = json.dumps(geo_metadata(table)).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        final = self.root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(final.name + TEMP_SUFFIX)
        pq.write_table(table, temp, compression="zstd")
        _replace_durably(temp, final)
        return archived

    def compact(self, files: Sequence[ArchivedFile], *, sequence: int) -> ArchivedFile:
        """One file with every row of ``files`` (one partition folder), in offset order; the caller commits the
        manifest that replaces them, then removes them (:meth:`remove_strays`)."""
        key = files[0].key
        tables = [pq.read_table(self.root / f.path, schema=SCHEMAS[key.dataset]) for f in files]
        table = pa.concat_tables(tables).sort_by(
            [("kafka_topic", "ascending"), ("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
        )
        return self._write_table(key, table, key.file(sequence, 0), sequence, merged_offsets(files))

    def committed_paths(self, files: Iterable[ArchivedFile]) -> list[str]:
        return [str(self.root / f.path) for f in files]


def write_export(dataset: str, table: pa.Table, path: Path) -> None:
    """A query's rows as one Parquet file (GeoParquet for the spatial datasets), written whole or not at all."""
    metadata = {b"geo": json.dumps(geo_metadata(table)).encode()} if dataset in SPATIAL else {}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    temp = path.with_name(path.name + TEMP_SUFFIX)
    pq.write_table(table, temp, compression="zstd")
    _replace_durably(temp, path)
