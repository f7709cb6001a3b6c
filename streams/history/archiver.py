"""`bosai archive`: every region's enriched readings, alerts, official reports and dead letters into the
archive, exactly once.

One consumer reads every archived topic-partition (assigned, not a consumer group: the archive's manifest,
not the group's committed offsets, says where to continue) with ``read_committed``, in batches (``getmany``).
Rows are buffered per dataset, region and JST date, and flushed — files written durably, then the manifest
committed with the offsets the files hold (:mod:`streams.history.layout`) — when the buffer is large, old,
or the topics are idle. On start the archiver removes what an interrupted flush left and seeks each
partition to the manifest's offset: ``kill -9`` at any moment neither loses a record nor archives one twice.
With ``--postgis`` the same rows go to PostGIS instead, each flush one transaction with the offsets
(:mod:`streams.history.postgis`), and the archiver continues from the offsets table.

Metrics: ``bosai_archive_lag_messages`` per topic (end offsets minus the archive's), and
``bosai_archive_last_write_timestamp_seconds`` (the last committed manifest). Health: ready once every
partition is assigned and positioned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from streams.history.layout import DATASETS, ArchivedFile, Manifest, OffsetRange, PartitionKey, day_before, to_compact
from streams.history.postgis import PostgisStore
from streams.history.rows import (
    Position,
    Row,
    Source,
    alert_row,
    dead_letter_row,
    official_row,
    reading_row,
    undecodable_row,
)
from streams.history.store import ArchiveStore
from streams.kernel.errors import BosaiError, SettingsError
from streams.kernel.messages import AvroRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, HubTopics
from streams.platform import health, kafka, metrics
from streams.platform.avro import ALERT, DEAD_LETTER, ENRICHED, OFFICIAL_REPORT, AvroCodec, CodecError, SchemaStore

log = logging.getLogger("bosai.archive")
Progress = Callable[[str], None]
LAG_EVERY_S = 15.0


@dataclass(frozen=True)
class ArchiveSettings:
    """What one archiver does; checked when made (SettingsError names the setting)."""

    history: Path | None  # the GeoParquet archive folder (or, with postgis, None)
    packs: Sequence[RegionPack]
    catalog: Catalog
    bootstrap: str
    flush_rows: int = 50_000  # rows buffered before a flush
    flush_s: float = 60.0  # the oldest buffered row waits at most this long
    max_records: int = 10_000  # per poll
    until_caught_up: bool = False  # stop once every partition reached the end it had when the archiver started
    compact_min_files: int = 24  # a day's folder with this many files is merged into one (0: never)
    compact_every_s: float = 600.0
    postgis: str | None = None  # a PostgreSQL DSN: archive into PostGIS instead of a folder

    def __post_init__(self) -> None:
        if (self.history is None) == (self.postgis is None):
            raise SettingsError("archive", "store", (self.history, self.postgis), "a folder or a PostGIS DSN, not both")
        if not self.packs:
            raise SettingsError("archive", "packs", [], "at least one region pack")
        if self.flush_rows < 1:
            raise SettingsError("archive", "flush_rows", self.flush_rows, "at least 1")
        if not self.flush_s > 0:
            raise SettingsError("archive", "flush_s", self.flush_s, "a positive number of seconds")
        if self.compact_min_files == 1:
            raise SettingsError("archive", "compact_min_files", 1, "0 (never) or at least 2")


@dataclass(frozen=True)
class Route:
    """How one archived topic's records become rows."""

    region: str
    dataset: str
    codec: AvroCodec
    make: Callable[[AvroRecord, Source], tuple[PartitionKey, Row]]


def routes_for(packs: Sequence[RegionPack], catalog: Catalog, store: SchemaStore) -> dict[str, Route]:
    """Every archived topic: each region's enriched readings, alerts (the prefecture's topic: every event once),
    official reports and dead letters."""
    codecs = {name: AvroCodec(store, name) for name in (ENRICHED, ALERT, OFFICIAL_REPORT, DEAD_LETTER)}
    routes: dict[str, Route] = {}
    for pack in packs:
        topics = HubTopics.for_region(catalog, pack)
        stations: dict[str, Position] = {s.station_id: (s.lon, s.lat, s.alt_m) for s in pack.stations.values()}
        region = pack.name

        def readings(
            record: AvroRecord, source: Source, s: Mapping[str, Position] = stations
        ) -> tuple[PartitionKey, Row]:
            return reading_row(record, source, s)

        def alerts(record: AvroRecord, source: Source, t: HubTopics = topics) -> tuple[PartitionKey, Row]:
            return alert_row(record, source, t)

        def official(record: AvroRecord, source: Source, r: str = region) -> tuple[PartitionKey, Row]:
            return official_row(record, source, r)

        def dead(record: AvroRecord, source: Source, r: str = region) -> tuple[PartitionKey, Row]:
            return dead_letter_row(record, source, r)

        routes[topics.enriched] = Route(region, "readings", codecs[ENRICHED], readings)
        routes[topics.alerts] = Route(region, "alerts", codecs[ALERT], alerts)
        routes[topics.official] = Route(region, "official", codecs[OFFICIAL_REPORT], official)
        routes[topics.deadletter] = Route(region, "deadletters", codecs[DEAD_LETTER], dead)
    return routes


