"""`bosai jma watch` against a stand-in of JMA's feed, writing to the real broker: faults, gaps, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from streams.kernel.topics import HubTopics, expand
from streams.official.jma_watch import JmaWatcher, WatchSettings
from streams.packs.region_init import init_pack
from streams.packs.region_pack import load_pack
from streams.platform import kafka, metrics
from streams.platform.avro import OFFICIAL_REPORT, AvroCodec, default_store
from streams.platform.http_fetch import HttpFetcher, RetryPolicy
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import load_default_catalog
from tests.support.jma_samples import (
    FUKUOKA,
    FUKUOKA_N03,
    KANAGAWA,
    OSAKA_RECORD_RAIN,
    ROKKAKU,
    SAGA_N03,
    edited,
    sample,
)
from tests.support.stand_ins import JmaFeed

STORE = default_store()


@pytest.fixture(scope="module")
def packs(project_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("packs")
    init_pack("fukuoka", FUKUOKA_N03, None, root / "fukuoka")
    init_pack("saga", SAGA_N03, None, root / "saga")
    return [project_root / "regions" / "kanagawa", root / "fukuoka", root / "saga"]


async def written(bootstrap: str, catalog, pack_dirs) -> dict[str, list[str]]:
    """Entry ids on each region's official topic, in order."""
    out = {}
    for pack in (load_pack(d) for d in pack_dirs):
        topic = HubTopics.for_region(catalog, pack).official
        messages = await kafka.read_since(bootstrap, [topic], 0)
        out[pack.name] = [
            AvroCodec(STORE, OFFICIAL_REPORT).decode(m.value)["entry_id"].rsplit("/", 1)[-1] for m in messages
        ]
    return out


async def ready(bootstrap: str, prefix: str, pack_dirs):
    catalog = load_default_catalog(prefix)
    await apply_topics(bootstrap, expand(catalog, [load_pack(d).topics_input() for d in pack_dirs]))
    return catalog


def entries(result: str) -> float:
    return metrics.JMA_FEED_ENTRIES.labels(result)._value.get()


async def test_the_poller_writes_each_report_once_through_500s_truncation_304s_a_slow_feed_and_an_outage(
    kafka_bootstrap, unique, packs
):
    catalog = await ready(kafka_bootstrap, f"jw{unique}", packs)
    feed = JmaFeed(short_window_s=2.0)
    feed.up()
    feed.slow_s = 1.5
    settings = WatchSettings(
        feed_url=f"{feed.url}{feed.FEED}",
        short_feed_span_s=2.0,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.05, timeout_s=0.8),
    )
    watcher = JmaWatcher([load_pack(d) for d in packs], catalog, STORE, kafka_bootstrap, settings)
    other_title = edited(
        sample(KANAGAWA[0]),
        ("<Title>土砂災害警戒情報</Title>", "<Title>気象警報・注意報</Title>"),
        ("<InfoKind>土砂災害警戒情報</InfoKind>", "<InfoKind>気象警報・注意報</InfoKind>"),
    )
    feed.publish("k1.xml", sample(KANAGAWA[0]))
    feed.publish("osaka.xml", sample(OSAKA_RECORD_RAIN))
    feed.publish("warnings.xml", other_title)
    before = {r: entries(r) for r in ("produced", "other_prefecture", "other_title")}

    assert await watcher.restore() == 0 and watcher.need_long  # nothing written yet: the long feed first
    async with HttpFetcher("jma", policy=settings.retry) as fetcher, kafka.started_producer(kafka_bootstrap) as p:
        first = await watcher.poll(fetcher, p)  # long feed: k1 written, osaka dropped, warnings never fetched
        second = await watcher.poll(fetcher, p)  # short feed: nothing new
        third = await watcher.poll(fetcher, p)  # If-Modified-Since: 304
        feed.faults[feed.FEED] = ["500"]
        feed.publish("k2.xml", sample(KANAGAWA[1]))
        feed.faults[feed.DATA + "k2.xml"] = ["truncated"]
        fourth = await watcher.poll(fetcher, p)  # 500 then the feed; k2 cut short then whole
        feed.faults[feed.FEED] = ["slow", "slow"]
        fifth = await watcher.poll(fetcher, p)  # no answer in time, twice: nothing, no harm
        feed.down()
        sixth = await watcher.poll(fetcher, p)  # down
        feed.publish("k3.xml", sample(KANAGAWA[2]))
        feed.publish("fukuoka.xml", sample(FUKUOKA))
        feed.publish("saga.xml", sample(ROKKAKU))
        await asyncio.sleep(2.2)  # longer than the short feed covers: these entries leave it
        feed.up()
        seventh = await watcher.poll(fetcher, p)  # after the gap: the long feed, once
        eighth = await watcher.poll(fetcher, p)

    feed.close()
    assert first.startswith("long feed") and second.startswith("short feed") and third == "not modified"
    assert fourth.startswith("short feed") and "timeout" in fifth and "connection_error" in sixth
    assert seventh.startswith("long feed") and eighth.startswith("short feed")
    assert await written(kafka_bootstrap, catalog, packs) == {
        "kanagawa": ["k1.xml", "k2.xml", "k3.xml"],
        "fukuoka": ["fukuoka.xml"],
        "saga": ["saga.xml"],
    }
    assert feed.count(feed.DATA + "warnings.xml") == 0  # filtered by title before fetching
    assert feed.count(feed.DATA + "osaka.xml") == 1  # fetched once, concerns no pack
    assert feed.count(feed.LONG) == 2 and feed.violations == []
    assert entries("produced") - before["produced"] == 5
    assert entries("other_prefecture") - before["other_prefecture"] == 1
    assert entries("other_title") - before["other_title"] >= 1


