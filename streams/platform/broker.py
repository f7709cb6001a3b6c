"""The embedded Kafka: real Apache Kafka (KRaft) on loopback, one node or a cluster of three, no Docker.

``deploy/kafka/pom.xml`` pins the Kafka release. Maven resolves its jars once into a cache outside the
repo (:mod:`streams.platform.kafka_dist`); each node runs as a plain JVM (``kafka.Kafka``) on 127.0.0.1
with free ports, in its own session so it outlives the command that started it, and is stopped by its
pid (:mod:`streams.platform.kafka_node`). A cluster's nodes are each broker and controller: three nodes
form a controller quorum of three and keep every topic with replication 3 / min ISR 2, so one node can
be lost (``bosai broker kill --node ID``) without losing a committed record or stopping the hub.

``<cache>/brokers/<name>/state.json`` records the nodes (id, pid, ports), the bootstrap addresses, the
CA file and the Kafka version.

Two client listeners: the hub's own (PLAINTEXT, loopback, a super user) and ``CLIENTS``
(SASL/SCRAM-SHA-512 over TLS) for municipalities, the prefecture and the public feed, with KRaft's
StandardAuthorizer denying everything no ACL allows (see ``streams/kernel/access.py``).
``--hardened`` (:mod:`streams.platform.hardening`): no PLAINTEXT; the hub's listener is SASL_SSL, the hub
is ``User:hub`` with only its ACLs, and nodes and admin commands authenticate by certificate (mTLS).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from streams.platform import hardening, registry_process, tls
from streams.platform.kafka_dist import BrokerError, _quiet, kafka_version, require_java, resolve_jars
from streams.platform.kafka_node import (
    BrokerState,
    KafkaNode,
    NodeState,
    bracketed,
    free_port,
    kill,
    new_cluster_id,
    pid_alive,
    port_open,
    terminate,
)
from streams.platform.settings import ENV_CA_FILE, ENV_CLIENTS_BOOTSTRAP, cache_dir, external_bootstrap, tls_dir

Progress = Callable[[str], None]
__all__ = [
    "BrokerError",
    "BrokerState",
    "EmbeddedBroker",
    "NodeState",
    "broker_for_command",
    "pid_alive",
    "probe",
    "resolve_admin_bootstrap",
    "resolve_bootstrap",
    "resolve_clients_listener",
]


async def _metadata_ok(bootstrap: str, timeout_s: float) -> int:
    """Ask the cluster for metadata; return its broker count. Raises on failure."""
    from streams.platform.kafka import admin as admin_client

    admin = admin_client(bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def probe(bootstrap: str, timeout_s: float = 5.0) -> int | None:
    """Broker count if the cluster answers a metadata request within timeout_s, else None."""
    if not port_open(bootstrap, timeout_s):
        return None  # not listening yet: skip aiokafka, which would log a connection error
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_metadata_ok(bootstrap, timeout_s))
    except Exception:
        return None
    finally:
        quiet.setLevel(level)


class EmbeddedBroker:
    """One named local cluster (``default`` for operators, others for tests and benchmarks)."""

    def __init__(self, name: str = "default", root: Path | None = None):
        import re

        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise BrokerError(f"broker name {name!r}: use letters, digits, '.', '_' or '-'")
        self.name = name
        self.home = (root or cache_dir() / "brokers") / name
        self.state_file = self.home / "state.json"

    @property
    def data_dir(self) -> Path:
        """Where the nodes keep their data (removed on ``down`` unless kept)."""
        return self.home

    # -- state -----------------------------------------------------------------------------
    def state(self) -> BrokerState | None:
        """The recorded state while any of its nodes is alive (a stale state file is removed)."""
        try:
            state = BrokerState.from_json(json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if any(self.node_alive(state, n.id) for n in state.nodes):
            return state
        registry_process.stop_registry(state.registry_pid, self.home)  # the broker is gone: so is its registry
        self.state_file.unlink(missing_ok=True)
        return None

    def node_alive(self, state: BrokerState, node_id: int) -> bool:
        node = state.node(node_id)
        return pid_alive(node.pid) and KafkaNode(self.home, node_id).is_our_jvm(node.pid)

    def _save(self, state: BrokerState) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")

    # -- up ------------------------------------------------------------------------------
    def up(
        self,
        *,
        progress: Progress = _quiet,
        timeout_s: float = 120.0,
        heap: str = "1g",
        brokers: int = 1,
        hardened: bool = False,
        fixed_heap: bool = False,
        jmx_exporter: bool = False,
        public_host: str = "",
    ) -> BrokerState:
        """Start the cluster (if not running), return once every node answers, with the schema registry beside it.

        ``hardened``: no PLAINTEXT listener (see the module's docstring); ``fixed_heap``: -Xms = -Xmx, touched
        (the soak); ``public_host``: the name clients reach CLIENTS and the registry by (in the certificate).
        """
        running = self.state()
        if running:
            return self._already_running(running, hardened, progress)
        if brokers not in (1, 3):
            raise BrokerError(
                f"--brokers {brokers}: the embedded cluster has 1 or 3 nodes (a quorum of 3 tolerates the loss of one)"
            )
        java, libs = require_java(), resolve_jars(progress)
        self.home.mkdir(parents=True, exist_ok=True)
        hardening.unregister(self.home, self.name)
        nodes = [KafkaNode(self.home, i) for i in range(1, brokers + 1)]
        ports = self._ports(nodes, hardened, jmx_exporter)
        ca = tls.ensure_ca(tls_dir())
        keystore, admin_pem = hardening.node_certificates(ca, self.home, hardened=hardened, public_host=public_host)
        jvm = {n.id: n.jvm(java, libs, heap) for n in nodes}
        cluster_id = self._configure(nodes, ports, keystore, ca, hardened, jvm.__getitem__, progress, public_host)
        started = time.monotonic()
        progress(
            f"starting Apache Kafka {kafka_version()} (KRaft, {brokers} node(s)"
            + (", hardened: no PLAINTEXT" if hardened else "")
            + ") on 127.0.0.1:"
            + ",".join(str(ports[n.id]["port"]) for n in nodes)
            + " …"
        )
        procs = {
            n.id: n.launch(
                n.jvm(
                    java, libs, heap, fixed_heap=fixed_heap, jmx_exporter_port=ports[n.id].get("jmx_exporter_port", 0)
                )
            )
            for n in nodes
        }
        state = self._new_state(nodes, ports, procs, ca, cluster_id, hardened, public_host)
        self._save(state)
        try:
            self._secure_when_ready(state, procs, ca, admin_pem, timeout_s, progress)
            state = registry_process.with_registry(state, self.home)
            self._save(state)
        except BaseException:
            registry_process.stop_registry(state.registry_pid, self.home)
            for proc in procs.values():
                terminate(proc.pid)
            self.state_file.unlink(missing_ok=True)
            hardening.unregister(self.home, self.name)
            raise
        progress(
            f"broker ready in {time.monotonic() - started:.1f}s: {state.bootstrap} (pid "
            + ", ".join(str(p.pid) for p in procs.values())
            + f"); schema registry {state.registry_url} (pid {state.registry_pid})"
        )
        return state

    def _already_running(self, running: BrokerState, hardened: bool, progress: Progress) -> BrokerState:
        if running.hardened != hardened:
            raise BrokerError(
                f"broker '{self.name}' already runs {'with' if running.hardened else 'without'} --hardened: "
                f"stop it first (bosai broker down --name {self.name})"
            )
        progress(
            f"broker '{self.name}' already running ({len(running.nodes)} node(s), pid "
            f"{running.pid}) at {running.bootstrap}"
        )
        return running

    def _configure(
        self,
        nodes: list[KafkaNode],
        ports: dict[int, dict[str, int]],
        keystore: Path,
        ca: tls.CertificateAuthority,
        hardened: bool,
        node_jvm: Callable[[int], list[str]],
        progress: Progress,
        public_host: str = "",
    ) -> str:
        """Write each node's config and format its storage (kept data keeps its cluster id); the cluster id."""
        cluster_id = next((c for n in nodes if (c := n.cluster_id_of_kept_data())), None) or new_cluster_id()
        voters = ",".join(f"{n.id}@127.0.0.1:{ports[n.id]['controller_port']}" for n in nodes)
        for node in nodes:
            node.write_config(
                ports[node.id],
                voters=voters,
                keystore=keystore,
                replication_factor=min(len(nodes), 3),
                min_isr=min(len(nodes), 2),
                ca_file=ca.cert_file,
                hardened=hardened,
                public_host=bracketed(public_host),
            )
            node.format_storage(node_jvm(node.id), cluster_id, progress)
        return cluster_id

    def _new_state(
        self,
        nodes: list[KafkaNode],
        ports: dict[int, dict[str, int]],
        procs: dict[int, subprocess.Popen[bytes]],
        ca: tls.CertificateAuthority,
        cluster_id: str,
        hardened: bool,
        public_host: str = "",
    ) -> BrokerState:
        def addresses(key: str, host: str = "127.0.0.1") -> str:
            return ",".join(f"{host}:{ports[n.id][key]}" for n in nodes)

        return BrokerState(
            name=self.name,
            bootstrap=addresses("port"),
            clients_bootstrap=addresses("clients_port", bracketed(public_host) or "127.0.0.1"),
            ca_file=str(ca.cert_file),
            kafka_version=kafka_version(),
            cluster_id=cluster_id,
            home=str(self.home),
            started_at=time.time(),
            nodes=tuple(NodeState(id=n.id, pid=procs[n.id].pid, home=str(n.home), **ports[n.id]) for n in nodes),
            hardened=hardened,
            admin_bootstrap=addresses("internal_port") if hardened else "",
            hub_config=str(hardening.registry_file(self.home, self.name, hardening.HUB)) if hardened else "",
            public_host=public_host,
        )

    def _secure_when_ready(
        self,
        state: BrokerState,
        procs: dict[int, subprocess.Popen[bytes]],
        ca: tls.CertificateAuthority,
        admin_pem: Path | None,
        timeout_s: float,
        progress: Progress,
    ) -> None:
        """Wait until every node answers; hardened, register the admin's client config first and then
        create the hub's credential and apply the access file's grants."""
        if state.hardened:
            if admin_pem is None:
                raise BrokerError(f"broker '{self.name}' is hardened but has no admin certificate")
            hardening.register(
                hardening.registry_file(self.home, self.name, hardening.ADMIN),
                hardening.admin_security(ca.cert_file, admin_pem),
                state.admin_bootstrap,
                self.state_file,
            )
        self._wait_ready(state, procs, len(procs), timeout_s)
        if state.hardened:
            hardening.secure(
                state.admin_bootstrap,
                state.bootstrap,
                hub_file=Path(state.hub_config),
                ca=ca,
                state_file=self.state_file,
                progress=progress,
            )

    def _ports(self, nodes: list[KafkaNode], hardened: bool = False, jmx: bool = False) -> dict[int, dict[str, int]]:
        """Each node's client, controller and authenticated-listener ports (and, hardened, the INTERNAL one; the
        JMX exporter's): the last run's where still free."""
        taken: set[int] = set()
        ports: dict[int, dict[str, int]] = {}
        keys = ("port", "controller_port", "clients_port") + (("internal_port",) if hardened else ())
        keys += ("jmx_exporter_port",) if jmx else ()
        for node in nodes:
            previous = node.previous_ports()
            ports[node.id] = {}
            for key in keys:
                ports[node.id][key] = free_port(previous.get(key), taken)
                taken.add(ports[node.id][key])
        return ports

    def _wait_ready(
        self, state: BrokerState, procs: dict[int, subprocess.Popen[bytes]], brokers: int, timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id, proc in procs.items():
                if proc.poll() is not None:
                    raise BrokerError(
                        f"the JVM of node {node_id} exited with code {proc.returncode} while "
                        f"starting; last lines of its log:\n{KafkaNode(self.home, node_id).log_tail()}"
                    )
            if (probe(state.admin_address, timeout_s=2.0) or 0) >= brokers:
                return
            time.sleep(0.25)
        tails = "\n".join(f"node {i}:\n{KafkaNode(self.home, i).log_tail(8)}" for i in procs)
        raise BrokerError(
            f"the cluster did not answer with {brokers} broker(s) on {state.bootstrap} within "
            f"{timeout_s:.0f}s; last lines:\n{tails}"
        )

    # -- drills: one node down and back ----------------------------------------------------------
    def kill_node(self, node_id: int) -> NodeState:
        """SIGKILL one node (a crash, for drills); the others go on."""
        state = self._running()
        node = state.node(node_id)
        if self.node_alive(state, node_id):
            kill(node.pid)
        return node

    def start_node(self, node_id: int, *, heap: str = "1g", timeout_s: float = 120.0) -> NodeState:
        """Start a node that was killed or stopped, with its config and data as they are."""
        state = self._running()
        node = state.node(node_id)
        if self.node_alive(state, node_id):
            return node
        kafka_node = KafkaNode(self.home, node_id)
        proc = kafka_node.launch(kafka_node.jvm(require_java(), resolve_jars(), heap))  # its hardening is in its config
        node = replace(node, pid=proc.pid)
        self._save(replace(state, nodes=tuple(node if n.id == node_id else n for n in state.nodes)))
        deadline = time.monotonic() + timeout_s
        while not port_open(node.address, 1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BrokerError(f"node {node_id} did not come back; last lines of its log:\n{kafka_node.log_tail()}")
            time.sleep(0.25)
        return node

    def quorum_leader(self, state: BrokerState | None = None) -> int | None:
        """The node leading the KRaft controller quorum, as the live nodes last recorded it."""
        state = state or self._running()
        views = [
            v for n in state.nodes if self.node_alive(state, n.id) and (v := KafkaNode(self.home, n.id).quorum_view())
        ]
        return max(views, key=lambda v: v[1])[0] if views else None

    def status(self) -> dict[str, Any]:  # the JSON of `bosai broker status --json`
        """What `bosai broker status --json` prints."""
        state = self._running()
        leader = self.quorum_leader(state)
        return {
            "name": self.name,
            "bootstrap": state.bootstrap,
            "clients_bootstrap": state.clients_bootstrap,
            "ca_file": state.ca_file,
            "kafka_version": state.kafka_version,
            "controller_leader": leader,
            "hardened": state.hardened,
            "admin_bootstrap": state.admin_address,
            "hub_config": state.hub_config or None,
            "public_host": state.public_host or None,
            "schema_registry": {"url": state.registry_url, "pid": state.registry_pid} if state.registry_pid else None,
            "nodes": [
                {
                    "id": n.id,
                    "pid": n.pid,
                    "up": self.node_alive(state, n.id),
                    "ports": {
                        ("hub" if state.hardened else "plaintext"): n.port,
                        "controller": n.controller_port,
                        "clients": n.clients_port,
                        **({"internal": n.internal_port} if state.hardened else {}),
                    },
                }
                for n in state.nodes
            ],
        }

    def _running(self) -> BrokerState:
        state = self.state()
        if state is None:
            raise BrokerError(f"broker '{self.name}' is not running (bosai broker up)")
        return state

    # -- down ----------------------------------------------------------------------------
    def down(self, *, keep_data: bool = False, progress: Progress = _quiet, timeout_s: float = 30.0) -> bool:
        """Stop every node by its pid (TERM, then KILL after timeout_s). Returns whether one was running."""
        state = self.state()
        if state:
            progress(f"stopping broker '{self.name}' (pid {', '.join(str(n.pid) for n in state.nodes)}) …")
            registry_process.stop_registry(state.registry_pid, self.home)
            for node in state.nodes:
                if self.node_alive(state, node.id):
                    terminate(node.pid, timeout_s)
            self.state_file.unlink(missing_ok=True)
        hardening.unregister(self.home, self.name)
        if not keep_data:
            removed = [d for d in self.home.glob("node-*/data") if d.is_dir()]
            for data in removed:
                shutil.rmtree(data)
            if removed:
                progress(f"removed the data of {len(removed)} node(s) under {self.home}")
        return state is not None

    def log_tail(self, lines: int = 20) -> str:
        state = self.state()
        nodes = state.nodes if state is not None else ()
        return "\n".join(f"node {n.id}: {KafkaNode(self.home, n.id).log_tail(lines)}" for n in nodes)


def _running_embedded(instance: str) -> BrokerState:
    state = EmbeddedBroker(instance).state()
    if state is None:
        raise BrokerError("no Kafka broker: run `bosai broker up` (embedded) or set KAFKA_BOOTSTRAP_SERVERS")
    return state


def resolve_bootstrap(instance: str = "default") -> str:
    """Where to talk Kafka: KAFKA_BOOTSTRAP_SERVERS if set, else the running embedded broker."""
    return external_bootstrap() or _running_embedded(instance).bootstrap


def resolve_admin_bootstrap(instance: str = "default") -> str:
    """Where admin commands (topics, ACLs, credentials) connect: KAFKA_BOOTSTRAP_SERVERS if set (with the
    BOSAI_KAFKA_* settings of an admin identity, e.g. docker-compose's one-shots), else the embedded broker's
    admin listener (hardened: INTERNAL, by the admin certificate; else the hub's own)."""
    return external_bootstrap() or _running_embedded(instance).admin_address


def resolve_clients_listener(instance: str = "default") -> tuple[str, Path]:
    """The authenticated (SASL_SSL) listener and the CA file clients must trust.

    BOSAI_CLIENTS_BOOTSTRAP / BOSAI_CA_FILE name an external cluster's; else the running embedded broker's.
    """
    external = os.environ.get(ENV_CLIENTS_BOOTSTRAP, "").strip()
    if external:
        ca_file = os.environ.get(ENV_CA_FILE, "").strip()
        if not ca_file:
            raise BrokerError(
                f"{ENV_CLIENTS_BOOTSTRAP} is set but {ENV_CA_FILE} is not: name the PEM file of the "
                f"CA that signed the cluster's SASL_SSL listener certificate"
            )
        return external, Path(ca_file)
    state = EmbeddedBroker(instance).state()
    if state is None:
        raise BrokerError(
            "no authenticated listener: run `bosai broker up` (embedded) or set "
            f"{ENV_CLIENTS_BOOTSTRAP} and {ENV_CA_FILE}"
        )
    return state.clients_bootstrap, Path(state.ca_file)


@dataclass(frozen=True)
class BrokerLease:
    """The cluster a command talks to, and whether the command started it."""

    bootstrap: str
    started: bool
    broker: EmbeddedBroker | None = None


@contextmanager
def broker_for_command(
    name: str = "default",
    *,
    keep: bool = False,
    heap: str = "1g",
    brokers: int = 1,
    progress: Progress = _quiet,
    hardened: bool = False,
    fixed_heap: bool = False,
    public_host: str = "",
) -> Iterator[BrokerLease]:
    """KAFKA_BOOTSTRAP_SERVERS if set, else the running embedded broker ``name``, else one started now —
    and stopped (by its pid) when the command ends, unless ``keep``."""
    external = external_bootstrap()
    if external:
        yield BrokerLease(external, started=False)
        return
    embedded = EmbeddedBroker(name)
    started = embedded.state() is None
    state = embedded.up(
        progress=progress, heap=heap, brokers=brokers, hardened=hardened, fixed_heap=fixed_heap, public_host=public_host
    )
    try:
        yield BrokerLease(state.bootstrap, started=started, broker=embedded)
    finally:
        if started and not keep:
            embedded.down(progress=progress)
        elif started:
            progress(f"broker '{name}' left running at {state.bootstrap}: stop it with `bosai broker down`")
