"""`bosai bench soak --minutes N`: the demo's data in a loop through the whole hub, every process watched.

On a broker of its own (``soak``; the JVM with a fixed, pre-touched heap, as production brokers run), in a
fresh namespace (``replay-soak-<time>``), it starts what a prefecture runs: one worker per region pack, the
Atom/CAP feed (``bosai feed``), the residents' map (``bosai web``) and the webhook sink (``bosai sink run``,
three subscriptions to a local receiver that checks every signature), with clients reading the feeds (with
credentials), a CAP document, the map's documents and one live event stream the whole time. The input
(:mod:`benchmarks.soak_load`, a process of its own: "replay") loops over the demo's data, each loop moved a
week later in event time.

Every ``sample_s`` seconds it samples every process it started — workers, feed, web, sink, replay and the
broker's JVM(s) — for resident memory, open descriptors and threads, and the consumer lag of the workers'
and the sink's groups. Warm-up is the first loop: it ends when the first loop's input has been produced and
``WARMUP_SETTLE_S`` more seconds have passed (caches filled, the JVM's code compiled, every client connected).
In a run of ``LONG_RUN_S`` or more it lasts at least ``IDLE_SWEEP_S``: the connections opened at start-up and
idle since (bootstrap, metadata, topic set-up) are closed once, by the clients after 9 minutes (aiokafka's
``connections_max_idle_ms``) and by the broker after 10 (``connections.max.idle.ms``) — measured in the first
30-minute soak: every worker 2-3 descriptors fewer at 542 s, the broker 9 fewer by 602 s, flat afterwards.
The verdict, after warm-up: resident memory grows less than 5 % per process (the mean of the last three
samples against the mean of the three at the end of warm-up), descriptors stay within ±5 of the warm-up
value, lag does not grow (the highest lag of the second half at most the first half's plus one sample's
input) and is zero within a minute of the last input; and the hub is right: every loop's alerts are the first
loop's moved by its shift (ids, sequences, message types, levels, municipalities), every alert event of the
subscribed municipalities reached its webhook, and no reader got an error. Non-zero exit when any fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.soak_load import loop_seconds
from benchmarks.soak_watch import LagProbe, ProcSample, Readers, WebhookReceiver, process_sample
from streams.delivery.sink import routes_for
from streams.delivery.subscriptions import load_subscriptions
from streams.hub.processes import WorkerProcess
from streams.hub.worker import app_id_for
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform.access_file import default_access_path, load_access
from streams.platform.kafka_admin import apply_topics, issue_credential
from streams.platform.kafka_node import free_port
from streams.platform.secret_files import write_secret
from streams.platform.settings import project_root
from streams.platform.topic_catalog import load_default_catalog
from streams.publicmap.process import WebProcess
from streams.publicmap.server import WebSettings

Progress = Callable[[str], None]
DAY_MS = 86_400_000
WARMUP_SETTLE_S = 15.0
IDLE_SWEEP_S = 660.0  # after the clients' (540 s) and the broker's (600 s) first close of idle connections
LONG_RUN_S = 1200.0  # runs this long (or longer) warm up past IDLE_SWEEP_S
RSS_GROWTH_LIMIT = 0.05
FD_BAND = 5
DRAIN_LIMIT_S = 60.0
FEED_USERS = ("public", "pref-tochigi", "muni-09201")
SUBSCRIPTIONS = (
    ("soak-utsunomiya", "09201", "json"),
    ("soak-mooka", "09209", "cap"),
    ("soak-odawara", "14206", "json"),
)


@dataclass
class Sample:
    t: float  # seconds since the input started
    loops_done: int
    procs: dict[str, ProcSample | None]
    lag: dict[str, int]
    committed: dict[str, int] = field(default_factory=dict)  # per group, the sum of its committed offsets


@dataclass
class Soak:
    """What one soak started and saw."""

    bootstrap: str
    admin_bootstrap: str
    clients: tuple[str, Path]  # the authenticated listener and its CA, for the feed's logins
    broker_pids: dict[str, int]
    work: Path
    prefix: str = field(default_factory=lambda: time.strftime("replay-soak-%Y%m%d%H%M%S"))
    packs: list[RegionPack] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # the input's loop events
    started: float = 0.0
    run_s: float = 0.0  # how long the input is to loop (--minutes)

    def loops_done(self) -> int:
        return sum(1 for e in self.events if e["event"] == "loop_done")

    def warmup_end(self) -> float | None:
        """Seconds from the start: the first loop and a settle, and in a long run the first idle sweep too."""
        first = next((e["t"] for e in self.events if e["event"] == "loop_done"), None)
        if first is None:
            return None
        return max(first - self.started + WARMUP_SETTLE_S, IDLE_SWEEP_S if self.run_s >= LONG_RUN_S else 0.0)


# -- the processes ------------------------------------------------------------------------------------


class Children:
    """Every process the soak starts, stopped by its pid however the soak ends."""

    def __init__(self, soak: Soak):
        self.soak = soak
        self.workers: dict[str, WorkerProcess] = {}
        self.web: WebProcess | None = None
        self.others: dict[str, subprocess.Popen] = {}
        self.logs = soak.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _popen(self, name: str, args: list[str], env: dict, **options: object) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", *args], env=env, stderr=log, stdin=subprocess.DEVNULL, **options
            )
        self.others[name] = proc
        self.soak.pids[name] = proc.pid
        return proc

    def start_hub(self, subscriptions_file: Path, feed_port: int, web_port: int) -> None:
        soak, env = self.soak, dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.soak.bootstrap, PYTHONUNBUFFERED="1")
        regions = [arg for p in soak.packs for arg in ("--region", str(p.path))]
        for pack in soak.packs:
            worker = WorkerProcess(pack.path, soak.prefix, soak.bootstrap, self.logs / f"worker-{pack.name}.log")
            worker.start()
            self.workers[f"worker-{pack.name}"] = worker
            soak.pids[f"worker-{pack.name}"] = worker.pid
        feed_env = dict(env, BOSAI_CLIENTS_BOOTSTRAP=soak.clients[0], BOSAI_CA_FILE=str(soak.clients[1]))
        feed = self._popen(
            "feed",
            ["streams.cli", "feed", *regions, "--topic-prefix", soak.prefix, "--port", str(feed_port)],
            feed_env,
            stdout=subprocess.DEVNULL,
        )
        self._popen(
            "sink",
            [
                "streams.cli",
                "sink",
                "run",
                "--config",
                str(subscriptions_file),
                *regions,
                "--topic-prefix",
                soak.prefix,
            ],
            env,
            stdout=subprocess.DEVNULL,
        )
        settings = WebSettings(pack_dirs=[str(p.path) for p in soak.packs], topic_prefix=soak.prefix, port=web_port)
        self.web = WebProcess(settings, soak.bootstrap, self.logs / "web.log")
        self.web.start()  # returns once the map answers
        soak.pids["web"] = self.web.pid
        self._await_answer("feed", feed, f"http://127.0.0.1:{feed_port}/healthz")

    def _await_answer(self, name: str, proc: subprocess.Popen, url: str, timeout_s: float = 60.0) -> None:
        """Wait until a child answers ``url`` (its readers must not count its start-up as errors)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) at start; see {self.logs / (name + '.log')}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:  # URLError is one: not listening yet
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {self.logs / (name + '.log')}")

    def start_input(self, loops: int, speed: float) -> subprocess.Popen:
        soak = self.soak
        regions = [arg for p in soak.packs for arg in ("--region", str(p.path))]
        args = [
            "benchmarks.soak_load",
            "--bootstrap",
            soak.bootstrap,
            "--prefix",
            soak.prefix,
            *regions,
            "--loops",
            str(loops),
            "--speed",
            str(speed),
        ]
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=soak.bootstrap, PYTHONPATH=str(project_root()))
        return self._popen("replay", args, env, stdout=subprocess.PIPE, cwd=project_root())

    def dead(self) -> list[str]:
        """The processes that exited while they should run (the input may finish)."""
        gone = [name for name, worker in self.workers.items() if not worker.alive()]
        gone += [name for name, p in self.others.items() if name != "replay" and p.poll() is not None]
        return gone + (["web"] if self.web is not None and self.web.proc.poll() is not None else [])

    def stop(self) -> None:
        for proc in self.others.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for worker in self.workers.values():
            worker.stop()
        if self.web is not None:
            self.web.stop()
        for proc in self.others.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _events(stream: object, into: queue.Queue) -> None:
    for line in stream:
        try:
            into.put(json.loads(line))
        except ValueError:
            continue


