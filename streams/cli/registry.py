"""`bosai registry serve`: the hub's read-only Confluent-compatible schema registry (its ``avro/`` schemas)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from streams.cli.common import catalog, load_packs, region_option, say, topic_prefix_option


@click.group()
def registry() -> None:
    """The schema registry clients decode the alert topics with (Confluent wire format)."""


@registry.command("serve")
@region_option
@topic_prefix_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", default=8081, show_default=True, type=int, help="Port (8081, as Confluent's; 0: any free).")
@click.option("--metrics-port", default=None, type=int, help="Serve Prometheus /metrics on this port (0: any free).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--home-tag", default="", hidden=True, help="The broker home that started it (to stop it by pid).")
def registry_serve(
    regions: tuple[Path, ...],
    topic_prefix: str | None,
    host: str,
    port: int,
    metrics_port: int | None,
    metrics_host: str,
    home_tag: str,
) -> None:
    """Serve the Confluent Schema Registry API (read-only) over avro/: ids stable, derived from the schemas.

    Subjects: each schema's record name, and <topic>-value of every topic the catalog frames for clients
    (framing: confluent). Writes are refused (403). /healthz answers when it is ready.
    """
    from streams.platform import metrics
    from streams.platform.avro import SchemaStore
    from streams.platform.settings import project_root
    from streams.registry.server import build_registry, serve_registry

    packs = load_packs(regions)
    content = build_registry(
        SchemaStore.from_directory(project_root() / "avro"),  # the hub's own schemas only, never another registry's
        catalog(topic_prefix),
        [p.topics_input() for p in packs],
    )
    if metrics_port is not None:
        say(f"metrics on http://{metrics_host}:{metrics.serve(metrics_port, metrics_host)}/metrics")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve_registry(content, host=host, port=port, progress=say, stop=stop)

    asyncio.run(run())
    say("schema registry stopped")