@dataclass
class Buffer:
    """Rows not yet flushed, per partition folder, with the offset range of each topic-partition they hold."""

    rows: dict[PartitionKey, list[Row]] = field(default_factory=lambda: defaultdict(list))
    offsets: dict[PartitionKey, dict[str, dict[int, OffsetRange]]] = field(default_factory=dict)
    count: int = 0
    since: float | None = None  # monotonic time of the oldest row

    def add(self, key: PartitionKey, row: Row, now: float) -> None:
        self.rows[key].append(row)
        topic, partition, offset = row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]
        ranges = self.offsets.setdefault(key, {}).setdefault(topic, {})
        known = ranges.get(partition)
        ranges[partition] = (offset, offset) if known is None else (min(known[0], offset), max(known[1], offset))
        self.count += 1
        if self.since is None:
            self.since = now


@dataclass
class ArchiveStats:
    records: int = 0
    flushes: int = 0
    files: int = 0
    compactions: int = 0
    removed_strays: int = 0


class Archiver:
    """One archive folder fed from the topics of its regions."""

    def __init__(self, settings: ArchiveSettings, store: SchemaStore, progress: Progress = log.info):
        self.settings = settings
        self.store = ArchiveStore(settings.history) if settings.history is not None else None
        self.postgis = PostgisStore(settings.postgis) if settings.postgis is not None else None
        self.routes = routes_for(settings.packs, settings.catalog, store)
        self.progress = progress
        self.manifest = self.store.manifest() if self.store is not None else Manifest()
        self.stats = ArchiveStats()
        self.buffer = Buffer()
        self._last_compaction = time.monotonic()
        self._poll_records = min(settings.max_records, settings.flush_rows)  # a flush holds at most flush_rows

    # -- the loop ----------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> ArchiveStats:
        """Archive until ``stop`` is set (or, with ``until_caught_up``, until every partition reached its end)."""
        stop = stop or asyncio.Event()
        if self.postgis is not None:
            with self.postgis.writer_lock():
                return await self._run(stop)
        if self.store is None:
            raise BosaiError("the archiver has no store (a folder or a PostGIS DSN)")
        with self.store.writer_lock():
            return await self._run(stop)

    @property
    def target(self) -> str:
        return f"PostGIS ({self.postgis.where})" if self.postgis is not None else str(self.settings.history)

    async def _run(self, stop: asyncio.Event) -> ArchiveStats:
        # the one writer now: what an interrupted flush or compaction left goes, the manifest says where to go on
        if self.postgis is not None:
            await asyncio.to_thread(self.postgis.ensure_schema, list(DATASETS))
            self.manifest = Manifest(offsets=await asyncio.to_thread(self.postgis.offsets))
        elif self.store is not None:
            self.manifest = self.store.manifest()
            self.stats.removed_strays = len(self.store.remove_strays(self.manifest))
        health.READINESS.waiting("kafka", f"connecting to {self.settings.bootstrap}")
        client = kafka.consumer(self.settings.bootstrap, max_partition_fetch_bytes=4 << 20)
        await client.start()
        try:
            partitions = await self._assign(client)
            health.READINESS.ok("kafka", f"{len(partitions)} partition(s) of {len(self.routes)} topic(s)")
            ends = await client.end_offsets(partitions) if partitions else {}
            next_lag = 0.0
            while not stop.is_set():
                batch = await client.getmany(timeout_ms=500, max_records=self._poll_records)
                received = sum(len(items) for items in batch.values())
                for tp, items in batch.items():
                    self._buffer(tp, items)
                now = time.monotonic()
                if self._flush_due(now, idle=received == 0):
                    await self.flush(client, partitions)
                if now >= next_lag:
                    next_lag = now + LAG_EVERY_S
                    if received == 0:  # idle: commit positions that moved past transaction markers only
                        await self.flush(client, partitions)
                    await self._observe_lag(client, partitions)
                if self.settings.until_caught_up and await self._caught_up(client, ends):
                    break
                await self._maybe_compact(now)
            await self.flush(client, partitions)
            await self._observe_lag(client, partitions)
        finally:
            await client.stop()
        return self.stats

    async def _assign(self, client: AIOKafkaConsumer) -> list[kafka.TopicPartition]:
        partitions: list[kafka.TopicPartition] = []
        for topic in self.routes:
            found = await kafka.partitions_of(client, topic)
            if not found:
                log.warning("%s does not exist (yet): not archived until the archiver restarts", topic)
            partitions += [kafka.TopicPartition(topic, p) for p in found]
        if not partitions:
            raise BosaiError(
                f"none of the {len(self.routes)} archived topics exists (run `bosai topics apply`): "
                + ", ".join(sorted(self.routes)[:4])
            )
        client.assign(partitions)
        for tp in partitions:
            offset = self.manifest.next_offset(tp.topic, tp.partition)
            if offset is None:
                await client.seek_to_beginning(tp)
            else:
                client.seek(tp, offset)
        self.progress(
            f"archiving {len(partitions)} partition(s) of {len(self.routes)} topic(s) into {self.target} "
            f"(manifest #{self.manifest.sequence}: {len(self.manifest.files)} file(s))"
            + (f"; removed {self.stats.removed_strays} uncommitted file(s)" if self.stats.removed_strays else "")
        )
        return partitions

    def _buffer(self, tp: kafka.TopicPartition, items: Sequence[kafka.Record]) -> None:
        route = self.routes[tp.topic]
        now = time.monotonic()
        decoded = route.codec.decode_many([m.value for m in items])
        for message, record in zip(items, decoded, strict=True):
            source = Source(tp.topic, tp.partition, message.offset)
            if isinstance(record, CodecError):
                key, row = undecodable_row(
                    source, route.region, message.key, message.value, str(record), int(time.time() * 1000)
                )
            else:
                key, row = route.make(record, source)
            self.buffer.add(key, row, now)
        self.stats.records += len(items)

    def _flush_due(self, now: float, *, idle: bool) -> bool:
        buffer = self.buffer
        if not buffer.count:
            return False
        return (
            idle
            or buffer.count >= self.settings.flush_rows
            or (buffer.since is not None and now - buffer.since >= self.settings.flush_s)
        )

    async def _caught_up(self, client: AIOKafkaConsumer, ends: Mapping[kafka.TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await client.position(tp) < end:
                return False
        return True

    # -- commits -------------------------------------------------------------------------------------------------
    async def flush(self, client: AIOKafkaConsumer, partitions: Sequence[kafka.TopicPartition]) -> None:
        """Write the buffered rows and commit them with the offsets every partition has reached."""
        positions: dict[str, dict[int, int]] = {}
        for tp in partitions:
            position = await client.position(tp)
            if position != self.manifest.next_offset(tp.topic, tp.partition):
                positions.setdefault(tp.topic, {})[tp.partition] = position
        if not self.buffer.count and not positions:
            return
        buffer, self.buffer = self.buffer, Buffer()
        self.manifest = await asyncio.to_thread(self._commit, buffer, positions)
        self.stats.flushes += 1
        metrics.ARCHIVE_LAST_WRITE.set(time.time())

    def _commit(self, buffer: Buffer, positions: Mapping[str, Mapping[int, int]]) -> Manifest:
        now_ms = int(time.time() * 1000)
        if self.postgis is not None:
            by_dataset: dict[str, list[Row]] = {}
            for key, rows in buffer.rows.items():
                by_dataset.setdefault(key.dataset, []).extend(rows)
            self.postgis.commit(by_dataset, positions)
            return self.manifest.committed([], positions, now_ms)
        if self.store is None:
            raise BosaiError("the archiver has no store (a folder or a PostGIS DSN)")
        sequence = self.manifest.sequence + 1
        written: list[ArchivedFile] = []
        for index, (key, rows) in enumerate(sorted(buffer.rows.items())):
            rows.sort(key=lambda r: (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]))
            written.append(self.store.write(key, rows, sequence=sequence, index=index, offsets=buffer.offsets[key]))
        manifest = self.manifest.committed(written, positions, now_ms)
        self.store.commit(manifest)
        self.stats.files += len(written)
        if written:
            log.info("flush #%d: %d row(s) in %d file(s)", sequence, buffer.count, len(written))
        return manifest

    async def _maybe_compact(self, now: float) -> None:
        if (
            self.store is None
            or not self.settings.compact_min_files
            or now - self._last_compaction < self.settings.compact_every_s
        ):
            return
        self._last_compaction = now
        await asyncio.to_thread(self.compact)

    def compact(self, *, before_date: str | None = None) -> int:
        """Merge each finished day's folder of many small files into one; returns the folders merged."""
        if self.store is None:
            return 0
        groups = to_compact(
            self.manifest,
            min_files=max(2, self.settings.compact_min_files),
            before_date=before_date or day_before(int(time.time() * 1000)),
        )
        for files in groups:
            merged = self.store.compact(files, sequence=self.manifest.sequence + 1)
            manifest = self.manifest.replaced(files, merged, int(time.time() * 1000))
            self.store.commit(manifest)
            self.manifest = manifest
            self.store.remove_strays(manifest)
            self.stats.compactions += 1
        return len(groups)

    async def _observe_lag(self, client: AIOKafkaConsumer, partitions: Sequence[kafka.TopicPartition]) -> None:
        ends = await client.end_offsets(list(partitions))
        lag: dict[str, int] = defaultdict(int)
        for tp, end in ends.items():
            archived = self.manifest.next_offset(tp.topic, tp.partition) or 0
            lag[tp.topic] += max(0, end - archived)
        for topic in self.routes:
            metrics.ARCHIVE_LAG.labels(topic).set(lag.get(topic, 0))


def run_archiver(
    settings: ArchiveSettings, store: SchemaStore, stop: asyncio.Event | None = None, *, progress: Progress = log.info
) -> ArchiveStats:
    """Archive in a new event loop (the CLI's and the replay's way in)."""
    archiver = Archiver(settings, store, progress)
    return asyncio.run(archiver.run(stop))
