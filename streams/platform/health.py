"""One HTTP endpoint per long-running process: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

Every long-running ``bosai`` command serves it on ``--metrics-port`` (``BOSAI_METRICS_PORT`` in the image), so
compose healthchecks, the image's HEALTHCHECK, Kubernetes probes and Prometheus all use the same port:

* ``/healthz`` — **liveness**: the process's event loop is turning. A process that runs an event loop starts
  :func:`heartbeat` on it; the endpoint (on its own thread) answers 503 when the last beat is older than
  ``stale_after_s`` (a frozen loop, a deadlock). Before the first beat it answers 200: the process is starting.
* ``/readyz`` — **readiness**: every check the process declared holds (e.g. ``kafka``: its clients started;
  ``assignment``: the worker received its partitions; ``alerts_loaded``: a door read its topics). A process
  declares a check with :meth:`Readiness.waiting` when it starts and marks it :meth:`Readiness.ok` when it holds.

Both answer a small JSON document saying what holds and what does not. The state is also exported as metrics
(``bosai_ready``, ``bosai_heartbeat_age_seconds``), so an alert can say which check of which process is failing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

STALE_AFTER_S = 30.0  # no heartbeat for this long: the loop is stuck (probes add their own failure threshold)
BEAT_EVERY_S = 2.0


@dataclass(frozen=True)
class Check:
    """One readiness check: whether it holds, and what it is waiting for or why it fails."""

    name: str
    ok: bool
    detail: str = ""


class Readiness:
    """The readiness checks a process declared (thread-safe: set on the event loop, read by the endpoint)."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def waiting(self, name: str, detail: str) -> None:
        """Declare a check that does not hold yet (what the process is waiting for)."""
        self._set(Check(name, False, detail))

    def ok(self, name: str, detail: str = "") -> None:
        self._set(Check(name, True, detail))

    def failed(self, name: str, detail: str) -> None:
        self._set(Check(name, False, detail))

    def _set(self, check: Check) -> None:
        with self._lock:
            self._checks[check.name] = check

    def checks(self) -> list[Check]:
        with self._lock:
            return sorted(self._checks.values(), key=lambda c: c.name)

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()


class Liveness:
    """The event loop's heartbeat: beaten by :func:`heartbeat`, judged by the endpoint's thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, stale_after_s: float = STALE_AFTER_S):
        self.clock = clock
        self.stale_after_s = stale_after_s
        self.last_beat: float | None = None

    def beat(self) -> None:
        self.last_beat = self.clock()

    def age(self) -> float | None:
        return None if self.last_beat is None else max(0.0, self.clock() - self.last_beat)

    def alive(self) -> bool:
        age = self.age()
        return age is None or age <= self.stale_after_s


READINESS = Readiness()
LIVENESS = Liveness()


async def heartbeat(every_s: float = BEAT_EVERY_S, liveness: Liveness = LIVENESS) -> None:
    """Beat until cancelled: run it as a task on the process's event loop."""
    while True:
        liveness.beat()
        await asyncio.sleep(every_s)


def start_heartbeat() -> asyncio.Task[None]:
    """The heartbeat as a task of the running loop (cancel it when the process ends)."""
    return asyncio.get_running_loop().create_task(heartbeat(), name="bosai-heartbeat")


def liveness_answer(liveness: Liveness = LIVENESS) -> tuple[int, dict[str, Any]]:
    age, alive = liveness.age(), liveness.alive()
    body: dict[str, Any] = {
        "status": "ok" if alive else "stalled",
        "heartbeat_age_s": None if age is None else round(age, 3),
    }
    return (200 if alive else 503), body


def readiness_answer(readiness: Readiness = READINESS, liveness: Liveness = LIVENESS) -> tuple[int, dict[str, Any]]:
    checks = readiness.checks()
    ready = liveness.alive() and all(c.ok for c in checks)
    results: dict[str, dict[str, object]] = {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}
    if not liveness.alive():
        results["heartbeat"] = {"ok": False, "detail": "the event loop has not turned"}
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": results}
    return (200 if ready else 503), body


class _HealthCollector:
    """``bosai_ready{check}`` and ``bosai_heartbeat_age_seconds``, built at scrape time."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        ready = GaugeMetricFamily("bosai_ready", "Readiness checks of this process (1 holds, 0 not).", labels=["check"])
        for check in READINESS.checks():
            ready.add_metric([check.name], 1.0 if check.ok else 0.0)
        age = GaugeMetricFamily(
            "bosai_heartbeat_age_seconds", "Seconds since the process's event loop last turned (liveness)."
        )
        seconds = LIVENESS.age()
        if seconds is not None:
            age.add_metric([], seconds)
        return [ready, age]


REGISTRY.register(_HealthCollector())


def wsgi_app(metrics_app: WsgiApp | None = None) -> WsgiApp:
    """/metrics (prometheus-client's app), /healthz and /readyz; anything else 404."""
    metrics = metrics_app or make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/healthz", "/readyz"):
            status, body = liveness_answer() if path == "/healthz" else readiness_answer()
            text = (json.dumps(body, ensure_ascii=False) + "\n").encode()
            reason = "OK" if status == 200 else "Service Unavailable"
            start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            return [text]
        if path in ("/metrics", "/"):
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics, /healthz or /readyz\n"]

    return app


def serve(port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics, /healthz and /readyz on a daemon thread; port 0 picks a free one. Returns the port."""
    from streams.platform import cert_expiry

    cert_expiry.register()
    server = make_server(host, port, wsgi_app(), ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="bosai-health", daemon=True)
    thread.start()
    return server.server_port
