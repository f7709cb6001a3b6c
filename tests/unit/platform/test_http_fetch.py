"""The pollers' HTTP client against a local stand-in: down, slow, 500, truncated, 304 — retried or reported."""

from __future__ import annotations

import pytest

from streams.platform import metrics
from streams.platform.http_fetch import FetchError, HttpFetcher, RetryPolicy
from tests.support.jma_samples import KANAGAWA, sample
from tests.support.stand_ins import JmaFeed

FAST = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02, timeout_s=0.5)


@pytest.fixture()
def feed():
    stand_in = JmaFeed()
    stand_in.up()
    stand_in.slow_s = 2.0
    yield stand_in
    stand_in.close()
    assert stand_in.violations == []


def count(result: str) -> float:
    return metrics.POLL_REQUESTS.labels("test", result)._value.get()


async def fetch(url: str, **options):
    async with HttpFetcher("test", policy=FAST) as fetcher:
        return await fetcher.get(url, **options)


async def test_a_500_then_an_answer_is_retried_and_succeeds(feed):
    url = feed.publish("a.xml", sample(KANAGAWA[0]))
    feed.faults[feed.DATA + "a.xml"] = ["500", "500"]
    before = count("http_error")

    fetched = await fetch(url)

    assert fetched.status == 200 and fetched.body == sample(KANAGAWA[0])
    assert count("http_error") - before == 2 and feed.count(feed.DATA + "a.xml") == 3


async def test_a_truncated_body_is_never_taken_for_the_report(feed):
    url = feed.publish("a.xml", sample(KANAGAWA[0]))
    feed.faults[feed.DATA + "a.xml"] = ["truncated", "truncated", "truncated"]

    with pytest.raises(FetchError) as failed:
        await fetch(url)

    assert failed.value.reason == "truncated" and feed.count(feed.DATA + "a.xml") == 3


async def test_a_truncated_body_then_the_whole_one(feed):
    url = feed.publish("a.xml", sample(KANAGAWA[0]))
    feed.faults[feed.DATA + "a.xml"] = ["truncated"]

    fetched = await fetch(url)

    assert fetched.body == sample(KANAGAWA[0])


async def test_a_slow_answer_times_out_and_is_retried(feed):
    url = feed.publish("a.xml", sample(KANAGAWA[0]))
    feed.faults[feed.DATA + "a.xml"] = ["slow"]
    before = count("timeout")

    fetched = await fetch(url)

    assert fetched.status == 200 and count("timeout") - before == 1


async def test_a_server_that_is_down_is_reported_after_the_retries(feed):
    url = f"{feed.url}{feed.FEED}"
    feed.down()

    with pytest.raises(FetchError) as failed:
        await fetch(url)

    assert failed.value.reason == "connection_error"


async def test_if_modified_since_gets_a_304_until_something_is_published(feed):
    first = await fetch(f"{feed.url}{feed.FEED}")

    unchanged = await fetch(f"{feed.url}{feed.FEED}", if_modified_since=first.last_modified)
    feed.publish("a.xml", sample(KANAGAWA[0]))
    changed = await fetch(f"{feed.url}{feed.FEED}", if_modified_since=first.last_modified)

    assert (unchanged.status, unchanged.body) == (304, b"")
    assert changed.status == 200 and b"a.xml" in changed.body


async def test_a_404_is_an_error_unless_the_caller_expects_missing_files(feed):
    missing = f"{feed.url}{feed.DATA}none.xml"

    with pytest.raises(FetchError) as failed:
        await fetch(missing)
    allowed = await fetch(missing, not_found_ok=True)

    assert failed.value.reason == "http_error" and allowed.status == 404
    assert feed.count(feed.DATA + "none.xml") == 2  # a 4xx is not retried
