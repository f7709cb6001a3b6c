"""Worker and web processes started by replay, demo, benchmarks and tests: each stopped by its own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

from streams.hub.worker import FENCED_EXIT, RESTART_EXIT, WorkerSettings


class WorkerProcess:
    """One hub worker process for one region (``python -m streams.hub.worker``); stopped by its pid."""

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


def supervise(workers: list[WorkerProcess], *, poll_s: float = 0.5, say: Callable[[str], None] = print) -> int:
    """Run the workers until SIGTERM/SIGINT; restart one that exits crash-only; stop all by pid at the end.

    Returns the exit status to use: 0 after a stop signal, else the status of a worker that failed for good.
    """

    stopping: dict[str, int | None] = {"signal": None}

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping["signal"] = signum

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in workers:
            worker.start()
        say("started " + ", ".join(f"replica {w.settings.instance} (pid {w.pid})" for w in workers))
        while stopping["signal"] is None:
            for worker in workers:
                if worker.restart_if_asked():
                    say(f"replica {worker.settings.instance} exited crash-only; restarted (pid {worker.pid})")
                elif not worker.alive():
                    say(
                        f"replica {worker.settings.instance} (pid {worker.pid}) exited with status "
                        f"{worker.returncode}; last lines of {worker.log_file}:\n{worker.log_tail()}"
                    )
                    return worker.returncode or 1
            time.sleep(poll_s)
        return 0
    finally:
        for worker in workers:
            worker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