# -- set-up -------------------------------------------------------------------------------------------


def _prepare(soak: Soak, progress: Progress) -> tuple[Path, dict[str, str], str]:
    """Topics, the feed's credentials, the subscriptions file (secret in a 0600 file) and its secret."""
    catalog = load_default_catalog(soak.prefix)
    asyncio.run(apply_topics(soak.admin_bootstrap, expand(catalog, [p.topics_input() for p in soak.packs])))
    policy = load_access(default_access_path())
    passwords = {
        user: asyncio.run(issue_credential(soak.admin_bootstrap, policy.principal(user))) for user in FEED_USERS
    }
    secret = secrets.token_urlsafe(32)
    secret_file = write_secret(soak.work / "webhook.secret", secret)
    return secret_file, passwords, secret


def _subscriptions(soak: Soak, secret_file: Path, receiver_port: int) -> Path:
    lines = [
        "version: 1",
        "defaults:",
        "  retry: {max_attempts: 4, initial_backoff_s: 0.2, max_backoff_s: 2}",
        "subscriptions:",
    ]
    for sub_id, code, fmt in SUBSCRIPTIONS:
        lines.append(
            f'  - {{id: {sub_id}, municipality: "{code}", format: {fmt}, secret_file: "{secret_file}", '
            f'url: "http://127.0.0.1:{receiver_port}/hooks/{sub_id}"}}'
        )
    path = soak.work / "subscriptions.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _lag_groups(soak: Soak, subscriptions_file: Path) -> dict[str, list[str]]:
    catalog = load_default_catalog(soak.prefix)
    groups = {}
    for pack in soak.packs:
        topics = HubTopics.for_region(catalog, pack)
        groups[app_id_for(soak.prefix, pack.name)] = [topics.raw, topics.official]
    for route in routes_for(load_subscriptions(subscriptions_file, soak.packs), soak.packs, catalog):
        groups[f"bosai-sink-{route.subscription.id}"] = list(route.topics)
    return groups


