"""The schema registry beside the embedded broker: ``bosai registry serve`` as a process, started with the broker
and stopped with it by its pid (as Redpanda bundles one).

The registry keeps its port across restarts when it is free (``<broker home>/registry.port``), so the
``schema.registry.url`` of client configs already handed out stays valid; its log is
``<broker home>/registry.log``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from streams.platform.kafka_dist import BrokerError
from streams.platform.kafka_node import BrokerState, free_port, pid_alive, terminate


def _previous_port(home: Path) -> int | None:
    try:
        return int((home / "registry.port").read_text().strip())
    except (OSError, ValueError):
        return None


def is_registry(pid: int, home: Path) -> bool:
    """Whether ``pid`` is the registry this broker home started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"registry" in cmdline and b"serve" in cmdline and str(home).encode() in b" ".join(cmdline)


def start_registry(home: Path, *, bind: str, public_host: str, timeout_s: float = 60.0) -> tuple[int, str]:
    """Start ``bosai registry serve`` for this broker; its (pid, URL as clients reach it) once it answers."""
    port = free_port(_previous_port(home))
    (home / "registry.port").write_text(f"{port}\n")
    command = [sys.executable, "-m", "streams.cli", "registry", "serve", "--host", bind, "--port", str(port)]
    command += ["--home-tag", str(home)]
    with open(home / "registry.log", "ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    local = f"http://{'127.0.0.1' if bind in ('0.0.0.0', '::') else bind}:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (home / "registry.log").read_text(errors="replace").splitlines()[-10:]
            raise BrokerError(f"the schema registry exited with code {proc.returncode}:\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(f"{local}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return proc.pid, f"http://{public_host}:{port}"
        except OSError:
            pass
        time.sleep(0.2)
    terminate(proc.pid, 5)
    raise BrokerError(
        f"the schema registry did not answer on {local} within {timeout_s:.0f}s (log {home}/registry.log)"
    )


def stop_registry(pid: int, home: Path) -> None:
    if pid and pid_alive(pid) and is_registry(pid, home):
        terminate(pid, 10)


def with_registry(state: BrokerState, home: Path) -> BrokerState:
    """The broker's state with a registry started beside it (on every address when it has a public host)."""
    pid, url = start_registry(
        home, bind="0.0.0.0" if state.public_host else "127.0.0.1", public_host=state.public_host or "127.0.0.1"
    )
    return replace(state, registry_pid=pid, registry_url=url)
