"""`bosai bridge orion`: the hub and municipalities' FIWARE Orion platforms (NGSI-v2), both ways."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli import common
from streams.kernel.errors import BosaiError

if TYPE_CHECKING:  # types only: the CLI imports what a command needs when it runs
    from streams.fiware.bridge_file import BridgeConfig, OrionTarget
    from streams.kernel.region import RegionPack

config_option = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The Orion bridge file (see deploy/orion-bridge.example.yaml).",
)


def load_bridge(config: Path | None, regions: tuple[Path, ...]) -> tuple[list[RegionPack], BridgeConfig]:
    """The packs and the validated bridge file (its Orions resolved to principals of topics/access.yaml)."""
    from streams.fiware.bridge_file import load_bridge_config
    from streams.platform.access_file import default_access_path, load_access

    if config is None:
        raise click.UsageError("--config FILE is required (the Orion bridge file)")
    packs = common.load_packs(regions)
    return packs, load_bridge_config(config, packs, load_access(default_access_path()))


def _selected(bridge: BridgeConfig, only: tuple[str, ...]) -> list[OrionTarget]:
    for orion_id in only:
        bridge.orion(orion_id)  # a clear error for an unknown id
    return [t for t in bridge.orions if not only or t.id in only]


@click.group()
def bridge() -> None:
    """Bridges to other platforms: `bosai bridge orion` (FIWARE Orion, NGSI-v2)."""


@bridge.group("orion", invoke_without_command=True)
@common.log_level_option
@config_option
@common.region_option
@common.topic_prefix_option
@common.metrics_options
@click.pass_context
def orion(
    ctx: click.Context,
    config: Path | None,
    regions: tuple[Path, ...],
    topic_prefix: str | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Upsert the hub's alerts and readings into each configured Orion until Ctrl-C (one consumer group each)."""
    if ctx.invoked_subcommand is not None:
        return
    from streams.fiware.bridge import routes_for, run_bridge
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    packs, config_ = load_bridge(config, regions)
    routes = routes_for(config_, packs, common.catalog(topic_prefix))
    common.serve_metrics(metrics_port, metrics_host)

    common.run_until_stopped(
        lambda stop: run_bridge(routes, resolve_bootstrap(), default_store(), stop, progress=common.say)
    )
    common.say("bridge stopped")


@orion.command("subscribe")
@common.log_level_option
@config_option
@common.region_option
@click.option("--orion", "only", multiple=True, help="Only these Orion ids (default: every one with sensors).")
@click.option("--rotate", is_flag=True, help="Issue a new token even if the Orion's is still valid.")
@click.option("--tokens", type=click.Path(path_type=Path, dir_okay=False), help="The gateway's token store.")
def orion_subscribe(
    config: Path | None, regions: tuple[Path, ...], only: tuple[str, ...], rotate: bool, tokens: Path | None
) -> None:
    """Create (or fix) each Orion's subscription to its sensors, pointing at the gateway. Idempotent."""
    from streams.fiware.orion_table import load_orion_table
    from streams.fiware.subscribe import subscribe
    from streams.security.token_store import TokenStore, default_tokens_path

    packs, config_ = load_bridge(config, regions)
    store = TokenStore(tokens or default_tokens_path())
    ids = {t.id for t in config_.orions}
    mappings = [m for pack in packs for m in load_orion_table(pack, ids).values()]
    targets = [t for t in _selected(config_, only) if only or t.sensor_service_path]
    if not targets:
        raise BosaiError(f"{config}: no Orion has a sensor_service_path: nothing to subscribe to")
    for target in targets:
        result = asyncio.run(subscribe(target, mappings, store, rotate=rotate))
        extra = f"; removed duplicates {', '.join(result.removed)}" if result.removed else ""
        click.echo(f"{result.orion}: subscription {result.subscription_id} {result.action}{extra}")


@orion.command("redrive")
@common.log_level_option
@config_option
@common.region_option
@click.option("--orion", "only", multiple=True, help="Only these Orion ids (default: all).")
@common.topic_prefix_option
def orion_redrive(
    config: Path | None, regions: tuple[Path, ...], only: tuple[str, ...], topic_prefix: str | None
) -> None:
    """Re-deliver what is in the Orion dead-letter topic now, never over something newer in the Orion."""
    from streams.fiware.bridge import redrive, routes_for
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    packs, config_ = load_bridge(config, regions)
    wanted = {t.id for t in _selected(config_, only)}
    failed = 0
    for route in routes_for(config_, packs, common.catalog(topic_prefix)):
        if route.target.id in wanted:
            _delivered, _superseded, again = asyncio.run(
                redrive(route, resolve_bootstrap(), default_store(), progress=common.say)
            )
            failed += again
    sys.exit(1 if failed else 0)
