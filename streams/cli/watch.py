"""`bosai jma watch` and `bosai amedas watch`: the live pollers of JMA's public feeds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from streams.cli import common
from streams.kernel.errors import BosaiError

_common = [
    common.region_option,
    common.topic_prefix_option,
    click.option("--interval", "interval_s", default=60.0, show_default=True, help="Seconds between polls."),
    click.option("--timeout", "timeout_s", default=10.0, show_default=True, help="Seconds per HTTP request."),
    click.option("--attempts", default=4, show_default=True, help="Tries per request (backoff in between)."),
    common.metrics_options,
    click.option("--max-polls", type=int, default=None, help="Stop after this many polls (scripts, tests)."),
    common.log_level_option,
]
Command = TypeVar("Command", bound=Callable[..., None])  # a command function, with the poller options


def _options(command: Command) -> Command:
    for option in reversed(_common):
        command = option(command)
    return command


def _run(
    watch_coroutine_of: Callable[[asyncio.Event], Awaitable[int]], metrics_port: int | None, metrics_host: str
) -> None:
    """Run a poller until SIGTERM/SIGINT (or its own end), with its metrics endpoint."""
    if not logging.getLogger().handlers:  # the pollers log each poll: info unless --log-level said otherwise
        common.configure_logging(common.current_log_level("info"))
    common.serve_metrics(metrics_port, metrics_host)

    polls = common.run_until_stopped(watch_coroutine_of)
    common.say(f"stopped after {polls} poll(s)")


@click.group()
def jma() -> None:
    """Official reports from JMA's XML feed (気象庁防災情報XML)."""


@jma.command("watch")
@_options
@click.option("--feed", "feed_url", default=None, help="JMA's Atom PULL feed (default: the extra.xml feed).")
@click.option("--long-feed", "long_feed_url", default=None, help="The long feed read after a gap (default: *_l.xml).")
@click.option("--lookback-hours", default=192.0, show_default=True, help="How far back the cursor is read from Kafka.")
def jma_watch(
    regions: tuple[Path, ...],
    topic_prefix: str | None,
    interval_s: float,
    timeout_s: float,
    attempts: int,
    metrics_port: int | None,
    metrics_host: str,
    max_polls: int | None,
    feed_url: str | None,
    long_feed_url: str | None,
    lookback_hours: float,
) -> None:
    """Poll JMA's feed; write each new report concerning the packs' prefectures to their official topics."""
    from streams.official.jma_watch import SHORT_FEED, JmaWatcher, WatchSettings, watch
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap
    from streams.platform.http_fetch import RetryPolicy

    settings = WatchSettings(
        feed_url=feed_url or SHORT_FEED,
        long_feed_url=long_feed_url or "",
        interval_s=interval_s,
        lookback_s=lookback_hours * 3600,
        retry=RetryPolicy(attempts=attempts, timeout_s=timeout_s),
        max_polls=max_polls,
    )
    packs = common.load_packs(regions)
    watcher = JmaWatcher(packs, common.catalog(topic_prefix), default_store(), resolve_bootstrap(), settings)
    _run(lambda stop: watch(watcher, progress=common.say, stop=stop), metrics_port, metrics_host)


@click.group()
def amedas() -> None:
    """AMeDAS observations as JMA publishes them every 10 minutes."""


@amedas.command("watch")
@_options
@click.option("--base-url", default=None, help="Where latest_time.txt and map/ are (default: JMA's).")
@click.option("--since", default=None, help="Backfill from this time (JST, e.g. 2024-11-02T18:00), then exit.")
@click.option("--until", default=None, help="Backfill up to this time (JST, inclusive); needs --since.")
@click.option("--max-catch-up", default=36, show_default=True, help="Most map files caught up after a gap.")
@click.option("--lookback-hours", default=48.0, show_default=True, help="How far back the cursor is read from Kafka.")
def amedas_watch(
    regions: tuple[Path, ...],
    topic_prefix: str | None,
    interval_s: float,
    timeout_s: float,
    attempts: int,
    metrics_port: int | None,
    metrics_host: str,
    max_polls: int | None,
    base_url: str | None,
    since: str | None,
    until: str | None,
    max_catch_up: int,
    lookback_hours: float,
) -> None:
    """Poll AMeDAS 10-minute data; write each pack station's precipitation as readings (or backfill a range)."""
    from streams.kernel.times import parse_jst
    from streams.observed.amedas_watch import BASE_URL, AmedasSettings, AmedasWatcher, watch
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap
    from streams.platform.http_fetch import RetryPolicy

    if until and not since:
        raise click.UsageError("--until needs --since")
    if max_catch_up < 1:
        raise click.BadParameter("must be >= 1", param_hint="--max-catch-up")
    settings = AmedasSettings(
        base_url=(base_url or BASE_URL).rstrip("/"),
        interval_s=interval_s,
        max_catch_up=max_catch_up,
        lookback_s=lookback_hours * 3600,
        since_ms=parse_jst(since, option="--since") if since else None,
        until_ms=parse_jst(until, option="--until") if until else None,
        retry=RetryPolicy(attempts=attempts, timeout_s=timeout_s),
        max_polls=max_polls,
    )
    if settings.since_ms is not None and settings.until_ms is not None and settings.until_ms < settings.since_ms:
        raise BosaiError(f"--until {until} is before --since {since}")
    packs = common.load_packs(regions)
    watcher = AmedasWatcher(packs, common.catalog(topic_prefix), default_store(), resolve_bootstrap(), settings)
    if not watcher.topic_of:
        raise BosaiError("no AMeDAS rain gauge (5-digit station id, kind rain_gauge) in the region packs")
    _run(lambda stop: watch(watcher, progress=common.say, stop=stop), metrics_port, metrics_host)
