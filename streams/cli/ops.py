"""`bosai feed`, `bosai sink` and `bosai dashboards`: what reaches municipalities and operators."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli import common
from streams.kernel.errors import BosaiError, CheckFailed
from streams.kernel.region import RegionPack

if TYPE_CHECKING:  # types only: the CLI imports what a command needs when it runs
    from streams.delivery.cap import CapIdentity, ZonePolygons
    from streams.delivery.channels import Channel
    from streams.delivery.sink import Route as SinkRoute
    from streams.kernel.messages import AvroRecord
    from streams.security.login_limits import Network


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if deploy/grafana/dashboards differs from what is generated.")
def dashboards(check: bool) -> None:
    """Generate the Grafana dashboards (grafana-foundation-sdk) into deploy/grafana/dashboards/."""
    from streams.ops.grafana import dashboards_dir, render

    folder = dashboards_dir()
    rendered = render()
    stale = [
        name
        for name, text in rendered.items()
        if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text
    ]
    if check:
        if stale:
            raise CheckFailed(f"out of date in {folder}: {', '.join(stale)} (run `bosai dashboards`)")
        click.echo(f"{len(rendered)} dashboards up to date")
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (folder / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(rendered)} dashboards to {folder} ({len(stale)} changed)")


def cap_identity() -> CapIdentity:
    """The configured CAP sender (BOSAI_CAP_AUTHORITY …); a notice when it is the reserved default."""
    from streams.delivery.cap_identity import load_cap_identity, unowned_notice

    identity = load_cap_identity()
    notice = unowned_notice(identity)
    if notice:
        common.say(f"note: {notice}")
    return identity


def cap_renderer(
    packs: Sequence[RegionPack],
) -> tuple[dict[str, str], dict[str, ZonePolygons], Callable[[AvroRecord], bytes]]:
    """Sender names and zone polygons per region, and a function rendering an alert event as CAP 1.2 (the
    configured sender, ja-JP and en-US)."""
    from streams.delivery import cap
    from streams.delivery.cap_english import CapEnglish

    names = {p.name: f"{p.prefecture_name} 防災データ連携基盤" for p in packs}
    polygons = {p.name: cap.zone_polygons_of(p) for p in packs}
    identity, english = cap_identity(), CapEnglish.of(packs)
    return (
        names,
        polygons,
        lambda alert: cap.render(
            alert,
            sender_name=names.get(alert["region"], ""),
            zone_polygons=polygons.get(alert["region"]),
            identity=identity,
            english=english,
        ),
    )


@click.command()
@common.log_level_option
@common.region_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the feed binds.")
@click.option("--port", default=8088, show_default=True, type=int, help="Port the feed listens on.")
@common.topic_prefix_option
@click.option(
    "--auth-cache",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds a verified credential is trusted before the broker is asked again.",
)
@click.option(
    "--failure-cache",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds a refused credential is answered 401 without asking the broker again.",
)
@click.option(
    "--handshakes-per-s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="SCRAM handshakes a second this door may ask of the broker, in total (429 past it).",
)
@common.trusted_proxy_option
@common.metrics_options
def feed(
    regions: tuple[Path, ...],
    host: str,
    port: int,
    topic_prefix: str | None,
    auth_cache: float,
    failure_cache: float,
    handshakes_per_s: float,
    trusted_proxies: tuple[Network, ...],
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Serve Atom feeds of current CAP 1.2 messages (per municipality, prefecture, public) behind credentials."""
    from streams.delivery.cap_english import CapEnglish
    from streams.delivery.cap_identity import load_cap_identity
    from streams.delivery.feed_server import FeedSettings, serve_feed
    from streams.kernel.topics import topic_name
    from streams.platform.access_file import default_access_path, load_access
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap, resolve_clients_listener

    packs = common.load_packs(regions)
    topics_catalog = common.catalog(topic_prefix)
    clients_bootstrap, ca_file = resolve_clients_listener()
    names, polygons, _render = cap_renderer(packs)
    topics = [topic_name(topics_catalog, "alerts", p.name, prefecture_code=p.prefecture_code) for p in packs]
    common.serve_metrics(metrics_port, metrics_host)
    settings = FeedSettings(
        resolve_bootstrap(),
        topics,
        clients_bootstrap,
        ca_file,
        host=host,
        port=port,
        auth_cache_s=auth_cache,
        failure_cache_s=failure_cache,
        handshakes_per_s=handshakes_per_s,
        trusted_proxies=trusted_proxies,
    )
    store, policy, identity = default_store(), load_access(default_access_path()), load_cap_identity()
    english = CapEnglish.of(packs)
    common.run_until_stopped(  # Ctrl-C and SIGTERM set stop: the feed closes its consumer and its listener
        lambda stop: serve_feed(
            settings,
            store=store,
            policy=policy,
            sender_names=names,
            zone_polygons=polygons,
            progress=common.say,
            identity=identity,  # checked, and noted, by cap_renderer above
            english=english,
            stop=stop,
        )
    )
    common.say("feed stopped")


