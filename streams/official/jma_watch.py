"""``bosai jma watch``: JMA's Atom PULL feed into the official-reports topics, restart-safe.

Every ``interval`` it GETs the short feed (``extra.xml``, JMA's "高頻度（随時）" feed, updated every
minute and covering about the last ten minutes) with ``If-Modified-Since``; a ``304`` means nothing new.
Entries are filtered by title before anything is fetched (only the kinds the hub handles:
土砂災害警戒情報, 指定河川洪水予報, 記録的短時間大雨情報); each new entry's XML is fetched once, parsed
safely, and written to the official-reports topic of every region pack whose prefecture it concerns
(keyed ``<InfoKind>|<EventID>``); reports of no pack's prefecture are counted and dropped, documents the
hub cannot read go to every region to be dead-lettered there.

**Restart-safe.** On start the poller reads back what it wrote (the official-reports topics, the last
``lookback``) and takes its cursor from there: the (topic, entry id) pairs already written. So a
restart writes nothing twice and — because after a gap longer than the short feed covers (a restart
after a while, a feed down for a while, an entry whose XML could not be fetched) it reads the long
feed (``extra_l.xml``) once — skips nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, HubTopics
from streams.official.jma_xml import MAX_REPORT_BYTES, FeedEntry, JmaXmlError, parse_feed
from streams.official.report import KINDS
from streams.official.routing import OTHER_PREFECTURE, Routed, route
from streams.platform import health, kafka, metrics
from streams.platform.avro import OFFICIAL_REPORT, AvroCodec, CodecError, SchemaStore
from streams.platform.http_fetch import FetchError, HttpFetcher, RetryPolicy, pause

log = logging.getLogger("bosai.jma_watch")
SHORT_FEED = "https://www.data.jma.go.jp/developer/xml/feed/extra.xml"
SHORT_FEED_SPAN_S = 600.0  # the short feed covers about ten minutes
POLLER = "jma"
Progress = Callable[[str], None]


def long_feed_for(feed_url: str) -> str:
    """extra.xml -> extra_l.xml (JMA's long feed of the same kind, covering several days)."""
    return feed_url[: -len(".xml")] + "_l.xml" if feed_url.endswith(".xml") else feed_url


@dataclass
class WatchSettings:
    feed_url: str = SHORT_FEED
    long_feed_url: str = ""
    interval_s: float = 60.0
    short_feed_span_s: float = SHORT_FEED_SPAN_S
    lookback_s: float = 8 * 86400.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_polls: int | None = None  # stop after this many polls (scripts and tests); None: until stopped

    def __post_init__(self) -> None:
        self.long_feed_url = self.long_feed_url or long_feed_for(self.feed_url)


class JmaWatcher:
    """The poller's state: what is already written, the feed's Last-Modified, when it last succeeded."""

    def __init__(
        self, packs: Sequence[RegionPack], catalog: Catalog, store: SchemaStore, bootstrap: str, settings: WatchSettings
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.codec = AvroCodec(store, OFFICIAL_REPORT)
        self.topics_by_prefecture: dict[str, list[str]] = {}
        self.region_of: dict[str, str] = {}
        for pack in packs:
            topic = HubTopics.for_region(catalog, pack).official
            self.topics_by_prefecture.setdefault(pack.prefecture_code, []).append(topic)
            self.region_of[topic] = pack.name
        self.all_topics = [t for ts in self.topics_by_prefecture.values() for t in ts]
        self.written: set[tuple[str, str]] = set()  # (topic, entry id)
        self.done: set[str] = set()  # entry ids written to every topic they go to, or not for these packs
        self.unfinished: list[tuple[str, bytes]] = []  # (entry id, record) written to some of its topics only
        self.last_modified: str | None = None
        self.last_success: float | None = None  # wall clock
        self.need_long = False

    async def restore(self) -> int:
        """The cursor from the topics this poller writes: what is already there, and when it last wrote.

        A report written to some of its regions' topics only (the poller stopped in between) is
        finished from the copy already written, before the first poll.
        """
        since = int((time.time() - self.settings.lookback_s) * 1000)
        newest = None
        records: dict[str, bytes] = {}
        for message in await kafka.read_since(self.bootstrap, self.all_topics, since):
            if message.value is None:
                continue
            try:
                record = self.codec.decode(message.value)
            except CodecError:
                continue
            if record["source"] != "jma-feed":
                continue
            self.written.add((message.topic, record["entry_id"]))
            records.setdefault(record["entry_id"], message.value)
            newest = max(newest or 0, record["fetched_at"])
        for entry_id, value in records.items():
            routed = route(self.codec.decode(value)["xml"], entry_id, self.topics_by_prefecture)
            if all((t, entry_id) in self.written for t in routed.topics):
                self.done.add(entry_id)
            else:
                self.unfinished.append((entry_id, value))
        gap = time.time() - newest / 1000 if newest else None
        self.need_long = gap is None or gap > self.settings.short_feed_span_s
        return len(self.done)

    async def finish(self, producer: AIOKafkaProducer) -> None:
        """Write the reports the poller had written to only some of their topics when it stopped."""
        for entry_id, value in self.unfinished:
            routed = route(self.codec.decode(value)["xml"], entry_id, self.topics_by_prefecture)
            await self._write(producer, entry_id, routed, value)
            self.done.add(entry_id)
        self.unfinished.clear()

    async def _write(self, producer: AIOKafkaProducer, entry_id: str, routed: Routed, value: bytes) -> None:
        for topic in routed.topics:
            if (topic, entry_id) in self.written:
                continue
            await producer.send_and_wait(topic, value, key=routed.key.encode())
            self.written.add((topic, entry_id))
            metrics.POLLER_RECORDS.labels(POLLER, self.region_of[topic]).inc()

    def _wanted(self, entry: FeedEntry) -> bool:
        """Title filter first (nothing is fetched for other kinds); then what is not written yet."""
        if entry.title not in KINDS:
            metrics.JMA_FEED_ENTRIES.labels("other_title").inc()
            return False
        if entry.entry_id in self.done:
            metrics.JMA_FEED_ENTRIES.labels("already_produced").inc()
            return False
        return True

    async def _entry(self, fetcher: HttpFetcher, producer: AIOKafkaProducer, entry: FeedEntry) -> bool:
        """Fetch one entry's XML and write it where it belongs; False when it could not be fetched."""
        try:
            fetched = await fetcher.get(entry.url)
        except FetchError as exc:
            metrics.JMA_FEED_ENTRIES.labels("fetch_failed").inc()
            log.warning("report not fetched (will be fetched again from the long feed): %s", exc)
            return False
        routed = route(fetched.body, entry.entry_id, self.topics_by_prefecture)
        if routed.outcome == OTHER_PREFECTURE:
            self.done.add(entry.entry_id)  # (this process only: nothing in the topics says so)
            metrics.JMA_FEED_ENTRIES.labels("other_prefecture").inc()
            return True
        value = self.codec.encode(
            {
                "xml": fetched.body,
                "entry_id": entry.entry_id,
                "url": entry.url,
                "fetched_at": int(time.time() * 1000),
                "entry_title": entry.title,
                "entry_updated": entry.updated,
                "source": "jma-feed",
            }
        )
        await self._write(producer, entry.entry_id, routed, value)
        self.done.add(entry.entry_id)
        metrics.JMA_FEED_ENTRIES.labels("produced").inc()
        return True

    async def poll(self, fetcher: HttpFetcher, producer: AIOKafkaProducer) -> str:
        """One poll: the short feed (or the long one after a gap); returns what happened, for logs."""
        if self.last_success is not None and time.time() - self.last_success > self.settings.short_feed_span_s:
            self.need_long = True  # the short feed no longer reaches back to the last poll that worked
        long = self.need_long
        url = self.settings.long_feed_url if long else self.settings.feed_url
        try:
            fetched = await fetcher.get(url, if_modified_since=None if long else self.last_modified)
        except FetchError as exc:
            return f"feed not fetched: {exc}"
        now = time.time()
        if fetched.status == 304:
            self.last_success = now
            metrics.POLL_LAST_SUCCESS.labels(POLLER).set(now)
            return "not modified"
        try:
            _updated, entries = parse_feed(fetched.body)
        except JmaXmlError as exc:
            metrics.POLL_LAYOUT_ERRORS.labels(POLLER).inc()
            log.error("JMA's feed %s is not the Atom feed the poller knows: %s", url, exc)
            return f"feed unreadable: {exc}"
        complete = True
        for entry in entries:
            if self._wanted(entry):
                complete = await self._entry(fetcher, producer, entry) and complete
        self.need_long = not complete
        if not long:
            self.last_modified = fetched.last_modified
        self.last_success = now
        metrics.POLL_LAST_SUCCESS.labels(POLLER).set(now)
        return f"{'long' if long else 'short'} feed: {len(entries)} entries"


async def watch(watcher: JmaWatcher, *, progress: Progress, stop: asyncio.Event | None = None) -> int:
    """Poll until stopped (or ``max_polls``); returns the number of polls."""
    stop = stop or asyncio.Event()
    settings = watcher.settings
    health.READINESS.waiting("kafka", "reading the cursor from Kafka")
    restored = await watcher.restore()
    health.READINESS.ok("kafka", "cursor restored")
    progress(
        f"jma watch: {restored} report(s) already written to {', '.join(watcher.all_topics)}; "
        f"polling {settings.feed_url} every {settings.interval_s:g} s"
        + (" (long feed first: a gap since the last report written)" if watcher.need_long else "")
    )
    polls = 0
    async with (
        HttpFetcher(POLLER, policy=settings.retry, max_bytes=MAX_REPORT_BYTES * 4) as fetcher,
        kafka.started_producer(watcher.bootstrap) as producer,
    ):
        await watcher.finish(producer)
        while not stop.is_set():
            outcome = await watcher.poll(fetcher, producer)
            polls += 1
            log.info("poll %d: %s", polls, outcome)
            if settings.max_polls is not None and polls >= settings.max_polls:
                break
            await pause(stop, settings.interval_s)
    return polls
