"""Supervised workers come back whatever ended them, after a growing pause, up to a limit; one replica's death
never stops the others; past the limit the supervision ends with exit 4 and says why."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from streams.hub.batch_loop import FENCED_EXIT, RESTART_EXIT
from streams.hub.processes import Supervisor, WorkersGaveUp, describe_exit
from streams.hub.restarts import RestartPolicy
from streams.kernel.errors import ExitCode


def test_the_pause_doubles_with_each_restart_inside_the_window_and_is_capped():
    policy = RestartPolicy(max_restarts=8, window_s=600, first_delay_s=0.5, max_delay_s=4.0)
    restarts: list[float] = []
    delays = []
    for now in range(0, 80, 10):
        delay = policy.next_delay(restarts, float(now))
        delays.append(delay)
        restarts.append(float(now))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_the_limit_is_so_many_restarts_within_the_window_and_old_ones_age_out():
    policy = RestartPolicy(max_restarts=5, window_s=600)
    five = [0.0, 10.0, 20.0, 30.0, 40.0]
    assert policy.next_delay(five, 100.0) is None  # a sixth exit within 10 min: give up
    assert policy.next_delay(five, 605.0) == 1.0 * 2**3  # the first aged out: four recent ones
    assert policy.next_delay([], 0.0) == 0.5
    assert policy.describe() == "5 restarts within 10 min"


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (RESTART_EXIT, "crash-only (75"),
        (FENCED_EXIT, "fenced (76"),
        (-signal.SIGKILL, "killed by SIGKILL"),
        (1, "exited with status 1"),
    ],
)
def test_why_a_worker_ended_is_said_plainly(status, said):
    assert said in describe_exit(status)


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None

    def poll(self):
        return self.returncode


class FakeWorker:
    """What the supervisor uses of a WorkerProcess; ``die(status)`` ends it."""

    pids = iter(range(1000, 2000))

    def __init__(self, instance: int) -> None:
        self.name = f"worker tochigi-{instance}"
        self.proc: FakeProc | None = None
        self.starts = 0
        self.log_file = Path(f"/logs/{instance}.log")

    def start(self) -> None:
        self.proc = FakeProc(next(self.pids))
        self.starts += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.returncode = -signal.SIGTERM

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.returncode if self.proc else None

    def die(self, status: int) -> None:
        assert self.proc is not None
        self.proc.returncode = status

    def log_tail(self) -> str:
        return "last line"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervised(count: int, policy: RestartPolicy | None = None):
    clock, said = Clock(), []
    workers = [FakeWorker(i) for i in range(count)]
    supervisor = Supervisor(workers, policy=policy, clock=clock, say=said.append)
    supervisor.start()
    return supervisor, workers, clock, said


@pytest.mark.parametrize("status", [-signal.SIGKILL, -signal.SIGSEGV, 1, 137, RESTART_EXIT, FENCED_EXIT])
def test_a_worker_that_exits_for_any_reason_is_restarted_after_the_pause(status):
    supervisor, (worker,), clock, said = _supervised(1)
    worker.die(status)

    supervisor.tend()
    assert not worker.alive() and worker.starts == 1  # not yet: the pause first
    clock.now += 0.5
    supervisor.tend()

    assert worker.alive() and worker.starts == 2
    assert said[0].startswith(
        f"worker tochigi-0 (pid {worker.pid - 1}) {describe_exit(status)}; restarting it in 0.5 s"
    )
    assert said[1] == f"worker tochigi-0 restarted (pid {worker.pid})"


def test_one_replica_dying_does_not_stop_the_others():
    supervisor, workers, clock, _ = _supervised(3)
    workers[1].die(-signal.SIGKILL)
    for _ in range(4):
        clock.now += 0.5
        supervisor.tend()
    assert all(w.alive() for w in workers)
    assert [w.starts for w in workers] == [1, 2, 1]


def test_past_the_limit_the_supervision_gives_up_with_exit_4_naming_the_worker_its_exit_and_its_log():
    policy = RestartPolicy(max_restarts=2, window_s=600, first_delay_s=1.0)
    supervisor, (worker,), clock, _ = _supervised(1, policy)
    for _ in range(2):
        worker.die(1)
        supervisor.tend()
        clock.now += 10
        supervisor.tend()
        assert worker.alive()
    worker.die(1)

    with pytest.raises(WorkersGaveUp) as gave_up:
        supervisor.tend()

    assert gave_up.value.exit_code == ExitCode.FAILED == 4
    message = str(gave_up.value)
    assert "worker tochigi-0" in message and "exited with status 1" in message and "/logs/0.log" in message
    with pytest.raises(WorkersGaveUp):  # and says so again to whoever tends next
        supervisor.tend()


def test_stopped_workers_are_not_restarted():
    supervisor, workers, clock, _ = _supervised(2)
    workers[0].die(-signal.SIGKILL)
    supervisor.tend()
    supervisor.stop()
    clock.now += 60
    assert not any(w.alive() for w in workers) and supervisor.due == {}