def _count_written(result: dict[str, list[str]]) -> int:
    return sum(len(v) for v in result.values())


def test_killing_the_poller_and_restarting_it_writes_nothing_twice_and_skips_nothing(
    kafka_bootstrap, unique, packs, project_root, tmp_path
):
    prefix = f"jk{unique}"
    catalog = asyncio.run(ready(kafka_bootstrap, prefix, packs))
    feed = JmaFeed()
    feed.up()
    feed.delay_s[feed.DATA] = 0.7  # each report takes a while: the kill lands mid-poll
    for name, path in [("k1.xml", KANAGAWA[0]), ("f.xml", FUKUOKA), ("k2.xml", KANAGAWA[1])]:
        feed.publish(name, sample(path))
    feed.publish("s.xml", sample(ROKKAKU))
    feed.publish("k3.xml", sample(KANAGAWA[2]))
    command = [sys.executable, "-m", "streams.cli", "jma", "watch", "--topic-prefix", prefix]
    command += [a for d in packs for a in ("--region", str(d))]
    command += ["--feed", f"{feed.url}{feed.FEED}", "--interval", "0.3", "--timeout", "5"]
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    second = None
    with open(logs[0], "w") as log:
        first = subprocess.Popen(command, env=env, cwd=project_root, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _count_written(asyncio.run(written(kafka_bootstrap, catalog, packs))) < 2:
            assert time.monotonic() < deadline and first.poll() is None, logs[0].read_text()
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)  # a crash, mid-poll
        first.wait()
        before_restart = asyncio.run(written(kafka_bootstrap, catalog, packs))
        with open(logs[1], "w") as log:
            second = subprocess.Popen(command, env=env, cwd=project_root, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while _count_written(asyncio.run(written(kafka_bootstrap, catalog, packs))) < 5:
            assert time.monotonic() < deadline and second.poll() is None, logs[1].read_text()
            time.sleep(0.2)
        time.sleep(1.5)  # a few more polls: nothing more may come
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, logs[1].read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        feed.close()

    result = asyncio.run(written(kafka_bootstrap, catalog, packs))
    assert 2 <= _count_written(before_restart) < 5
    assert {k: sorted(v) for k, v in result.items()} == {
        "kanagawa": ["k1.xml", "k2.xml", "k3.xml"],
        "fukuoka": ["f.xml"],
        "saga": ["s.xml"],
    }
    assert all(n == 1 for v in result.values() for n in Counter(v).values())
    assert "already written" in logs[1].read_text() and feed.violations == []
