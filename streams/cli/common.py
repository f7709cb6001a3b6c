"""What every `bosai` command shares: messages, the options that mean the same everywhere (--region, --log-level,
--json, --output), the speed parameter, packs and catalog."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog

T = TypeVar("T")
CommandT = TypeVar("CommandT", bound=Callable[..., Any])  # a command function (click decorates it)


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


def metrics_options(command: CommandT) -> CommandT:
    """``--metrics-port`` and ``--metrics-host``: where a long-running process serves Prometheus /metrics."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        envvar="BOSAI_METRICS_HOST",
        help="Address the metrics endpoint binds [env BOSAI_METRICS_HOST].",
    )(command)
    return click.option(
        "--metrics-port",
        default=None,
        type=int,
        envvar="BOSAI_METRICS_PORT",
        help="Serve Prometheus /metrics, /healthz (liveness) and /readyz (readiness) on this port "
        "(0 = any free port) [env BOSAI_METRICS_PORT].",
    )(command)


def serve_metrics(port: int | None, host: str) -> None:
    """Start the Prometheus endpoint when a port was given, and say where it is."""
    if port is not None:
        from streams.platform import metrics

        say(f"metrics on http://{host}:{metrics.serve(port, host)}/metrics (and /healthz, /readyz)")


def run_until_stopped(run: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``run(stop)`` in an event loop; SIGINT and SIGTERM set ``stop`` (the process ends cleanly). The loop's
    heartbeat (/healthz) runs beside it."""

    async def main() -> T:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await with_heartbeat(run(stop))

    return asyncio.run(main())


async def with_heartbeat(work: Awaitable[T]) -> T:
    """Await ``work`` with the event loop's heartbeat running (the liveness of /healthz)."""
    from streams.platform import health

    beat = health.start_heartbeat()
    try:
        return await work
    finally:
        beat.cancel()


replicas_option = click.option(
    "--replicas",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Worker processes per region (they share its partitions).",
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


# -- patience with the Kafka cluster: one setting for the command and the processes it starts ----------------
def _kafka_patience(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        from streams.platform.kafka_retry import ENV_PATIENCE

        os.environ[ENV_PATIENCE] = str(value)


kafka_patience_option = click.option(
    "--kafka-patience",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    expose_value=False,
    is_eager=True,
    callback=_kafka_patience,
    help="How long a command (and the workers it starts) retries through a Kafka outage before it ends with "
    "exit 3 [default: 120, or BOSAI_KAFKA_PATIENCE_S].",
)


# -- logging: one --log-level, one vocabulary (Python's), for every command -----------------------------------
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
ENV_LOG_LEVEL = "BOSAI_LOG_LEVEL"  # what `--log-level` set, for the processes a command starts
_OLD_LOG_LEVELS = {"warn": "warning", "crit": "critical"}  # Faust's words, accepted by the deprecated --loglevel


def configure_logging(level: str) -> None:
    """Log at ``level`` to stderr, here and in the processes this command starts."""
    os.environ[ENV_LOG_LEVEL] = level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)


def current_log_level(default: str = "warning") -> str:
    return os.environ.get(ENV_LOG_LEVEL) or default


def _log_level(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if param.name == "deprecated_loglevel":
        say("bosai: --loglevel is deprecated (it goes in the next release): use --log-level")
    level = _OLD_LOG_LEVELS.get(value.lower(), value.lower())
    configure_logging(level)
    return level


def log_level_option(command: CommandT) -> CommandT:
    """``--log-level`` (and the deprecated ``--loglevel``, which also takes Faust's warn/crit)."""
    command = click.option(
        "--loglevel",
        "deprecated_loglevel",
        hidden=True,
        expose_value=False,
        is_eager=True,
        callback=_log_level,
        type=click.Choice(LOG_LEVELS + tuple(_OLD_LOG_LEVELS), case_sensitive=False),
        help="Deprecated: use --log-level.",
    )(command)
    return click.option(
        "--log-level",
        expose_value=False,
        is_eager=True,
        callback=_log_level,
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help=f"Logging detail on stderr: {', '.join(LOG_LEVELS)} [default: warning, or {ENV_LOG_LEVEL}].",
    )(command)


# -- results: --json prints JSON to stdout; --output FILE writes a file ---------------------------------------
def _json(ctx: click.Context, param: click.Parameter, value: str | None) -> bool | Path | None:
    """``--json`` alone: JSON on stdout. ``--json FILE`` (the old meaning on `bench`): deprecated --output."""
    if value is None:
        return None
    if value == "-":
        return True
    say(f"bosai: --json {value} is deprecated (it goes in the next release): use --output {value}")
    return Path(value)


def results_options(default_note: str) -> Callable[[CommandT], CommandT]:
    """``--json`` (print the results as JSON to stdout) and ``--output FILE`` (write them to a file)."""

    def decorate(command: CommandT) -> CommandT:
        command = click.option(
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"Write the results as JSON to this file [default: {default_note}].",
        )(command)
        return click.option(
            "--json",
            "as_json",
            is_flag=False,
            flag_value="-",
            default=None,
            callback=_json,
            metavar="",
            help="Print the results as JSON to stdout (the table goes to stderr).",
        )(command)

    return decorate


def output_and_json(as_json: bool | Path | None, output: Path | None) -> tuple[Path | None, bool]:
    """(the file to write, whether to print JSON on stdout) from --output and --json (old --json FILE too)."""
    if isinstance(as_json, Path):
        return output or as_json, False
    return output, bool(as_json)


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
