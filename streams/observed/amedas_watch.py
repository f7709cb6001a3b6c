"""``bosai amedas watch``: JMA's AMeDAS 10-minute data into the raw readings topics, restart-safe.

Live: every ``interval`` it reads ``latest_time.txt`` and fetches the map files it has not processed
(``map/YYYYMMDDHHmm00.json``, one per 10 minutes), oldest first — after a gap (a restart, JMA or the
network down) it catches up on the missed files, at most ``max_catch_up`` of them (older ones are
counted and left to a backfill). Backfill: ``since``/``until`` (JST) fetch that range in order and
exit. Each pack station's precipitation (10 min, 1 h, 24 h; see :mod:`streams.observed.amedas_map` for the
quality flags) becomes a SensorReading on its region's raw topic, keyed by station id. A map file
that does not exist (404) is counted and skipped; an empty map is normal; a changed layout stops
nothing but raises a clear error in the log and ``bosai_poll_layout_errors_total``.

**Restart-safe.** On start the poller reads back what it wrote (the raw topics, the last
``lookback``): the (station, observed time) pairs already there. It writes a station's reading for a
time only when that pair is not there, so a restart — or a backfill over a range partly done —
writes nothing twice and skips nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from streams.kernel.region import RegionPack
from streams.kernel.times import jst_iso
from streams.kernel.topics import Catalog, HubTopics
from streams.observed.amedas_map import (
    SOURCE,
    STEP_MS,
    LayoutError,
    floor_step,
    map_file,
    parse_latest_time,
    parse_map,
    readings_of,
)
from streams.platform import health, kafka, metrics
from streams.platform.avro import READING, AvroCodec, CodecError, SchemaStore
from streams.platform.http_fetch import FetchError, HttpFetcher, RetryPolicy, pause

log = logging.getLogger("bosai.amedas_watch")
BASE_URL = "https://www.jma.go.jp/bosai/amedas/data"
POLLER = "amedas"
Progress = Callable[[str], None]


@dataclass
class AmedasSettings:
    base_url: str = BASE_URL
    interval_s: float = 60.0
    max_catch_up: int = 36  # map files (6 hours) caught up after a gap; older ones need a backfill
    lookback_s: float = 2 * 86400.0
    since_ms: int | None = None  # backfill: from (inclusive) …
    until_ms: int | None = None  # … to (inclusive), then exit
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_polls: int | None = None


class AmedasWatcher:
    """Which stations go where, and which (station, time) readings are already written."""

    def __init__(
        self,
        packs: Sequence[RegionPack],
        catalog: Catalog,
        store: SchemaStore,
        bootstrap: str,
        settings: AmedasSettings,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.codec = AvroCodec(store, READING)
        self.topic_of: dict[str, str] = {}  # station id -> raw topic
        self.region_of: dict[str, str] = {}
        for pack in packs:
            raw = HubTopics.for_region(catalog, pack).raw
            for station in pack.stations.values():
                if station.kind.value == "rain_gauge" and station.station_id.isdigit():
                    self.topic_of[station.station_id] = raw
                    self.region_of[station.station_id] = pack.name
        self.written: set[tuple[str, int]] = set()
        self.newest: int | None = None  # newest time written (by any run)
        self.processed: int | None = None  # newest file fully processed by this run (written, missing or empty)

    async def restore(self) -> int:
        since = int((time.time() - self.settings.lookback_s) * 1000)
        topics = sorted(set(self.topic_of.values()))
        for message in await kafka.read_since(self.bootstrap, topics, since):
            try:
                record = self.codec.decode(message.value)
            except CodecError:
                continue
            if record["source"] == SOURCE and record["station_id"] in self.topic_of:
                self.written.add((record["station_id"], record["observed_at"]))
                self.newest = max(self.newest or 0, record["observed_at"])
        return len(self.written)

    async def file(self, fetcher: HttpFetcher, producer: AIOKafkaProducer, observed_at: int) -> str:
        """Fetch one map file and write the readings not written yet; returns what happened."""
        url = f"{self.settings.base_url}/{map_file(observed_at)}"
        try:
            fetched = await fetcher.get(url, not_found_ok=True)
        except FetchError:
            metrics.AMEDAS_FILES.labels("fetch_failed").inc()
            raise
        if fetched.status == 404:
            metrics.AMEDAS_FILES.labels("missing").inc()
            self.processed = max(self.processed or 0, observed_at)
            return "missing"
        try:
            readings = readings_of(parse_map(fetched.body), self.topic_of, observed_at)
        except LayoutError as exc:
            metrics.AMEDAS_FILES.labels("layout_error").inc()
            metrics.POLL_LAYOUT_ERRORS.labels(POLLER).inc()
            log.error("AMeDAS map %s is not in the layout the poller knows: %s", url, exc)
            self.processed = max(self.processed or 0, observed_at)
            return f"layout error: {exc}"
        new = [r for r in readings if (r["station_id"], observed_at) not in self.written]
        futures = [
            await producer.send(self.topic_of[r["station_id"]], payload, key=r["station_id"].encode())
            for r, payload in zip(new, self.codec.encode_many(new), strict=True)
        ]
        await asyncio.gather(*futures)
        for r in new:
            self.written.add((r["station_id"], observed_at))
            metrics.POLLER_RECORDS.labels(POLLER, self.region_of[r["station_id"]]).inc()
        self.newest = max(self.newest or 0, observed_at)
        self.processed = max(self.processed or 0, observed_at)
        metrics.AMEDAS_FILES.labels("produced" if readings else "empty").inc()
        return f"{len(new)} reading(s)"

    def due(self, latest: int) -> list[int]:
        """The 10-minute times to fetch up to ``latest``, at most max_catch_up: after the newest this run
        processed; on a restart from the newest already written (which a stop may have cut short)."""
        if self.processed is not None:
            start = self.processed + STEP_MS
        else:
            start = self.newest if self.newest is not None else latest
        first = max(start, latest - (self.settings.max_catch_up - 1) * STEP_MS)
        if first > start:
            skipped = (first - start) // STEP_MS
            log.warning("%d map file(s) before %s are beyond the catch-up limit: backfill them", skipped, first)
        return list(range(first, latest + 1, STEP_MS))


async def _latest(fetcher: HttpFetcher, base_url: str) -> int:
    fetched = await fetcher.get(f"{base_url}/latest_time.txt")
    try:
        return parse_latest_time(fetched.body.decode("utf-8", "replace"))
    except LayoutError:
        metrics.POLL_LAYOUT_ERRORS.labels(POLLER).inc()
        raise


async def _run_times(
    watcher: AmedasWatcher, fetcher: HttpFetcher, producer: AIOKafkaProducer, times: Sequence[int]
) -> list[int]:
    """Fetch the files in order; stop at the first one that cannot be fetched and return the times left."""
    for i, observed_at in enumerate(times):
        try:
            outcome = await watcher.file(fetcher, producer, observed_at)
        except FetchError as exc:
            log.warning("AMeDAS map of %s not fetched: %s", jst_iso(observed_at), exc)
            return list(times[i:])
        log.info("%s: %s", jst_iso(observed_at), outcome)
    return []


async def watch(watcher: AmedasWatcher, *, progress: Progress, stop: asyncio.Event | None = None) -> int:
    """Backfill (since/until) and exit, or poll until stopped; returns the number of polls."""
    stop = stop or asyncio.Event()
    settings = watcher.settings
    health.READINESS.waiting("kafka", "reading the cursor from Kafka")
    restored = await watcher.restore()
    health.READINESS.ok("kafka", "cursor restored")
    progress(f"amedas watch: {len(watcher.topic_of)} station(s); {restored} reading(s) already written")
    polls = 0
    async with (
        HttpFetcher(POLLER, policy=settings.retry) as fetcher,
        kafka.started_producer(watcher.bootstrap) as producer,
    ):
        if settings.since_ms is not None:
            until = settings.until_ms if settings.until_ms is not None else settings.since_ms
            left = list(range(floor_step(settings.since_ms + STEP_MS - 1), until + 1, STEP_MS))
            while left and not stop.is_set():
                polls += 1
                left = await _run_times(watcher, fetcher, producer, left)
                if left:  # JMA (or the network) is down: try again from the file that failed
                    await asyncio.sleep(settings.interval_s)
            return polls
        while not stop.is_set():
            try:
                latest = await _latest(fetcher, settings.base_url)
                if not await _run_times(watcher, fetcher, producer, watcher.due(latest)):
                    metrics.POLL_LAST_SUCCESS.labels(POLLER).set(time.time())
            except (FetchError, LayoutError) as exc:
                log.error("latest_time.txt: %s", exc)
            polls += 1
            if settings.max_polls is not None and polls >= settings.max_polls:
                break
            await pause(stop, settings.interval_s)
    return polls
