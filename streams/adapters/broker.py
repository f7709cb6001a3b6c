"""The embedded broker: a real single-node Apache Kafka (KRaft, combined broker+controller), no Docker.

``deploy/kafka/pom.xml`` pins the Kafka release. Maven resolves its jars once into a cache outside
the repo; the broker runs as a plain JVM (``kafka.Kafka``) on 127.0.0.1 with free ports, in its own
session so it outlives the command that started it, and is stopped by its pid.

Layout of one broker instance under ``<cache>/brokers/<name>/``::

    server.properties   generated KRaft config
    log4j2.properties   logging config (the broker's own log goes to broker.log)
    broker.log          stdout/stderr of the JVM
    data/               KRaft metadata and topic logs (removed on ``down`` unless kept)
    tls/broker.pem      the authenticated listener's key + certificate (signed by ``<cache>/tls/ca.pem``)
    state.json          pid, ports, bootstrap addresses, CA file, Kafka version

Two client listeners: the hub's own (PLAINTEXT, loopback, a super user) and ``CLIENTS``
(SASL/SCRAM-SHA-512 over TLS) for municipalities, the prefecture and the public feed, with KRaft's
StandardAuthorizer denying everything no ACL allows (see ``streams/access.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from streams.adapters import tls
from streams.adapters.kafka_dist import BrokerError, _quiet, kafka_version, require_java, resolve_jars
from streams.config.settings import (
    ENV_CA_FILE,
    ENV_CLIENTS_BOOTSTRAP,
    cache_dir,
    external_bootstrap,
    project_root,
    tls_dir,
)

Progress = Callable[[str], None]


def _free_port(preferred: int | None = None) -> int:
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise BrokerError("no free TCP port on 127.0.0.1")


def _new_cluster_id() -> str:
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


@dataclass(frozen=True)
class BrokerState:
    """What a running embedded broker is, as recorded in its state.json."""

    name: str
    pid: int
    bootstrap: str
    port: int
    controller_port: int
    kafka_version: str
    cluster_id: str
    home: str
    started_at: float
    clients_port: int = 0
    clients_bootstrap: str = ""  # the SASL_SSL listener
    ca_file: str = ""  # the CA its certificate is signed by (give it to clients)


async def _metadata_ok(bootstrap: str, timeout_s: float) -> int:
    """Ask the cluster for metadata; return its broker count. Raises on failure."""
    from streams.adapters.kafka import admin as admin_client

    admin = admin_client(bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def _port_open(bootstrap: str, timeout_s: float) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def probe(bootstrap: str, timeout_s: float = 5.0) -> int | None:
    """Broker count if the cluster answers a metadata request within timeout_s, else None."""
    if not _port_open(bootstrap, timeout_s):
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
    """One named local broker instance (``default`` for operators, others for tests)."""

    def __init__(self, name: str = "default", root: Path | None = None):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise BrokerError(f"broker name {name!r}: use letters, digits, '.', '_' or '-'")
        self.name = name
        self.home = (root or cache_dir() / "brokers") / name
        self.state_file = self.home / "state.json"
        self.log_file = self.home / "broker.log"
        self.data_dir = self.home / "data"
        self.config_file = self.home / "server.properties"

    # -- state -----------------------------------------------------------------------------
    def state(self) -> BrokerState | None:
        """The recorded state if its JVM is still alive (stale state files are removed)."""
        try:
            state = BrokerState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if pid_alive(state.pid) and self._is_our_jvm(state.pid):
            return state
        self.state_file.unlink(missing_ok=True)
        return None

    def _is_our_jvm(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline and str(self.config_file).encode() in cmdline

    # -- up ------------------------------------------------------------------------------
    def up(self, *, progress: Progress = _quiet, timeout_s: float = 120.0, heap: str = "1g") -> BrokerState:
        """Start the broker (if not running) and return once it answers metadata requests."""
        running = self.state()
        if running:
            progress(f"broker '{self.name}' already running (pid {running.pid}) at {running.bootstrap}")
            return running
        jvm = self._jvm(require_java(), resolve_jars(progress), heap)
        self.home.mkdir(parents=True, exist_ok=True)
        port, controller_port, clients_port = self._ports()
        ca = tls.ensure_ca(tls_dir())
        keystore = tls.issue_server_certificate(
            ca, self.home / "tls" / "broker.pem", hostnames=("localhost",), ips=("127.0.0.1",)
        )
        cluster_id = self._cluster_id_of_kept_data() or _new_cluster_id()
        self._write_config(port, controller_port, clients_port, keystore)
        self._format_storage(jvm, cluster_id, progress)
        started = time.monotonic()
        progress(f"starting Apache Kafka {kafka_version()} (KRaft) on 127.0.0.1:{port} …")
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                jvm + ["kafka.Kafka", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        state = BrokerState(
            name=self.name,
            pid=proc.pid,
            bootstrap=f"127.0.0.1:{port}",
            port=port,
            controller_port=controller_port,
            kafka_version=kafka_version(),
            cluster_id=cluster_id,
            home=str(self.home),
            started_at=time.time(),
            clients_port=clients_port,
            clients_bootstrap=f"127.0.0.1:{clients_port}",
            ca_file=str(ca.cert_file),
        )
        self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")
        try:
            self._wait_ready(proc, state.bootstrap, timeout_s)
        except BaseException:
            self._terminate(proc.pid)
            self.state_file.unlink(missing_ok=True)
            raise
        progress(f"broker ready in {time.monotonic() - started:.1f}s: {state.bootstrap} (pid {proc.pid})")
        return state

    def _jvm(self, java: str, libs: Path, heap: str) -> list[str]:
        return [
            java,
            "-Xms256m",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def _ports(self) -> tuple[int, int, int]:
        """Client, controller and authenticated-listener ports: the previous run's where still free."""
        previous = self._previous_ports()
        port = _free_port(previous.get("port"))
        controller_port = _free_port(previous.get("controller_port"))
        if controller_port == port:
            controller_port = _free_port()
        clients_port = _free_port(previous.get("clients_port"))
        while clients_port in (port, controller_port):
            clients_port = _free_port()
        return port, controller_port, clients_port

    def _format_storage(self, jvm: list[str], cluster_id: str, progress: Progress) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        progress(f"formatting KRaft storage in {self.data_dir} (cluster id {cluster_id})")
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

    def _wait_ready(self, proc: subprocess.Popen, bootstrap: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"the broker JVM exited with code {proc.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if probe(bootstrap, timeout_s=2.0):
                return
            time.sleep(0.25)
        raise BrokerError(
            f"broker did not answer metadata requests on {bootstrap} within {timeout_s:.0f}s; "
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def _previous_ports(self) -> dict[str, int]:
        try:
            text = self.config_file.read_text()
        except OSError:
            return {}
        ports = {}
        if m := re.search(
            r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+),CONTROLLER://127\.0\.0\.1:(\d+)"
            r"(?:,CLIENTS://127\.0\.0\.1:(\d+))?",
            text,
            re.M,
        ):
            ports = {"port": int(m.group(1)), "controller_port": int(m.group(2))}
            if m.group(3):
                ports["clients_port"] = int(m.group(3))
        return ports

    def _cluster_id_of_kept_data(self) -> str | None:
        try:
            text = (self.data_dir / "meta.properties").read_text()
        except OSError:
            return None
        m = re.search(r"^cluster\.id=(\S+)", text, re.M)
        return m.group(1) if m else None

    def _write_config(self, port: int, controller_port: int, clients_port: int, keystore: Path) -> None:
        template = project_root() / "deploy" / "kafka" / "server.properties.template"
        try:
            text = template.read_text()
        except OSError as exc:
            raise BrokerError(f"{template}: cannot read the broker config template: {exc}") from exc
        self.config_file.write_text(
            text.format(
                port=port,
                controller_port=controller_port,
                clients_port=clients_port,
                tls_keystore=keystore,
                data_dir=self.data_dir,
            )
        )
        shutil.copyfile(project_root() / "deploy" / "kafka" / "log4j2.properties", self.home / "log4j2.properties")

    # -- down ----------------------------------------------------------------------------
    def down(self, *, keep_data: bool = False, progress: Progress = _quiet, timeout_s: float = 30.0) -> bool:
        """Stop the broker by its pid (TERM, then KILL after timeout_s). Returns whether one was running."""
        state = self.state()
        if state:
            progress(f"stopping broker '{self.name}' (pid {state.pid}) …")
            self._terminate(state.pid, timeout_s)
            self.state_file.unlink(missing_ok=True)
        if not keep_data and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            progress(f"removed {self.data_dir}")
        return state is not None

    def _terminate(self, pid: int, timeout_s: float = 30.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while pid_alive(pid):
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def resolve_bootstrap(instance: str = "default") -> str:
    """Where to talk Kafka: KAFKA_BOOTSTRAP_SERVERS if set, else the running embedded broker."""
    external = external_bootstrap()
    if external:
        return external
    state = EmbeddedBroker(instance).state()
    if state is None:
        raise BrokerError("no Kafka broker: run `bosai broker up` (embedded) or set KAFKA_BOOTSTRAP_SERVERS")
    return state.bootstrap


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
    if state is None or not state.clients_bootstrap:
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
    name: str = "default", *, keep: bool = False, heap: str = "1g", progress: Progress = _quiet
) -> Iterator[BrokerLease]:
    """KAFKA_BOOTSTRAP_SERVERS if set, else the running embedded broker ``name``, else one started now —
    and stopped (by its pid) when the command ends, unless ``keep``."""
    external = external_bootstrap()
    if external:
        yield BrokerLease(external, started=False)
        return
    embedded = EmbeddedBroker(name)
    started = embedded.state() is None
    state = embedded.up(progress=progress, heap=heap)
    try:
        yield BrokerLease(state.bootstrap, started=started, broker=embedded)
    finally:
        if started and not keep:
            embedded.down(progress=progress)
        elif started:
            progress(f"broker '{name}' left running at {state.bootstrap}: stop it with `bosai broker down`")
