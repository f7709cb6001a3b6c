"""`bosai topics`: the topic catalog (topics/catalog.yaml) against the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from streams.cli.common import catalog, load_packs, region_option
from streams.kernel.errors import BosaiError, CheckFailed
from streams.kernel.topics import TopicSpec, expand, format_plan


def topic_specs(regions: tuple[Path, ...], prefix: str | None = None) -> list[TopicSpec]:
    return expand(catalog(prefix), [p.topics_input() for p in load_packs(regions)])


@click.group()
def topics() -> None:
    """The topic catalog (topics/catalog.yaml): plan and apply."""


@topics.command("plan")
@region_option
def topics_plan(regions: tuple[Path, ...]) -> None:
    """Show what `apply` would change. Exit 0 when nothing would, 1 when something would."""
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import plan_topics

    plan = asyncio.run(plan_topics(resolve_admin_bootstrap(), topic_specs(regions)))
    click.echo(format_plan(plan))
    if plan.changes:
        raise CheckFailed(f"{len(plan.changes)} change(s) to apply (`bosai topics apply`)")


@topics.command("apply")
@region_option
def topics_apply(regions: tuple[Path, ...]) -> None:
    """Create missing topics, add partitions, set configs. Idempotent."""
    from streams.platform.broker import resolve_admin_bootstrap
    from streams.platform.kafka_admin import apply_topics

    before, after = asyncio.run(apply_topics(resolve_admin_bootstrap(), topic_specs(regions)))
    click.echo(format_plan(before))
    if after.changes:
        raise BosaiError("after apply the cluster still differs from the catalog:\n" + format_plan(after))
    click.echo(f"applied: {len(before.changes)} change(s); the cluster now matches the catalog ({after.topics} topics)")


@topics.command("list")
@region_option
def topics_list(regions: tuple[Path, ...]) -> None:
    """Every topic the catalog declares for the regions (no cluster needed)."""
    for spec in topic_specs(regions):
        click.echo(f"{spec.name}\tpartitions={spec.partitions}\tvalue={spec.value_schema}")
