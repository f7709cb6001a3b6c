"""Fault drills on a real three-node cluster (強靱なBCP): workers killed, frozen and replaced, a broker and
the controller quorum's leader killed mid-stream. Each drill compares the alerts with a run without
faults (same ids, sequences and content, nothing missing, nothing delivered twice to a read_committed
consumer) and bounds how long the alert stream stalls: ≤ 20 s for a worker, ≤ 40 s for a broker.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

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
