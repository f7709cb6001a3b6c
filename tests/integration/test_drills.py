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

    def __init__(self, cluster, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            env=_cli_env(cluster),
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
