"""One node of the embedded Kafka: its KRaft config, storage, JVM process and view of the controller quorum.

Layout under the cluster's home (``<cache>/brokers/<name>/``)::

    node-<id>/server.properties   generated from deploy/kafka/server.properties.template (with the
                                  listeners of listeners[-hardened].properties.template)
    node-<id>/log4j2.properties   logging config (the node's own log goes to broker.log)
    node-<id>/broker.log          stdout/stderr of the JVM
    node-<id>/data/               KRaft metadata and topic logs
    tls/broker.pem                the authenticated listener's key + certificate (every node uses it)
    tls/admin.pem                 hardened only: the admin commands' client certificate (CN=admin)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.platform.kafka_dist import BrokerError
from streams.platform.settings import project_root

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeState:
    """One node as recorded in the cluster's state.json."""

    id: int
    pid: int
    port: int  # the hub's own listener: PLAINTEXT, or HUB (SASL_SSL) when hardened
    controller_port: int  # CONTROLLER: the KRaft quorum
    clients_port: int  # CLIENTS: SASL_SSL for everyone else
    home: str
    internal_port: int = 0  # hardened only, INTERNAL: node to node and admin commands (mTLS)
    jmx_exporter_port: int = 0  # with --jmx-exporter: the Prometheus JMX exporter agent's /metrics

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class BrokerState:
    """What a running embedded cluster is, as recorded in its state.json."""

    name: str
    bootstrap: str  # every node's PLAINTEXT address, comma-separated
    clients_bootstrap: str  # every node's SASL_SSL address
    ca_file: str  # the CA the listener certificate is signed by (give it to clients)
    kafka_version: str
    cluster_id: str
    home: str
    started_at: float
    nodes: tuple[NodeState, ...]
    hardened: bool = False  # no PLAINTEXT: the hub as User:hub (SASL_SSL), admin by certificate (mTLS)
    admin_bootstrap: str = ""  # hardened: every node's INTERNAL (mTLS) address, for admin commands
    hub_config: str = ""  # hardened: the hub's client config file (0600), usable as BOSAI_KAFKA_CONFIG
    public_host: str = ""  # the name clients reach the CLIENTS listener (and the registry) by; "" = 127.0.0.1
    registry_url: str = ""  # the schema registry started beside it (bosai registry serve), as clients reach it
    registry_pid: int = 0

    @property
    def admin_address(self) -> str:
        """Where admin commands connect: the INTERNAL listener when hardened, else the hub's own."""
        return self.admin_bootstrap or self.bootstrap

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def node(self, node_id: int) -> NodeState:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise BrokerError(f"broker '{self.name}' has no node {node_id} (nodes: {[n.id for n in self.nodes]})")

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BrokerState:  # the parsed state file
        return cls(**{**doc, "nodes": tuple(NodeState(**n) for n in doc["nodes"])})


def bracketed(host: str) -> str:
    """An IPv6 address in brackets, as a host:port list writes it."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def port_open(bootstrap: str, timeout_s: float) -> bool:
    """Whether the first address of a bootstrap list accepts a TCP connection."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def free_port(preferred: int | None = None, taken: Set[int] = frozenset()) -> int:
    """A free TCP port on 127.0.0.1: the preferred one when it is free."""
    for candidate in ([preferred] if preferred else []) + [0] * 20:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            if port not in taken:
                return port
    raise BrokerError("no free TCP port on 127.0.0.1")


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding, like kafka-storage random-uuid.

    Like Kafka's Uuid.randomUuid, never one starting with '-': the storage tool would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def pid_alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def terminate(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after timeout_s; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    kill(pid)


