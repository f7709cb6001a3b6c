"""`bosai gateway`: readings in over HTTP (municipal sensors, Orion notifications); its owners' tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli import common
from streams.kernel.errors import BosaiError

if TYPE_CHECKING:  # types only: the CLI imports what a command needs when it runs
    from streams.security.login_limits import Network

owners_option = click.option(
    "--owners",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sensor owners file (see deploy/gateway-owners.example.yaml).",
)
tokens_option = click.option(
    "--tokens",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Token store (0600 JSON; default $BOSAI_GATEWAY_TOKENS or <cache>/gateway/tokens.json).",
)


@click.group(invoke_without_command=True)
@common.log_level_option
@owners_option
@click.option(
    "--bridge-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The Orion bridge file: opens /v1/orion/<id>/notifications for its Orions.",
)
@tokens_option
@common.region_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=int)
@click.option("--max-body-bytes", default=1 << 20, show_default=True, type=int, help="Largest request body.")
@click.option("--max-readings", default=1000, show_default=True, type=int, help="Most readings in one request.")
@common.topic_prefix_option
@common.metrics_options
@common.trusted_proxy_option
@click.pass_context
def gateway(
    ctx: click.Context,
    owners: Path | None,
    bridge_config: Path | None,
    tokens: Path | None,
    regions: tuple[Path, ...],
    host: str,
    port: int,
    max_body_bytes: int,
    max_readings: int,
    topic_prefix: str | None,
    metrics_port: int | None,
    metrics_host: str,
    trusted_proxies: tuple[Network, ...],
) -> None:
    """Serve POST /v1/readings (sensor owners) and the Orion notification door until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from streams.cli.bridge import load_bridge
    from streams.fiware.orion_table import load_orion_table
    from streams.gateway.owners import load_owners
    from streams.gateway.server import Doors, Gateway, Limits, serve_gateway
    from streams.kernel.topics import HubTopics
    from streams.platform import kafka
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap
    from streams.security.token_store import TokenStore, default_tokens_path

    if owners is None and bridge_config is None:
        raise click.UsageError("give --owners FILE, --bridge-config FILE, or both")
    packs = common.load_packs(regions)
    bridge = load_bridge(bridge_config, regions)[1] if bridge_config else None
    ids = {t.id for t in bridge.orions} if bridge else set()
    tables = {k: v for pack in packs for k, v in load_orion_table(pack, ids).items()} if bridge else {}
    topics_catalog = common.catalog(topic_prefix)
    service = Gateway(
        packs=packs,
        owners=load_owners(owners, packs) if owners else {},
        bridge=bridge,
        tables=tables,
        topics={p.name: HubTopics.for_region(topics_catalog, p) for p in packs},
        sender=kafka.BatchSender(resolve_bootstrap()),
        store=default_store(),
        doors=Doors(TokenStore(tokens or default_tokens_path()), trusted_proxies=trusted_proxies),
        limits=Limits(max_body_bytes=max_body_bytes, max_readings=max_readings),
    )
    common.serve_metrics(metrics_port, metrics_host)

    common.run_until_stopped(lambda stop: serve_gateway(service, host=host, port=port, stop=stop, progress=common.say))
    common.say("gateway stopped")


@gateway.group("token")
def token() -> None:
    """Bearer tokens of sensor owners: issued (shown once, stored hashed) and revoked."""


@token.command("issue")
@click.argument("owner")
@owners_option
@tokens_option
@common.region_option
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the token here (mode 0600).")
def token_issue(
    owner: str, owners: Path | None, tokens: Path | None, regions: tuple[Path, ...], output: Path | None
) -> None:
    """Create or rotate OWNER's token and print it once (the old one stops working at once)."""
    from streams.gateway.owners import load_owners
    from streams.security.token_store import TokenStore, default_tokens_path

    if owners is None:
        raise click.UsageError("--owners FILE is required (the owner must be in it)")
    known = load_owners(owners, common.load_packs(regions))
    if owner not in known:
        raise BosaiError(f"{owners}: no owner {owner!r} (known: {', '.join(sorted(known))})")
    store = TokenStore(tokens or default_tokens_path())
    secret = store.issue(f"owner:{owner}")
    if output:
        from streams.platform.secret_files import write_secret

        write_secret(output, secret + "\n")
        common.say(f"token for {owner} written to {output} (mode 0600)")
    else:
        click.echo(secret)
    stations = ", ".join(sorted(known[owner].stations))
    common.say(f"issued a gateway token for {owner} ({stations}); stored hashed in {store.path}")


@token.command("revoke")
@click.argument("owner")
@tokens_option
def token_revoke(owner: str, tokens: Path | None) -> None:
    """Remove OWNER's token: the gateway refuses it from its next request."""
    from streams.security.token_store import TokenStore, default_tokens_path

    store = TokenStore(tokens or default_tokens_path())
    removed = store.revoke(f"owner:{owner}")
    click.echo(
        f"revoked the gateway token of {owner}" if removed else f"{owner} had no gateway token; nothing to revoke"
    )
