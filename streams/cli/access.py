"""`bosai access`: who may read and write what on the authenticated listener (topics/access.yaml)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import click

from streams.cli.common import catalog, load_packs, region_option, say
from streams.kernel.access import AccessPolicy, find_principal, format_plan
from streams.kernel.errors import BosaiError, CheckFailed


def _policy() -> AccessPolicy:
    from streams.platform.access_file import default_access_path, load_access

    return load_access(default_access_path())


@click.group()
def access() -> None:
    """Who may read and write what on the authenticated listener (topics/access.yaml)."""


@access.command("generate")
@region_option
@click.option(
    "--regions-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Every pack folder under this folder (e.g. the packs of `bosai region init-all`) instead of --region.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write (or with --check compare) this file instead of topics/access.yaml.",
)
@click.option("--check", is_flag=True, help="Exit 1 if topics/access.yaml differs from what the packs generate.")
def access_generate(regions: tuple[Path, ...], regions_dir: Path | None, output: Path | None, check: bool) -> None:
    """Write topics/access.yaml from the region packs and the topic catalog."""
    from streams.packs.region_pack import load_pack, pack_dirs_under
    from streams.platform.access_file import default_access_path, generate, load_access, render

    if regions_dir is not None and regions:
        raise click.UsageError("give --region or --regions-dir, not both")
    started = time.perf_counter()
    packs = [load_pack(d) for d in pack_dirs_under(regions_dir)] if regions_dir is not None else load_packs(regions)
    text = render(generate(packs, catalog()))
    path = output or default_access_path()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            raise CheckFailed(f"{path} is out of date: run `bosai access generate`")
        click.echo(f"{path} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    policy = load_access(path)
    roles = Counter(p.role for p in policy.principals)
    click.echo(
        f"wrote {path}: {len(packs)} packs, {len(policy.principals)} principals "
        f"({', '.join(f'{n} {role}' for role, n in sorted(roles.items()))}), {len(policy.bindings())} ACL bindings, "
        f"{len(text.encode()):,} bytes in {time.perf_counter() - started:.1f}s"
    )


@access.command("plan")
def access_plan() -> None:
    """Show how the cluster's ACLs differ from topics/access.yaml. Exit 0 when they do not, 1 when they do."""
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import plan_access

    plan = asyncio.run(plan_access(resolve_admin_bootstrap(), _policy()))
    click.echo(format_plan(plan))
    if plan.changes:
        raise CheckFailed("the cluster's ACLs differ from topics/access.yaml (`bosai access apply`)")


_HUB_CONFIG_HELP = (
    "The hub's client config file (JSON, 0600; BOSAI_KAFKA_CONFIG of the hub's processes): the hub credential "
    "in it is registered on the cluster, or created and written there when the file does not exist."
)


@access.command("apply")
@click.option("--hub-config", type=click.Path(path_type=Path, dir_okay=False), help=_HUB_CONFIG_HELP)
def access_apply(hub_config: Path | None) -> None:
    """Add the missing ACLs and remove the undeclared ones. Idempotent."""
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import apply_access

    before, after = asyncio.run(apply_access(resolve_admin_bootstrap(), _policy()))
    click.echo(format_plan(before))
    if after.changes:
        raise BosaiError("after apply the cluster's ACLs still differ:\n" + format_plan(after))
    click.echo(f"applied: {len(before.add)} added, {len(before.remove)} removed")
    if hub_config is not None:
        _hub_credential(hub_config, rotate=False)


@access.command("hub-credential")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help=_HUB_CONFIG_HELP)
@click.option("--rotate", is_flag=True, help="A new password (restart the hub's processes afterwards).")
def access_hub_credential(output: Path | None, rotate: bool) -> None:
    """The hub's own SCRAM credential (User:hub): make sure the cluster has the one in the hub's client config,
    or create it; --rotate replaces it. Default file: the running hardened embedded broker's."""
    from streams.platform.broker import EmbeddedBroker
    from streams.platform.settings import external_bootstrap

    if output is None:
        state = None if external_bootstrap() else EmbeddedBroker().state()
        if state is None or not state.hardened:
            raise BosaiError("give --output FILE (no hardened embedded broker runs: bosai broker up --hardened)")
        output = Path(state.hub_config)
    _hub_credential(output, rotate=rotate)