# -- the run ------------------------------------------------------------------------------------------


async def _watch(
    soak: Soak,
    children: Children,
    input_proc: subprocess.Popen,
    probe: LagProbe,
    *,
    sample_s: float,
    progress: Progress,
) -> None:
    """Sample until the input has finished and everything is consumed (or the drain limit passes)."""
    events: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_events, args=(input_proc.stdout, events), daemon=True)
    reader.start()
    finished_at, last_said = None, 0.0
    while True:
        tick = time.monotonic()
        if input_proc.poll() is not None:
            reader.join(timeout=5)  # its last lines (the last loop_done, finished) are read before they count
        while not events.empty():
            soak.events.append(events.get())
        procs = {name: process_sample(pid) for name, pid in {**soak.pids, **soak.broker_pids}.items()}
        lag = await probe.lag()
        soak.samples.append(Sample(time.time() - soak.started, soak.loops_done(), procs, lag, probe.committed))
        if children.dead():
            raise RuntimeError(
                f"process(es) exited during the soak: {', '.join(children.dead())} (logs in {children.logs})"
            )
        if input_proc.poll() is not None and finished_at is None:
            if input_proc.returncode != 0:
                raise RuntimeError(f"the input process failed ({input_proc.returncode}); see {children.logs}")
            finished_at = time.monotonic()
        if finished_at is not None and (not any(lag.values()) or time.monotonic() - finished_at > DRAIN_LIMIT_S):
            return
        if time.monotonic() - last_said > 30:
            last_said = time.monotonic()
            rss = sum(p.rss_kb for p in procs.values() if p) / 1024
            progress(
                f"soak t={soak.samples[-1].t:5.0f}s loops {soak.loops_done()}: RSS of all {rss:,.0f} MB, "
                f"lag {sum(lag.values())}"
            )
        await asyncio.sleep(max(0.0, sample_s - (time.monotonic() - tick)))


async def _run_async(
    soak: Soak,
    children: Children,
    secret: str,
    passwords: dict[str, str],
    subscriptions: Path,
    ports: dict[str, int],
    *,
    loops: int,
    speed: float,
    sample_s: float,
    progress: Progress,
) -> dict:
    receiver = WebhookReceiver(secret)
    await receiver.start(ports["receiver"])
    readers = Readers(f"http://127.0.0.1:{ports['feed']}", f"http://127.0.0.1:{ports['web']}/", passwords)
    probe = LagProbe(soak.bootstrap, soak.admin_bootstrap, _lag_groups(soak, subscriptions))
    await probe.start()
    try:
        readers.start()
        soak.started = time.time()
        input_proc = children.start_input(loops, speed)
        await _watch(soak, children, input_proc, probe, sample_s=sample_s, progress=progress)
        await asyncio.sleep(2 * readers.interval_s)  # the readers see the end too
    finally:
        await readers.stop()
        await probe.stop()
        await receiver.stop()
    return {
        "deliveries": receiver.deliveries,
        "refused": receiver.refused,
        "requests": readers.requests,
        "errors": dict(readers.errors),
        "live_events": readers.live_events,
        "live_reconnects": readers.live_reconnects,
    }


def run(
    soak: Soak, pack_dirs: Sequence[Path], *, minutes: float, speed: float, sample_s: float, progress: Progress
) -> dict:
    """The whole soak; returns what the report needs (see :mod:`benchmarks.soak_report`)."""
    from benchmarks.soak_report import expected_deliveries, loop_signatures

    soak.packs = [load_pack(d) for d in pack_dirs]
    loops = max(2, int(minutes * 60 // loop_seconds(speed)))
    soak.run_s = loops * loop_seconds(speed)
    secret_file, passwords, secret = _prepare(soak, progress)
    ports = {"receiver": free_port(), "feed": free_port(), "web": free_port()}
    subscriptions = _subscriptions(soak, secret_file, ports["receiver"])
    children = Children(soak)
    progress(
        f"soak: {loops} loops of {loop_seconds(speed):.0f} s (the 5-day demo window at {speed:,.0f}x), "
        f"namespace {soak.prefix}, logs in {children.logs}"
    )
    try:
        children.start_hub(subscriptions, ports["feed"], ports["web"])
        clients = asyncio.run(
            _run_async(
                soak,
                children,
                secret,
                passwords,
                subscriptions,
                ports,
                loops=loops,
                speed=speed,
                sample_s=sample_s,
                progress=progress,
            )
        )
    finally:
        children.stop()
    return {
        "loops": loops,
        "speed": speed,
        "loop_s": loop_seconds(speed),
        "clients": clients,
        "signatures": asyncio.run(loop_signatures(soak)),
        "expected_deliveries": asyncio.run(expected_deliveries(soak, subscriptions)),
    }
