"""Fault drills on a real three-node cluster (強靱なBCP): workers killed, frozen and replaced, a broker and
the controller quorum's leader killed mid-stream. Each drill compares the alerts with a run without
faults (same ids, sequences and content, nothing missing, nothing delivered twice to a read_committed
consumer) and bounds how long the alert stream stalls: ≤ 20 s for a worker, ≤ 40 s for a broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from streams.hub.batch_loop import FENCED_EXIT
from streams.packs.region_pack import load_pack
from streams.platform.broker import EmbeddedBroker
from streams.platform.kafka_dist import kafka_version
from streams.platform.settings import cache_dir
from tests.support.drill_harness import STALLS, Drill, readings

WORKER_STALL_S = 20.0
BROKER_STALL_S = 40.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three KRaft nodes (a controller quorum of three), shared by the drills; stopped by pid at the end."""
    cache = tmp_path_factory.mktemp("drills-cache")
    shared_libs = cache_dir() / f"kafka-{kafka_version()}"
    if shared_libs.exists():
        os.symlink(shared_libs, cache / shared_libs.name)  # the CLI below finds the jars in its cache
    broker = EmbeddedBroker(f"drills-{os.getpid()}", root=cache / "brokers")
    state = broker.up(brokers=3, heap="384m", progress=lambda m: print(f"[cluster] {m}"))
    try:
        yield broker, state.bootstrap, cache
    finally:
        broker.down(timeout_s=10)


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture()
def drill(cluster, tochigi, unique, tmp_path):
    made: list[Drill] = []

    def make(count: int, rate: float = 100.0) -> Drill:
        made.append(Drill(cluster[1], tochigi, f"drill{unique}", tmp_path, readings(tochigi, count), rate=rate))
        return made[-1]

    yield make
    for run in made:
        run.cleanup()


def _record(name: str, drill: Drill) -> None:
    STALLS[name] = list(drill.stalls)  # printed in the session's summary (tests/conftest.py)
    print(f"[drills] {name}: stalls {[round(s, 1) for s in drill.stalls]}")


