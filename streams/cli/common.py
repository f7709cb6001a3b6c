"""What every `bosai` command shares: messages, the --region option, the speed parameter, packs and catalog."""

from __future__ import annotations

import socket
import unicodedata
from pathlib import Path
from typing import Any

import click

from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog


def say(message: str) -> None:
    """Progress and notices go to stderr; results go to stdout."""
    click.echo(message, err=True)


region_option = click.option(
    "--region",
    "regions",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Region pack folder (repeatable). Default: every pack under regions/.",
)

topic_prefix_option = click.option(
    "--topic-prefix", default=None, help="Topic namespace (default: the catalog's prefix, bosai)."
)


class ProxyNetwork(click.ParamType):
    """A trusted proxy's CIDR (or single address) for --trusted-proxy."""

    name = "CIDR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from streams.security.login_limits import parse_networks

        if not isinstance(value, str):
            return value
        try:
            return parse_networks([value])[0]
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


trusted_proxy_option = click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    type=ProxyNetwork(),
    help="A reverse proxy in front of this door (CIDR, repeatable): only from these is X-Forwarded-For read "
    "(its right-most address that is not a trusted proxy is the client the login limits count).",
)


def region_dirs(regions: tuple[Path, ...]) -> list[Path]:
    from streams.packs.region_pack import default_pack_dirs

    return list(regions) if regions else default_pack_dirs()


def load_packs(regions: tuple[Path, ...]) -> list[RegionPack]:
    from streams.packs.region_pack import load_pack

    return [load_pack(d) for d in region_dirs(regions)]


def catalog(prefix: str | None = None) -> Catalog:
    from streams.platform.topic_catalog import load_default_catalog

    return load_default_catalog(prefix)


class Speed(click.ParamType):
    """Event seconds per real second (> 0), or ``max`` for no pacing (None)."""

    name = "speed"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None or isinstance(value, float):
            return value
        if str(value).strip().lower() == "max":
            return None
        try:
            pace = float(value)
        except ValueError:
            self.fail("a number (event seconds per real second) or max", param, ctx)
        if not pace > 0 or pace != pace or pace == float("inf"):
            self.fail(f"{value!r}: must be a number > 0 (event seconds per real second) or max", param, ctx)
        return pace


def free_ports(first: int, count: int) -> list[int]:
    """`count` free TCP ports on 127.0.0.1, from `first` upwards where possible."""
    ports: list[int] = []
    candidate = first
    while len(ports) < count and candidate < first + 200:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
                ports.append(candidate)
            except OSError:
                pass
        candidate += 1
    return ports


def pad(text: str, width: int) -> str:
    """Left-align text in a terminal column, counting East Asian wide characters as two."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)