def kill(pid: int) -> None:
    """SIGKILL (a crash, for drills); returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid):
        time.sleep(0.05)


def _template(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise BrokerError(f"{path}: cannot read the broker config template: {exc}") from exc


class KafkaNode:
    """One node's files and process."""

    def __init__(self, cluster_home: Path, node_id: int):
        self.id = node_id
        self.home = cluster_home / f"node-{node_id}"
        self.config_file = self.home / "server.properties"
        self.data_dir = self.home / "data"
        self.log_file = self.home / "broker.log"

    def previous_ports(self) -> dict[str, int]:
        """The ports of the last run (reused when free, so clients' configs stay valid)."""
        try:
            text = self.config_file.read_text()
        except OSError:
            return {}
        line = re.search(r"^listeners=(.*)$", text, re.M)
        keys = {
            "PLAINTEXT": "port",
            "HUB": "port",
            "CONTROLLER": "controller_port",
            "CLIENTS": "clients_port",
            "INTERNAL": "internal_port",
        }
        found = re.findall(r"([A-Z]+)://[^:,\s]+:(\d+)", line[1]) if line else []
        return {keys[name]: int(port) for name, port in found if name in keys}

    def cluster_id_of_kept_data(self) -> str | None:
        try:
            text = (self.data_dir / "meta.properties").read_text()
        except OSError:
            return None
        m = re.search(r"^cluster\.id=(\S+)", text, re.M)
        return m.group(1) if m else None

    def write_config(
        self,
        ports: dict[str, int],
        *,
        voters: str,
        keystore: Path,
        replication_factor: int,
        min_isr: int,
        ca_file: Path | None = None,
        hardened: bool = False,
        public_host: str = "",
    ) -> None:
        """server.properties from the template, with the default or the hardened listeners; with a public host,
        the CLIENTS listener listens on every address and is advertised under that name."""
        deploy = project_root() / "deploy" / "kafka"
        listeners = _template(deploy / f"listeners{'-hardened' if hardened else ''}.properties.template").format(
            tls_keystore=keystore,
            ca_file=ca_file,
            clients_bind="0.0.0.0" if public_host else "127.0.0.1",
            clients_host=public_host or "127.0.0.1",
            **{"internal_port": 0, **ports},
        )
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            _template(deploy / "server.properties.template").format(
                node_id=self.id,
                voters=voters,
                listeners=listeners,
                data_dir=self.data_dir,
                replication_factor=replication_factor,
                min_isr=min_isr,
            )
        )
        shutil.copyfile(project_root() / "deploy" / "kafka" / "log4j2.properties", self.home / "log4j2.properties")

    def jvm(
        self, java: str, libs: Path, heap: str, *, fixed_heap: bool = False, jmx_exporter_port: int = 0
    ) -> list[str]:
        """The JVM command. ``fixed_heap``: the whole heap committed and touched at start (-Xms = -Xmx,
        AlwaysPreTouch), as production brokers run, so resident memory does not grow with the heap.
        ``jmx_exporter_port``: the Prometheus JMX exporter (a pinned jar of deploy/kafka/pom.xml) serves the
        broker's health (deploy/kafka/jmx-exporter.yaml: partitions, controller, log size) on that port."""
        return [
            java,
            *jmx_exporter_agent(libs, jmx_exporter_port),
            *([f"-Xms{heap}", "-XX:+AlwaysPreTouch"] if fixed_heap else ["-Xms256m"]),
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def format_storage(self, jvm: list[str], cluster_id: str, progress: Progress) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        progress(f"formatting KRaft storage of node {self.id} in {self.data_dir} (cluster id {cluster_id})")
        command = [
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.config_file),
            "--ignore-formatted",
        ]
        fmt = subprocess.run(jvm + command, capture_output=True, text=True)
        if fmt.returncode != 0:
            raise BrokerError(
                f"kafka-storage format failed ({self.config_file}):\n{(fmt.stdout + fmt.stderr).strip()[-2000:]}"
            )

    def launch(self, jvm: list[str]) -> subprocess.Popen[bytes]:
        """Start the node's JVM in its own session (it outlives the command that started it)."""
        with open(self.log_file, "ab") as log:
            return subprocess.Popen(
                jvm + ["kafka.Kafka", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )

    def is_our_jvm(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline and str(self.config_file).encode() in cmdline

    def quorum_view(self) -> tuple[int, int] | None:
        """(leader id, leader epoch) of the controller quorum as this node last recorded it (KRaft's
        quorum-state file), or None when it has recorded no leader."""
        try:
            doc = json.loads((self.data_dir / "__cluster_metadata-0" / "quorum-state").read_text())
        except (OSError, ValueError):
            return None
        leader, epoch = doc.get("leaderId", -1), doc.get("leaderEpoch", -1)
        return (int(leader), int(epoch)) if isinstance(leader, int) and leader >= 0 else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


JMX_EXPORTER_JAR = "jmx_prometheus_javaagent-*.jar"


def jmx_exporter_agent(libs: Path, port: int) -> list[str]:
    """``-javaagent:<jar>=<port>:<config>`` for the pinned JMX exporter, or nothing when port is 0."""
    if not port:
        return []
    jars = sorted(libs.glob(JMX_EXPORTER_JAR))
    if not jars:
        raise BrokerError(f"{libs}: no {JMX_EXPORTER_JAR} (deploy/kafka/pom.xml pins it; resolve the jars again)")
    config = project_root() / "deploy" / "kafka" / "jmx-exporter.yaml"
    return [f"-javaagent:{jars[-1]}=127.0.0.1:{port}:{config}"]