def _hub_credential(path: Path, *, rotate: bool) -> None:
    from streams.platform.broker import resolve_admin_bootstrap, resolve_clients_listener
    from streams.platform.hardening import ensure_hub_credential, read_registered, write_client_config

    previous = read_registered(path) if path.exists() else None
    if path.exists() and previous is None:
        raise BosaiError(f"{path}: not a hub client config (remove it to create a new credential)")
    ca_file = previous.ca_file if previous and previous.ca_file else resolve_clients_listener()[1]
    security = asyncio.run(
        ensure_hub_credential(resolve_admin_bootstrap(), ca_file=Path(ca_file), previous=previous, rotate=rotate)
    )
    write_client_config(path, security, previous_document=path)
    verb = "rotated" if rotate or previous is None else "registered again"
    say(f"hub credential (User:hub) {verb}; client config {path} (mode 0600)")


@access.command("issue")
@click.argument("who")
@region_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["properties", "librdkafka", "json"]),
    default="properties",
    show_default=True,
    help="properties: Java clients; json: confluent-kafka (Python, Go, .NET); librdkafka: kcat -F (with the CA "
    "file beside it). Each carries the CA and the schema registry.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the client config to this file (mode 0600) instead of stdout.",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write every form of the one credential into this folder: <principal>.properties, .json, .conf and "
    ".ca.pem (instead of --format/--output).",
)
@click.option(
    "--public-host",
    default="",
    help="The name the municipality's machines reach the CLIENTS listener (and the registry) by, in place of the "
    "host of each bootstrap address (compose: BOSAI_PUBLIC_HOST). An embedded broker must advertise it "
    "(bosai broker up --public-host).",
)
@click.option(
    "--registry-url",
    default="",
    help="The schema registry clients decode with (default: BOSAI_CLIENTS_SCHEMA_REGISTRY_URL, "
    "BOSAI_SCHEMA_REGISTRY_URL, else the embedded broker's).",
)
def access_issue(
    who: str,
    regions: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    output_dir: Path | None,
    public_host: str,
    registry_url: str,
) -> None:
    """Create or rotate WHO's credential (principal, JIS code or municipality name); print its client config.

    The config is self-contained (public address, CA inline, schema registry): it works from the municipality's
    machines. The password is shown once, here, and never logged; issuing again rotates it (the old one stops
    working).
    """
    from streams.cli.issued import clients_view, write_forms
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import issue_credential
    from streams.security.client_config import client_config

    principal = find_principal(_policy(), who, load_packs(regions))
    if principal.role == "hub":
        raise BosaiError("the hub's own credential: `bosai access hub-credential` (it keeps the hub's config in step)")
    view = clients_view(public_host.strip(), registry_url.strip())
    password = asyncio.run(issue_credential(resolve_admin_bootstrap(), principal))
    config = client_config(
        principal, password, clients_bootstrap=view.bootstrap, ca_pem=view.ca_pem, registry_url=view.registry_url
    )
    write_forms(config, principal, fmt=fmt, output=output, output_dir=output_dir)
    say(
        f"issued a SCRAM-SHA-512 credential for {principal.name} ({view.bootstrap}; schema registry "
        f"{view.registry_url or 'none known'}); it may read: {', '.join(principal.readable_topics()) or 'nothing'}"
    )


@access.command("revoke")
@click.argument("who")
@region_option
def access_revoke(who: str, regions: tuple[Path, ...]) -> None:
    """Remove WHO's credential: new connections fail at once, open ones at their next re-authentication."""
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import revoke_credential

    try:
        name = find_principal(_policy(), who, load_packs(regions)).name
    except BosaiError:
        name = who  # a credential the file no longer declares can still be revoked by its user name
    removed = asyncio.run(revoke_credential(resolve_admin_bootstrap(), name))
    click.echo(f"revoked the credential of {name}" if removed else f"{name} had no credential; nothing to revoke")
