"""Worker processes started by replay, demo, `bosai worker --replicas`, benchmarks and tests: each stopped by its own
pid, and supervised — a worker that exits, for whatever reason, is started again (:mod:`streams.hub.restarts`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

from streams.hub.restarts import RestartPolicy
from streams.hub.worker import FENCED_EXIT, RESTART_EXIT, WorkerSettings
from streams.kernel.errors import BosaiError, ExitCode


class WorkerProcess:
    """One hub worker process (``python -m streams.hub.worker``) for one region, or for the regions of its
    settings' ``pack_dirs``; stopped by its pid."""

    def __init__(
        self, pack_dir: Path, prefix: str, bootstrap: str, log_file: Path, *, settings: WorkerSettings | None = None
    ):
        base = settings or WorkerSettings(pack_dir=str(pack_dir))
        self.settings = replace(base, pack_dir=str(pack_dir), topic_prefix=prefix)
        self.cmd = self.settings.command()
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def name(self) -> str:
        """The worker as messages name it: its region (or how many it serves) and replica."""
        regions = self.settings.regions
        served = Path(regions[0]).name if len(regions) == 1 else f"of {len(regions)} regions"
        return f"worker {served}-{self.settings.instance}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (None while it runs, or before it started)."""
        return self.proc.returncode if self.proc is not None else None

    def restart_if_asked(self) -> bool:
        """A worker that exited crash-only (a transaction it could not commit, or frozen past its session
        timeout) starts again: it restores its partitions' states from Kafka, not from memory."""
        if self.proc is not None and self.proc.poll() in (RESTART_EXIT, FENCED_EXIT):
            self.start()
            return True
        return False

    def kill(self) -> None:
        """SIGKILL: a crash, for tests."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def describe_exit(status: int | None) -> str:
    """Why a worker process ended, for an operator: its own crash-only statuses, a signal, or an exit status."""
    if status == RESTART_EXIT:
        return f"exited crash-only ({RESTART_EXIT}: a transaction failed)"
    if status == FENCED_EXIT:
        return f"exited fenced ({FENCED_EXIT}: frozen or fenced, its partitions had moved on)"
    if status is not None and status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


class WorkersGaveUp(BosaiError):
    """A supervised worker kept exiting: restarted as often as the policy allows, it exited again."""

    exit_code = ExitCode.FAILED


class Supervisor:
    """Keeps worker processes running without blocking its caller: :meth:`tend`, called every poll, starts again
    each worker that exited — whatever ended it: crash-only statuses, a signal, a non-zero exit — after the
    policy's pause; a worker past the policy's limit ends the supervision (:class:`WorkersGaveUp`, exit 4).

    A fenced worker (76) is restarted too: the process that was fenced never writes again, and a fresh one
    takes its partitions back under its static member id, fencing nobody's work but its own stale producers.
    Two processes claiming the same replica would fence each other in turn; the restart limit ends that.
    """

    def __init__(
        self,
        workers: Sequence[WorkerProcess],
        *,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], object] = print,
    ):
        self.workers = list(workers)
        self.policy = policy or RestartPolicy()
        self.clock, self.say = clock, say
        self.restarts: dict[int, list[float]] = {id(w): [] for w in self.workers}
        self.due: dict[int, float] = {}  # worker -> when to start it again
        self.exits: list[tuple[str, int | None]] = []  # every exit seen: (worker, status)
        self.failure: WorkersGaveUp | None = None
        self._lock = threading.Lock()  # tend() from the caller and from tending()'s thread, one at a time

    def tend(self) -> None:
        """Restart the workers that are due; schedule those that just exited; give up past the limit (and raise
        that again at every later call)."""
        with self._lock:
            if self.failure is not None:
                raise self.failure
            try:
                self._tend()
            except WorkersGaveUp as exc:
                self.failure = exc
                raise

    @contextmanager
    def tending(self, poll_s: float = 0.5) -> Iterator[None]:
        """Tend the workers from a thread while the block runs (a replay producing does not poll them)."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(poll_s):
                try:
                    self.tend()
                except WorkersGaveUp:
                    return  # raised again to whoever tends next

        thread = threading.Thread(target=loop, name="bosai-supervisor", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _tend(self) -> None:
        now = self.clock()
        for worker in self.workers:
            key = id(worker)
            if key in self.due:
                if now >= self.due[key]:
                    del self.due[key]
                    if not worker.alive():
                        worker.start()
                        self.say(f"{worker.name} restarted (pid {worker.pid})")
                continue
            if worker.proc is None or worker.alive():
                continue
            status = worker.returncode
            self.exits.append((worker.name, status))
            delay = self.policy.next_delay(self.restarts[key], now)
            if delay is None:
                raise WorkersGaveUp(
                    f"{worker.name} (pid {worker.pid}) {describe_exit(status)} after {self.policy.describe()}; "
                    f"giving up. Last lines of {worker.log_file}:\n{worker.log_tail()}"
                )
            self.restarts[key].append(now)
            self.due[key] = now + delay
            count = len(self.policy.recent(self.restarts[key], now))
            self.say(
                f"{worker.name} (pid {worker.pid}) {describe_exit(status)}; restarting it in {delay:.1f} s "
                f"(restart {count} of at most {self.policy.describe()}; it restores its state from Kafka)"
            )

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        """Stop every worker by its pid (none is restarted afterwards: :meth:`tend` is no longer called)."""
        with self._lock:
            self.due.clear()
            for worker in self.workers:
                worker.stop()


def supervise(
    workers: list[WorkerProcess],
    *,
    poll_s: float = 0.5,
    say: Callable[[str], None] = print,
    policy: RestartPolicy | None = None,
) -> int:
    """Run the workers until SIGTERM/SIGINT, restarting each that exits (one replica's death never stops the
    others); stop all by pid at the end.

    Returns the exit status to use: 0 after a stop signal, 4 when a worker exited past the restart limit.
    """

    stopping: dict[str, int | None] = {"signal": None}

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping["signal"] = signum

    supervisor = Supervisor(workers, policy=policy, say=say)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.start()
        say("started " + ", ".join(f"replica {w.settings.instance} (pid {w.pid})" for w in workers))
        while stopping["signal"] is None:
            try:
                supervisor.tend()
            except WorkersGaveUp as exc:
                say(f"bosai: error: {exc}")
                return int(exc.exit_code)
            time.sleep(poll_s)
        return 0
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
