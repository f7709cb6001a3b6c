"""`bosai broker` (the embedded Kafka) and `bosai tls` (the authenticated listener's CA and certificate)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from streams.cli.common import say
from streams.core.errors import BosaiError


@click.group()
def broker() -> None:
    """The embedded single-node Kafka (KRaft). Ignored when KAFKA_BOOTSTRAP_SERVERS is set."""


@broker.command("up")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--heap", default="1g", show_default=True, help="JVM heap (-Xmx).")
def broker_up(name: str, heap: str) -> None:
    """Resolve the pinned Kafka with Maven, format KRaft storage, start, wait until it answers."""
    from streams.adapters.broker import EmbeddedBroker, probe
    from streams.config.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        brokers = probe(external)
        if brokers is None:
            raise BosaiError(f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer metadata requests")
        click.echo(f"using KAFKA_BOOTSTRAP_SERVERS={external} ({brokers} broker(s)); nothing started")
        return
    state = EmbeddedBroker(name).up(progress=say, heap=heap)
    click.echo(f"broker '{name}' up: bootstrap {state.bootstrap}, Kafka {state.kafka_version}, pid {state.pid}")
    click.echo(f"authenticated listener (SASL_SSL, SCRAM-SHA-512): {state.clients_bootstrap}, CA {state.ca_file}")


@broker.command("down")
@click.option("--name", default="default", show_default=True)
@click.option("--keep-data", is_flag=True, help="Keep the data directory (topics survive the next `up`).")
def broker_down(name: str, keep_data: bool) -> None:
    """Stop the embedded broker by its pid; remove its data unless --keep-data."""
    from streams.adapters.broker import EmbeddedBroker

    was_running = EmbeddedBroker(name).down(keep_data=keep_data, progress=say)
    click.echo(f"broker '{name}' stopped" if was_running else f"broker '{name}' was not running")


@broker.command("status")
@click.option("--name", default="default", show_default=True)
def broker_status(name: str) -> None:
    """Is the broker up and answering? Exit 0 if so, 1 if not."""
    from streams.adapters.broker import EmbeddedBroker, probe
    from streams.config.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        brokers = probe(external)
        click.echo(f"external cluster {external}: " + (f"up, {brokers} broker(s)" if brokers else "NOT answering"))
        sys.exit(0 if brokers else 1)
    embedded = EmbeddedBroker(name)
    state = embedded.state()
    if state is None:
        click.echo(f"broker '{name}': not running")
        sys.exit(1)
    brokers = probe(state.bootstrap)
    uptime = time.time() - state.started_at
    click.echo(
        f"broker '{name}': {'up' if brokers else 'process alive but NOT answering'}, "
        f"bootstrap {state.bootstrap}, Kafka {state.kafka_version}, pid {state.pid}, "
        f"up {uptime:.0f}s, data {embedded.data_dir}"
    )
    click.echo(f"authenticated listener (SASL_SSL, SCRAM-SHA-512): {state.clients_bootstrap}, CA {state.ca_file}")
    sys.exit(0 if brokers else 1)


@click.group()
def tls() -> None:
    """The local CA and the broker certificate of the authenticated listener."""


@tls.command("init")
@click.option(
    "--dir",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write ca.pem, ca.key (kept if present) and broker.pem.",
)
@click.option(
    "--hostname",
    "hostnames",
    multiple=True,
    default=("localhost",),
    show_default=True,
    help="DNS name clients use to reach the broker (repeatable).",
)
@click.option("--ip", "ips", multiple=True, default=("127.0.0.1",), show_default=True)
def tls_init(out_dir: Path, hostnames: tuple[str, ...], ips: tuple[str, ...]) -> None:
    """For a cluster the hub does not start itself (e.g. docker-compose): make the CA and broker.pem."""
    from streams.adapters import tls as tls_material

    ca = tls_material.ensure_ca(out_dir)
    keystore = tls_material.issue_server_certificate(ca, out_dir / "broker.pem", hostnames=hostnames, ips=ips)
    click.echo(
        f"CA {ca.cert_file} (give it to clients); broker key+certificate {keystore} for {', '.join(hostnames + ips)}"
    )
