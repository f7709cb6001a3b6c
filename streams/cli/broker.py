"""`bosai broker` (the embedded Kafka) and `bosai tls` (the authenticated listener's CA and certificate)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli.common import say
from streams.kernel.errors import BosaiError

if TYPE_CHECKING:  # imported when called: the CLI starts fast
    from streams.platform.broker import BrokerState


@click.group()
def broker() -> None:
    """The embedded single-node Kafka (KRaft). Ignored when KAFKA_BOOTSTRAP_SERVERS is set."""


@broker.command("up")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--heap", default="1g", show_default=True, help="JVM heap of each node (-Xmx).")
@click.option(
    "--brokers",
    default=1,
    show_default=True,
    type=click.Choice(["1", "3"]),
    help="Nodes: 3 form a controller quorum of three and replicate every topic 3 times (min ISR 2).",
)
@click.option(
    "--hardened",
    is_flag=True,
    help="No PLAINTEXT listener: the hub connects as User:hub (SCRAM over TLS) with only its ACLs, nodes and "
    "admin commands by certificate (mTLS). Creates the hub credential and applies topics/access.yaml.",
)
@click.option(
    "--jmx-exporter",
    is_flag=True,
    help="Each node serves its health for Prometheus (under-replicated and offline partitions, active controller, "
    "log size) through the pinned JMX exporter agent on a port of its own (printed; `status --json` has it).",
)
@click.option(
    "--public-host",
    default="",
    help="The name (or address) other machines reach this one by: the CLIENTS listener and the schema registry "
    "listen on every address and are advertised under it, and the broker's certificate names it. Default: "
    "loopback only (127.0.0.1).",
)
def broker_up(name: str, heap: str, brokers: str, hardened: bool, jmx_exporter: bool, public_host: str) -> None:
    """Resolve the pinned Kafka with Maven, format KRaft storage, start, wait until it answers; start the schema
    registry beside it (bosai registry serve, stopped with it)."""
    from streams.platform.broker import EmbeddedBroker, probe
    from streams.platform.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        count = probe(external)
        if count is None:
            raise BosaiError(f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer metadata requests")
        click.echo(f"using KAFKA_BOOTSTRAP_SERVERS={external} ({count} broker(s)); nothing started")
        return
    state = EmbeddedBroker(name).up(
        progress=say,
        heap=heap,
        brokers=int(brokers),
        hardened=hardened,
        jmx_exporter=jmx_exporter,
        public_host=public_host.strip(),
    )
    pids = ", ".join(str(n.pid) for n in state.nodes)
    click.echo(
        f"broker '{name}' up: bootstrap {state.bootstrap}, Kafka {state.kafka_version}, "
        f"{len(state.nodes)} node(s), pid {pids}"
    )
    _listeners(state)
    for node in state.nodes if jmx_exporter else ():
        click.echo(f"node {node.id} JMX exporter: http://127.0.0.1:{node.jmx_exporter_port}/metrics")


def _listeners(state: BrokerState) -> None:
    """The listeners of an embedded broker, as `up` and `status` print them."""
    if state.hardened:
        click.echo(
            f"hub listener (SASL_SSL, SCRAM-SHA-512, User:hub): {state.bootstrap}; its client config "
            f"{state.hub_config} (0600, BOSAI_KAFKA_CONFIG for processes started elsewhere); PLAINTEXT off"
        )
        click.echo(f"admin listener (TLS, client certificate, User:admin): {state.admin_bootstrap}")
    click.echo(f"authenticated listener (SASL_SSL, SCRAM-SHA-512): {state.clients_bootstrap}, CA {state.ca_file}")
    if state.registry_url:
        click.echo(f"schema registry (read-only, Confluent API): {state.registry_url} (pid {state.registry_pid})")


@broker.command("down")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--keep-data", is_flag=True, help="Keep the data directories (topics survive the next `up`).")
def broker_down(name: str, keep_data: bool) -> None:
    """Stop every node of the embedded broker and its schema registry by their pids; remove their data unless
    --keep-data."""
    from streams.platform.broker import EmbeddedBroker

    was_running = EmbeddedBroker(name).down(keep_data=keep_data, progress=say)
    click.echo(f"broker '{name}' stopped" if was_running else f"broker '{name}' was not running")


def _external_status(external: str, as_json: bool) -> None:
    from streams.platform.broker import probe

    count = probe(external)
    if as_json:
        click.echo(json.dumps({"bootstrap": external, "external": True, "brokers": count or 0}))
    else:
        click.echo(f"external cluster {external}: " + (f"up, {count} broker(s)" if count else "NOT answering"))
    sys.exit(0 if count else 1)


@broker.command("status")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--json", "as_json", is_flag=True, help="bootstrap, nodes (id, pid, ports, up), controller_leader.")
def broker_status(name: str, as_json: bool) -> None:
    """Is the broker up and answering? Exit 0 if so, 1 if not."""
    from streams.platform.broker import EmbeddedBroker, probe
    from streams.platform.settings import external_bootstrap

    if external := external_bootstrap():
        _external_status(external, as_json)
    embedded = EmbeddedBroker(name)
    state = embedded.state()
    if state is None:
        click.echo(json.dumps({"name": name, "up": False}) if as_json else f"broker '{name}': not running")
        sys.exit(1)
    status = embedded.status()
    answering = probe(state.admin_address) or 0
    status.update(up=answering > 0, brokers_answering=answering)
    if as_json:
        click.echo(json.dumps(status))
        sys.exit(0 if answering else 1)
    nodes = ", ".join(f"node {n['id']} {'up' if n['up'] else 'DOWN'} (pid {n['pid']})" for n in status["nodes"])
    click.echo(
        f"broker '{name}': {'up' if answering else 'process alive but NOT answering'}, "
        f"bootstrap {state.bootstrap}, Kafka {state.kafka_version}, {nodes}, controller leader "
        f"node {status['controller_leader']}, up {time.time() - state.started_at:.0f}s, data {embedded.home}"
    )
    _listeners(state)
    sys.exit(0 if answering else 1)


@broker.command("kill")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--node", "node_id", required=True, type=int, help="The node to kill (SIGKILL), e.g. for a drill.")
def broker_kill(name: str, node_id: int) -> None:
    """Kill one node of the embedded cluster with SIGKILL (a crash); `bosai broker start --node` brings it back."""
    from streams.platform.broker import EmbeddedBroker

    node = EmbeddedBroker(name).kill_node(node_id)
    click.echo(f"node {node_id} of '{name}' killed (pid {node.pid})")


@broker.command("start")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--node", "node_id", required=True, type=int, help="The node to start again.")
def broker_start(name: str, node_id: int) -> None:
    """Start a killed or stopped node again, with its config and data as they are."""
    from streams.platform.broker import EmbeddedBroker

    node = EmbeddedBroker(name).start_node(node_id)
    click.echo(f"node {node_id} of '{name}' started (pid {node.pid}) on 127.0.0.1:{node.port}")


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
@click.option(
    "--ip",
    "ips",
    multiple=True,
    default=("127.0.0.1",),
    show_default=True,
    help="An address the broker certificate is valid for (repeatable).",
)
@click.option(
    "--public-host",
    default="",
    help="The name (or address) municipalities' machines reach the cluster by: added to the certificate's names "
    "(docker-compose passes BOSAI_PUBLIC_HOST, also the CLIENTS listeners' advertised host).",
)
def tls_init(out_dir: Path, hostnames: tuple[str, ...], ips: tuple[str, ...], public_host: str) -> None:
    """For a cluster the hub does not start itself (e.g. docker-compose): make the CA, broker.pem (the nodes'
    key and certificate, also their client certificate between nodes) and admin.pem (admin commands, mTLS)."""
    from streams.platform import tls as tls_material

    ca = tls_material.ensure_ca(out_dir)
    hostnames, ips = tls_material.names_with(hostnames, ips, public_host.strip())
    keystore = tls_material.issue_server_certificate(
        ca, out_dir / "broker.pem", hostnames=hostnames, ips=ips, common_name="broker", client_auth=True
    )
    admin = tls_material.issue_client_certificate(ca, out_dir / "admin.pem", common_name="admin")
    (out_dir / "admin.properties").write_text(
        "# Java clients (kafka-*.sh --command-config) as User:admin on the INTERNAL listener (mTLS)\n"
        f"security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location={admin}\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca.cert_file}\n"
    )
    click.echo(
        f"CA {ca.cert_file} (give it to clients); broker key+certificate {keystore} (CN=broker, also its client "
        f"certificate between nodes) for {', '.join(hostnames + ips)}; admin client certificate {admin} (CN=admin)"
    )