def _bosai(cluster, *args: str) -> subprocess.CompletedProcess:
    broker, _, cache = cluster
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["BOSAI_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "broker", *args, "--name", broker.name],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_broker_status_json_tells_the_nodes_their_ports_and_the_controller_leader(cluster):
    broker, bootstrap, _ = cluster

    shown = _bosai(cluster, "status", "--json")

    status = json.loads(shown.stdout)
    assert shown.returncode == 0, shown.stderr
    assert status["bootstrap"] == bootstrap and status["brokers_answering"] == 3
    assert [n["id"] for n in status["nodes"]] == [1, 2, 3] and all(n["up"] for n in status["nodes"])
    ports = [p for n in status["nodes"] for p in n["ports"].values()]
    assert len(set(ports)) == 9
    assert status["controller_leader"] == broker.quorum_leader() and status["controller_leader"] in (1, 2, 3)


def test_a_worker_killed_twenty_times_at_random_moments_loses_and_repeats_nothing(drill):
    rng = random.Random(20261124)
    run = drill(count=14_000, rate=100.0)
    worker = run.worker(0)
    run.start()
    run.flowing()
    for _ in range(20):
        run.random_pause(rng, 0.5, 2.5)
        killed_at = time.monotonic()
        worker.kill()
        worker = run.replace_worker(worker)
        run.stall_after(killed_at)
    run.finish()
    _record("worker kill -9 (x20)", run)

    run.check_exactly_once()
    assert max(run.stalls) <= WORKER_STALL_S


def test_a_frozen_worker_replaced_by_another_cannot_commit_when_it_wakes_and_exits(drill):
    run = drill(count=3500, rate=90.0)
    zombie = run.worker(0, supervised=False)
    run.start()
    run.flowing()
    frozen_at = time.monotonic()
    os.kill(zombie.pid, signal.SIGSTOP)
    time.sleep(8.0)  # past its 6 s session timeout
    run.worker(1)
    run.stall_after(frozen_at)
    time.sleep(3.0)
    os.kill(zombie.pid, signal.SIGCONT)
    zombie.proc.wait(timeout=30)
    run.finish()
    _record("zombie replaced", run)

    assert zombie.proc.returncode == FENCED_EXIT
    run.check_exactly_once()
    assert max(run.stalls) <= WORKER_STALL_S


def test_one_of_two_workers_killed_hands_its_partitions_to_the_other(drill):
    run = drill(count=3500, rate=90.0)
    run.worker(0)
    second = run.worker(1, supervised=False)
    run.start()
    time.sleep(8.0)  # both own partitions
    killed_at = time.monotonic()
    second.kill()
    run.stall_after(killed_at)
    run.finish()
    _record("one of two workers killed", run)

    run.check_exactly_once()
    assert max(run.stalls) <= WORKER_STALL_S


def _new_leader(broker, old: int, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (leader := broker.quorum_leader()) in (old, None) and time.monotonic() < deadline:
        time.sleep(0.5)
    return leader


def _node_to_kill(broker, *, leader: bool) -> int:
    status = broker.status()
    chosen = status["controller_leader"]
    return chosen if leader else next(n["id"] for n in status["nodes"] if n["id"] != chosen)


@pytest.mark.parametrize("leader", [False, True], ids=["a broker", "the controller quorum leader"])
def test_a_killed_node_is_survived_and_restarted_without_losing_or_repeating_anything(cluster, drill, leader):
    broker = cluster[0]
    run = drill(count=3500, rate=90.0)
    run.worker(0)
    run.start()
    run.flowing()
    time.sleep(3.0)
    node = _node_to_kill(broker, leader=leader)
    killed_at = time.monotonic()
    killed = _bosai(cluster, "kill", "--node", str(node))
    assert killed.returncode == 0, killed.stderr
    run.stall_after(killed_at, timeout_s=120)
    assert _new_leader(broker, node) != node
    time.sleep(5.0)
    started = _bosai(cluster, "start", "--node", str(node))
    assert started.returncode == 0, started.stderr
    run.finish(timeout_s=240)
    _record(f"{'controller leader' if leader else 'broker'} node {node} killed", run)

    run.check_exactly_once()
    assert max(run.stalls) <= BROKER_STALL_S


# -- drills through the commands users run: `bosai replay` (and `bosai tail`) as subprocesses -----------------

REPLAY_CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
REPLAY_SLICE = ("--from", "2023-09-04", "--to", "2023-09-05")  # 437 readings of 19 stations, the heavy rain's day
REPLAY_SPEED = "3600"  # 24 h of event time in 24 s: the faults land while readings still arrive
COMMAND_DRILL_S = 60.0  # each command drill's wall-time budget (CI's 20 min for the whole suite)


def _cli_env(cluster) -> dict[str, str]:
    _, bootstrap, cache = cluster
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, BOSAI_CACHE_DIR=str(cache), PYTHONUNBUFFERED="1")
    env.pop("BOSAI_KAFKA_PATIENCE_S", None)  # the default patience, as a user gets it
    return env


class Command:
    """A `bosai` command run as a user runs it, its stderr read line by line (with when each line came)."""

    def __init__(self, cluster, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            env={**_cli_env(cluster), **(env or {})},
            cwd=Path(__file__).resolve().parents[2],  # the checkout: regions/ and data/ as a user names them
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=lambda: self.out.extend(self.proc.stdout or ()), daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def wait_for(self, pattern: str, timeout_s: float = 60.0, after: int = 0) -> re.Match:
        """The first stderr line (from line ``after`` on) matching the pattern."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, line in self.lines[after:]:
                if found := re.search(pattern, line):
                    return found
            assert self.proc.poll() is None or self._reader.is_alive(), self.stderr()
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s:.0f} s:\n{self.stderr()}")

    def finish(self, timeout_s: float = 120.0) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:  # by its pid: Ctrl-C first, so that it stops its workers by theirs
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._reader.join(5)
        self._out_reader.join(5)
        return self.proc.returncode, "".join(self.out)

    def stderr(self) -> str:
        lines = [line for _, line in self.lines]
        return "\n".join(lines if len(lines) <= 60 else [*lines[:20], "…", *lines[-40:]])


class Progress(threading.Thread):
    """The replay's consumer group's committed offsets, sampled: when did processing resume after a fault."""

    def __init__(self, bootstrap: str, group: str):
        super().__init__(daemon=True)
        self.bootstrap, self.group = bootstrap, group
        self.samples: list[tuple[float, int]] = []
        self.baselines: dict[float, int | None] = {}
        self.stopping = threading.Event()

    def committed(self) -> int | None:
        from streams.platform import kafka

        try:
            return sum(asyncio.run(kafka.committed_offsets(self.bootstrap, self.group)).values())
        except Exception:  # noqa: BLE001 - a sample lost during the outage; the next one tells
            return None

    def run(self) -> None:
        while not self.stopping.is_set():
            asked_at = time.monotonic()  # a sample shows what was committed by the time it was asked, at least
            if (committed := self.committed()) is not None:
                self.samples.append((asked_at, committed))
            self.stopping.wait(0.25)

    def fault(self) -> float:
        """The fault happens now: what the group has committed by the time it is done (a killed worker commits
        nothing more) is the baseline its stall is measured from."""
        fault_at = time.monotonic()
        self.baselines[fault_at] = None
        return fault_at

    def faulted(self, fault_at: float) -> None:
        self.baselines[fault_at] = self.committed()

    def stall_after(self, fault_at: float) -> float | None:
        """Seconds from the fault until the group committed more than it had by then (None: it never did)."""
        before = self.baselines.get(fault_at)
        if before is None:
            before = max((c for t, c in self.samples if t <= fault_at), default=0)
        return next((t - fault_at for t, c in self.samples if t > fault_at and c > before), None)


def _working(progress: Progress, since: float, replay: Command, timeout_s: float = 40.0) -> None:
    """Wait until the replay's workers commit (again) after ``since``."""
    deadline = time.monotonic() + timeout_s
    while progress.stall_after(since) is None:
        assert time.monotonic() < deadline and replay.proc.poll() is None, replay.stderr()
        time.sleep(0.1)


def _replay_args(alerts_out, prefix: str, speed: str) -> list[str]:
    return [
        "replay",
        "--region",
        "regions/tochigi",
        "--csv",
        REPLAY_CSV,
        *REPLAY_SLICE,
        "--speed",
        speed,
        "--alerts-out",
        str(alerts_out),
        "--topic-prefix",
        prefix,
        "--timeout",
        "120",
    ]


def _alerts(path) -> list[dict]:
    """The alert events of --alerts-out, comparable across namespaces (the topics without their prefix)."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{**a, "topics": sorted(t.split(".", 1)[1] for t in a["topics"])} for a in lines]


@pytest.fixture(scope="module")
def undisturbed(cluster, project_root, tmp_path_factory):
    """The same slice replayed without faults (as fast as it goes): the alerts every drill must equal."""
    out = tmp_path_factory.mktemp("undisturbed") / "alerts.jsonl"
    started = time.monotonic()
    replay = Command(cluster, *_replay_args(out, f"calm{os.getpid()}", "max"))
    code, stdout = replay.finish()
    assert code == 0, replay.stderr()
    alerts = _alerts(out)
    print(f"[drills] undisturbed replay: {time.monotonic() - started:.1f} s, {len(alerts)} alert events")
    assert len(alerts) > 10 and any(a["level"] == "very_heavy" for a in alerts)
    return alerts


def _command_drill(name: str, started: float, stalls: list[float]) -> float:
    wall = time.monotonic() - started
    STALLS[name] = stalls  # here: from the fault until the replay's group commits again
    print(f"[drills] {name}: wall {wall:.1f} s, stalls {[round(s, 1) for s in stalls]}")
    return wall


@pytest.mark.parametrize("leader", [False, True], ids=["a broker", "the controller quorum leader"])
def test_bosai_replay_rides_out_a_broker_node_killed_and_restarted_with_the_same_alerts(
    cluster, undisturbed, tmp_path, unique, leader
):
    broker, bootstrap, _ = cluster
    started = time.monotonic()
    prefix = f"nodeloss{unique}"
    progress = Progress(bootstrap, f"{prefix}-tochigi-hub")
    replay = Command(cluster, *_replay_args(tmp_path / "alerts.jsonl", prefix, REPLAY_SPEED))
    try:
        replay.wait_for(r"started 1 worker\(s\)")
        progress.start()
        _working(progress, started, replay)
        time.sleep(1.0)
        node = _node_to_kill(broker, leader=leader)
        killed_at = progress.fault()
        killed = _bosai(cluster, "kill", "--node", str(node))
        assert killed.returncode == 0, killed.stderr
        progress.faulted(killed_at)
        time.sleep(6.0)
        restarted = _bosai(cluster, "start", "--node", str(node))
        assert restarted.returncode == 0, restarted.stderr
        code, stdout = replay.finish()
    finally:
        progress.stopping.set()
    stall = progress.stall_after(killed_at)
    what = "controller leader node" if leader else "broker node"
    wall = _command_drill(f"bosai replay, {what} {node} killed", started, [stall] if stall is not None else [])

    assert code == 0, replay.stderr()
    assert "Traceback" not in replay.stderr()
    assert _alerts(tmp_path / "alerts.jsonl") == undisturbed
    assert stall is not None and stall <= BROKER_STALL_S
    assert wall <= COMMAND_DRILL_S


def test_bosai_replay_restarts_its_worker_killed_twice_and_gives_the_same_alerts(
    cluster, undisturbed, tmp_path, unique
):
    _, bootstrap, _ = cluster
    started = time.monotonic()
    prefix = f"workerloss{unique}"
    progress = Progress(bootstrap, f"{prefix}-tochigi-hub")
    replay = Command(cluster, *_replay_args(tmp_path / "alerts.jsonl", prefix, REPLAY_SPEED))
    kills: list[float] = []
    try:
        pid = int(replay.wait_for(r"started 1 worker\(s\): pid (\d+)").group(1))
        progress.start()
        for _ in range(2):
            _working(progress, kills[-1] if kills else started, replay)  # kill it while it works
            time.sleep(1.0)
            lines_before = len(replay.lines)
            kills.append(progress.fault())
            os.kill(pid, signal.SIGKILL)
            progress.faulted(kills[-1])
            pid = int(replay.wait_for(r"worker tochigi-0 restarted \(pid (\d+)\)", 30, after=lines_before).group(1))
        code, stdout = replay.finish()
    finally:
        progress.stopping.set()
    stalls = [s for s in map(progress.stall_after, kills) if s is not None]
    wall = _command_drill("bosai replay, worker kill -9 (x2)", started, stalls)

    assert code == 0, replay.stderr()
    assert "Traceback" not in replay.stderr()
    assert sum("was killed by SIGKILL" in line for _, line in replay.lines) == 2
    assert _alerts(tmp_path / "alerts.jsonl") == undisturbed
    assert len(stalls) == 2 and max(stalls) <= WORKER_STALL_S
    assert wall <= COMMAND_DRILL_S


def test_bosai_tail_keeps_following_through_a_broker_node_killed_and_restarted(cluster, undisturbed, tmp_path, unique):
    broker, bootstrap, _ = cluster
    started = time.monotonic()
    prefix = f"tailloss{unique}"
    progress = Progress(bootstrap, f"{prefix}-tochigi-hub")
    replay = Command(cluster, *_replay_args(tmp_path / "alerts.jsonl", prefix, REPLAY_SPEED), "--keep-topics")
    follower = None
    try:
        replay.wait_for(r"started 1 worker\(s\)")  # its topics exist
        progress.start()
        _working(progress, started, replay)
        # every alert of the slice once (a repeat would leave one out), or 30 s without one
        expected = str(len(undisturbed))
        follower = Command(
            cluster,
            "tail",
            "--topic",
            f"{prefix}.tochigi.alerts",
            "--from-beginning",
            "--json",
            "--max",
            expected,
            "--timeout",
            "30",
        )
        node = _node_to_kill(broker, leader=False)
        killed_at = progress.fault()
        killed = _bosai(cluster, "kill", "--node", str(node))
        assert killed.returncode == 0, killed.stderr
        progress.faulted(killed_at)
        time.sleep(6.0)
        restarted = _bosai(cluster, "start", "--node", str(node))
        assert restarted.returncode == 0, restarted.stderr
        code, _ = replay.finish()
        assert code == 0, replay.stderr()
        tail_code, followed = follower.finish(timeout_s=60)
    finally:
        progress.stopping.set()
        if follower is not None and follower.proc.poll() is None:
            follower.finish(timeout_s=5)
        from streams.platform.kafka_admin import delete_namespace

        asyncio.run(delete_namespace(bootstrap, prefix, ["tochigi"]))
    stall = progress.stall_after(killed_at)
    wall = _command_drill(f"bosai tail, broker node {node} killed", started, [stall] if stall is not None else [])

    assert tail_code == 0, follower.stderr()
    assert "Traceback" not in follower.stderr()
    seen = [(m["value"]["alert_id"], m["value"]["sequence"]) for m in map(json.loads, followed.splitlines())]
    assert len(seen) == len(set(seen))  # nothing twice
    assert sorted(seen) == sorted((a["alert_id"], a["sequence"]) for a in undisturbed)  # nothing missing
    assert wall <= COMMAND_DRILL_S


# -- the long-running services users run: `bosai feed`, `bosai web`, `bosai sink run` through a node's loss ----

SERVICE_READY_S = 30.0  # each service answers /readyz within this after the node is back
WEBHOOK_SECRET = "drill-secret-not-a-real-one"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, auth: tuple[str, str] | None = None, timeout_s: float = 3.0) -> tuple[int, bytes]:
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Probe(threading.Thread):
    """A service's /readyz, asked every 0.25 s: when it answered ready, when not."""

    def __init__(self, name: str, url: str):
        super().__init__(daemon=True)
        self.name, self.url = name, url
        self.samples: list[tuple[float, bool]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            asked_at = time.monotonic()
            self.samples.append((asked_at, _get(self.url, timeout_s=2.0)[0] == 200))
            self.stopping.wait(0.25)

    def ready_since(self, after: float) -> float | None:
        """When it last became ready (and stayed ready) after ``after``; None: not ready at the end."""
        later = [(t, ok) for t, ok in self.samples if t >= after]
        if not later or not later[-1][1]:
            return None
        since = later[-1][0]
        for t, ok in reversed(later):
            if not ok:
                break
            since = t
        return since

    def answered_after(self, after: float, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(ok for t, ok in self.samples if t >= after):
                return next(t for t, ok in self.samples if t >= after and ok)
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: /readyz did not answer ready within {timeout_s:.0f} s")


class WebhookReceiver(threading.Thread):
    """A municipality's system: checks each signature, applies each (alert id, sequence) once, acks repeats."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from streams.delivery.webhooks import verify

        receiver = self
        self.applied: dict[tuple[str, int], float] = {}
        self.arrivals: list[float] = []
        self.duplicates = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(WEBHOOK_SECRET, self.headers["X-Bosai-Timestamp"], body, self.headers["X-Bosai-Signature"])
                with receiver.lock:
                    if not ok:
                        receiver.bad_signatures += 1
                    else:
                        key = (self.headers["X-Bosai-Alert-Id"], int(self.headers["X-Bosai-Sequence"]))
                        receiver.arrivals.append(time.monotonic())
                        if key in receiver.applied:
                            receiver.duplicates += 1
                        else:
                            receiver.applied[key] = time.monotonic()
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered_after(self, after: float) -> float | None:
        with self.lock:
            return next((t - after for t in self.arrivals if t > after), None)


class LiveStream(threading.Thread):
    """The map's live stream (Server-Sent Events), read as a browser does: when each event came."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.events: list[tuple[float, str]] = []

    def run(self) -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=120) as response:
                for raw in response:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if line.startswith("event: "):
                        self.events.append((time.monotonic(), line.removeprefix("event: ")))
        except OSError:
            pass  # the service stopped (or the stream was dropped: the test asks for the snapshot anyway)

    def event_after(self, after: float, kind: str = "alerts") -> float | None:
        return next((t - after for t, event in self.events if t > after and event == kind), None)


def _records(bootstrap: str, topics: list[str], schema: str) -> list[dict]:
    from streams.platform import kafka
    from streams.platform.avro import AvroCodec, default_store

    ends = asyncio.run(kafka.end_offsets(bootstrap, topics))
    messages = asyncio.run(kafka.read_range(bootstrap, {}, ends, timeout_s=30))
    codec = AvroCodec(default_store(), schema)
    return [codec.decode(m.value) for m in sorted(messages, key=lambda m: (m.topic, m.partition, m.offset))]


def _feed_identifiers(body: bytes) -> set[str]:
    return set(re.findall(r"/cap/([^\"<]+)\.xml", body.decode("utf-8")))


class FeedReader(threading.Thread):
    """A municipality's system polling the prefecture feed every 0.5 s: when each answer came, what it listed."""

    def __init__(self, url: str, auth: tuple[str, str]):
        super().__init__(daemon=True)
        self.url, self.auth = url, auth
        self.answers: list[tuple[float, int, frozenset[str]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            asked_at = time.monotonic()
            status, body = _get(self.url, self.auth)
            self.answers.append((asked_at, status, frozenset(_feed_identifiers(body) if status == 200 else ())))
            self.stopping.wait(0.5)

    def new_entry_after(self, after: float) -> float | None:
        """Seconds from ``after`` until the feed listed an entry it had not listed by then."""
        before = next((ids for t, status, ids in reversed(self.answers) if t <= after and status == 200), frozenset())
        return next(
            (t - after for t, status, ids in self.answers if t > after and status == 200 and ids - before), None
        )

    def refused_after(self, after: float) -> int:
        return sum(1 for t, status, _ in self.answers if t > after and status != 200)


def _service_alive(name: str, service: Command) -> None:
    assert service.proc.poll() is None, f"{name} ended ({service.proc.returncode}):\n{service.stderr()}"


def test_feed_web_and_sink_ride_out_a_broker_node_killed_and_restarted(cluster, undisturbed, tochigi, tmp_path, unique):
    from streams.delivery.atom import CurrentAlerts, feed_entries
    from streams.kernel.topics import HubTopics
    from streams.platform.access_file import default_access_path, load_access
    from streams.platform.avro import ALERT, ENRICHED
    from streams.platform.kafka_admin import delete_namespace, issue_credential, revoke_credential
    from streams.platform.topic_catalog import load_default_catalog
    from streams.publicmap.view import PublicMap, RegionView

    broker, bootstrap, _ = cluster
    state = broker.state()
    started = time.monotonic()
    prefix = f"svcloss{unique}"
    topics = HubTopics.for_region(load_default_catalog(prefix), tochigi)
    policy = load_access(default_access_path())
    password = asyncio.run(issue_credential(bootstrap, policy.principal("pref-tochigi")))
    receiver = WebhookReceiver()
    receiver.start()
    subscriptions = tmp_path / "subscriptions.yaml"
    subscriptions.write_text(
        "version: 1\nsubscriptions:\n  - id: utsunomiya-drill\n    municipality: '09201'\n"
        f"    url: http://127.0.0.1:{receiver.port}/bosai\n    secret_env: DRILL_WEBHOOK_SECRET\n    format: json\n"
        "    retry: {max_attempts: 20, initial_backoff_s: 0.2, max_backoff_s: 2, timeout_s: 5}\n",
        encoding="utf-8",
    )
    ports = {name: (_free_port(), _free_port()) for name in ("feed", "web", "sink")}  # (service, metrics)
    region = ("--region", "regions/tochigi", "--topic-prefix", prefix)
    progress = Progress(bootstrap, f"{prefix}-tochigi-hub")
    replay = Command(cluster, *_replay_args(tmp_path / "alerts.jsonl", prefix, REPLAY_SPEED), "--keep-topics")
    services: dict[str, Command] = {}
    probes: dict[str, Probe] = {}
    stream: LiveStream | None = None
    reader: FeedReader | None = None
    unstoppable: list[str] = []
    try:
        replay.wait_for(r"started 1 worker\(s\)")  # its topics exist
        services["feed"] = Command(
            cluster,
            "feed",
            *region,
            "--port",
            str(ports["feed"][0]),
            "--auth-cache",
            "5",
            "--metrics-port",
            str(ports["feed"][1]),
            env={"BOSAI_CLIENTS_BOOTSTRAP": state.clients_bootstrap, "BOSAI_CA_FILE": str(state.ca_file)},
        )
        services["web"] = Command(
            cluster, "web", *region, "--port", str(ports["web"][0]), "--metrics-port", str(ports["web"][1])
        )
        services["sink"] = Command(
            cluster,
            "sink",
            "run",
            "--config",
            str(subscriptions),
            *region,
            "--metrics-port",
            str(ports["sink"][1]),
            env={"DRILL_WEBHOOK_SECRET": WEBHOOK_SECRET},
        )
        for name, (_, metrics_port) in ports.items():
            probes[name] = Probe(name, f"http://127.0.0.1:{metrics_port}/readyz")
            probes[name].start()
        for name, probe in probes.items():
            probe.answered_after(started, 40)
            _service_alive(name, services[name])
        stream = LiveStream(f"http://127.0.0.1:{ports['web'][0]}/api/v1/events")
        stream.start()
        feed_url = f"http://127.0.0.1:{ports['feed'][0]}/feeds/prefecture/tochigi.atom"
        reader = FeedReader(feed_url, ("pref-tochigi", password))
        reader.start()
        progress.start()
        _working(progress, started, replay)
        node = _node_to_kill(broker, leader=False)
        killed_at = progress.fault()
        killed = _bosai(cluster, "kill", "--node", str(node))
        assert killed.returncode == 0, killed.stderr
        progress.faulted(killed_at)
        time.sleep(6.0)
        restarted = _bosai(cluster, "start", "--node", str(node))
        assert restarted.returncode == 0, restarted.stderr
        back_at = time.monotonic()
        for probe in probes.values():
            probe.answered_after(back_at, SERVICE_READY_S)
        code, _ = replay.finish()
        assert code == 0, replay.stderr()

        # what the replay wrote, read back: what each service must show
        alerts = _records(bootstrap, [topics.alerts], ALERT)
        current = CurrentAlerts()
        for record in alerts:
            current.apply(record)
        public = PublicMap([RegionView.of(tochigi)])
        public.apply(
            alerts=_records(bootstrap, [topics.public], ALERT),
            readings=_records(bootstrap, [topics.enriched], ENRICHED),
        )
        wanted_map = {(i["id"], i["sequence"]) for i in public.alert_items()}
        wanted_hooks = {(a["alert_id"], a["sequence"]) for a in undisturbed if "tochigi.alerts.09201" in a["topics"]}
        principal = policy.principal("pref-tochigi")
        deadline = time.monotonic() + 20
        while True:  # each service catches up with the end of the replay
            from streams.delivery.cap import cap_identifier

            wanted_feed = {
                cap_identifier(r["alert_id"], r["sequence"])
                for r in feed_entries(current, principal, region="tochigi", now_ms=int(time.time() * 1000))
            }
            status, body = _get(feed_url, ("pref-tochigi", password))
            served = _feed_identifiers(body) if status == 200 else set()
            _, snapshot = _get(f"http://127.0.0.1:{ports['web'][0]}/api/v1/snapshot.json")
            shown = {(i["id"], i["sequence"]) for i in json.loads(snapshot or b"{}").get("alerts", [])}
            with receiver.lock:
                hooked = set(receiver.applied)
            if (served, shown, hooked) == (wanted_feed, wanted_map, wanted_hooks) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for name, service in services.items():
            _service_alive(name, service)
    finally:
        progress.stopping.set()
        if reader is not None:
            reader.stopping.set()
        for probe in probes.values():
            probe.stopping.set()
            probe.join(5)  # its last sample before the service is stopped
        for name, service in services.items():  # Ctrl-C, by its pid; -9 if that does not end it
            if service.proc.poll() is None:
                service.proc.send_signal(signal.SIGINT)
            try:
                service.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                unstoppable.append(name)
                service.proc.kill()
                service.proc.wait()
            service.finish(timeout_s=5)
            print(f"[drills] {name} stderr:\n{service.stderr()}")
        if replay.proc.poll() is None:
            replay.finish(timeout_s=5)
        receiver.stop()
        asyncio.run(revoke_credential(bootstrap, "pref-tochigi"))
        asyncio.run(delete_namespace(bootstrap, prefix, ["tochigi"]))

    recovery = {}
    for name, probe in probes.items():
        since = probe.ready_since(killed_at)
        recovery[f"{name} ready"] = since - killed_at if since is not None else None
    recovery["sink delivers"] = receiver.delivered_after(killed_at)
    recovery["web streams"] = stream.event_after(killed_at) if stream else None
    recovery["feed lists new"] = reader.new_entry_after(killed_at) if reader else None
    stall = progress.stall_after(killed_at)
    wall = _command_drill(f"bosai feed, web, sink: broker node {node} killed", started, [stall] if stall else [])
    for what, seconds in recovery.items():  # from the kill: ready again, delivering again
        if seconds is not None:  # (the map sends no alerts event when its current alerts did not change)
            STALLS[f"bosai {what} (node {node} killed)"] = [seconds]
    print(f"[drills] services' recovery after the kill (s): { {k: v and round(v, 1) for k, v in recovery.items()} }")
    print(f"[drills] node back after {back_at - killed_at:.1f} s; the replay's stall {stall and round(stall, 1)} s")
    print(f"[drills] feed answers other than 200 after the kill: {reader.refused_after(killed_at) if reader else '?'}")
    print(f"[drills] webhooks: {len(receiver.applied)} applied, {receiver.duplicates} repeat(s) de-duplicated")

    for name, service in services.items():
        assert "Traceback" not in service.stderr(), f"{name}:\n{service.stderr()}"
    assert not unstoppable, {name: services[name].stderr() for name in unstoppable}  # each ends on Ctrl-C
    assert served == wanted_feed and wanted_feed, (sorted(wanted_feed - served), sorted(served - wanted_feed))
    assert shown == wanted_map, (sorted(wanted_map - shown), sorted(shown - wanted_map))
    assert hooked == wanted_hooks and wanted_hooks, sorted(wanted_hooks - hooked)  # nothing missing
    assert receiver.bad_signatures == 0
    for name in probes:
        ready = recovery[f"{name} ready"]
        assert ready is not None and ready - (back_at - killed_at) <= SERVICE_READY_S, (name, ready)
    assert wall <= COMMAND_DRILL_S