@click.group()
def sink() -> None:
    """Webhook, e-mail and chat deliveries of each municipality's alert events (subscriptions in a config file)."""


def _routes(
    config: Path, regions: tuple[Path, ...], topic_prefix: str | None
) -> tuple[list[RegionPack], list[SinkRoute], list[Channel]]:
    from streams.delivery.channels import load_channels
    from streams.delivery.sink import routes_for
    from streams.delivery.subscriptions import load_subscriptions

    packs = common.load_packs(regions)
    routes = routes_for(load_subscriptions(config, packs), packs, common.catalog(topic_prefix))
    return packs, routes, load_channels(config, packs)


@sink.command("run")
@common.log_level_option
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Subscriptions file (see deploy/subscriptions.example.yaml).",
)
@common.region_option
@common.topic_prefix_option
@common.metrics_options
def sink_run(
    config: Path, regions: tuple[Path, ...], topic_prefix: str | None, metrics_port: int | None, metrics_host: str
) -> None:
    """Deliver until Ctrl-C: one consumer group per subscription and channel, retries with backoff, dead letters."""
    from streams.delivery.sink import channel_targets, run_sink
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    packs, routes, channels = _routes(config, regions, topic_prefix)
    _names, _polygons, render_cap = cap_renderer(packs)
    store = default_store()
    targets = channel_targets(channels, packs, common.catalog(topic_prefix), store)
    common.serve_metrics(metrics_port, metrics_host)

    common.run_until_stopped(
        lambda stop: run_sink(
            routes, resolve_bootstrap(), store, render_cap, stop, progress=common.say, targets=targets
        )
    )
    common.say("sink stopped")


@sink.command("redrive")
@common.log_level_option
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Webhook subscriptions file (as for `bosai sink run`).",
)
@click.option(
    "--subscription", "--channel", "only", multiple=True, help="Only these subscription or channel ids (default: all)."
)
@common.region_option
@common.topic_prefix_option
def sink_redrive(config: Path, only: tuple[str, ...], regions: tuple[Path, ...], topic_prefix: str | None) -> None:
    """Re-deliver what is in the sink dead-letter topic now; what fails again goes back there."""
    from streams.delivery.sink import channel_targets, redrive, redrive_target
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    packs, routes, channels = _routes(config, regions, topic_prefix)
    _names, _polygons, render_cap = cap_renderer(packs)
    store = default_store()
    targets = channel_targets(channels, packs, common.catalog(topic_prefix), store)
    unknown = set(only) - {r.subscription.id for r in routes} - {t.id for t in targets}
    if unknown:
        raise BosaiError(f"{config}: no subscription or channel {', '.join(sorted(unknown))}")
    failed = 0
    for route in routes:
        if only and route.subscription.id not in only:
            continue
        _delivered, again = asyncio.run(redrive(route, resolve_bootstrap(), store, render_cap, progress=common.say))
        failed += again
    for target in targets:
        if only and target.id not in only:
            continue
        _delivered, again = asyncio.run(redrive_target(target, resolve_bootstrap(), store, progress=common.say))
        failed += again
    sys.exit(1 if failed else 0)


def _suppression_file(config: Path | None, file: Path | None) -> Path:
    from streams.delivery.channels import suppression_file_of

    if (config is None) == (file is None):
        raise click.UsageError("give --config (its email.suppression_file) or --file")
    if file is not None:
        return file
    assert config is not None
    return suppression_file_of(config)


def _suppression_command(name: str, suppress: bool, doc: str) -> None:
    @sink.command(name, help=doc)
    @click.argument("address")
    @click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Subscriptions file: the list is its email.suppression_file.",
    )
    @click.option(
        "--file", "file", type=click.Path(path_type=Path, dir_okay=False), help="The suppression file itself."
    )
    def command(address: str, config: Path | None, file: Path | None) -> None:
        from streams.delivery.channels import change_suppressed, read_suppressed

        path = _suppression_file(config, file)
        changed = change_suppressed(path, address, suppress=suppress)
        count = len(read_suppressed(path))
        verb = ("suppressed" if suppress else "unsuppressed") if changed else "unchanged"
        # the address itself is not echoed: terminals and CI logs are kept as free of addresses as logs
        click.echo(f"{path}: {verb}; {count} address(es) suppressed (the running sink reads the file again)")


_suppression_command(
    "suppress",
    True,
    "Put an e-mail address on the suppression list (a bounce, an unsubscribe): the sink never sends to it.",
)
_suppression_command("unsuppress", False, "Take an e-mail address off the suppression list.")
