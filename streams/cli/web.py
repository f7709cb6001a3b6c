"""`bosai web`: the residents' map — public alerts and public stations, live, in a browser."""

from __future__ import annotations

from pathlib import Path

import click

from streams.cli.common import log_level_option, metrics_options, region_dirs, region_option, say, topic_prefix_option


@click.command()
@log_level_option
@region_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: any free one).")
@topic_prefix_option
@click.option(
    "--tile-url",
    default=None,
    help="Optional background map tiles, e.g. https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png "
    "(default: none; the page needs no outside server).",
)
@click.option("--tile-attribution", default="", help="The credit the tile provider asks for (shown on the map).")
@click.option("--max-clients", default=10_000, show_default=True, help="Live-stream connections held at most.")
@metrics_options
def web(
    regions: tuple[Path, ...],
    host: str,
    port: int,
    topic_prefix: str | None,
    tile_url: str | None,
    tile_attribution: str,
    max_clients: int,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Serve the residents' map (住民向け地図): public alerts and public stations, live, no login."""
    from streams.platform.broker import resolve_bootstrap
    from streams.publicmap.server import WebSettings, run_web

    settings = WebSettings(
        pack_dirs=[str(d) for d in region_dirs(regions)],
        topic_prefix=topic_prefix,
        host=host,
        port=port,
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        max_clients=max_clients,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    try:
        run_web(settings, resolve_bootstrap(), say=say)
    except KeyboardInterrupt:
        pass
    say("web stopped")
