"""Worker processes started by replay, demo, benchmarks and tests: each stopped by its own pid."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

from streams.runtime.worker import STALLED_EXIT, WorkerSettings


class WorkerProcess:
    """One hub worker process for one region (``python -m streams.runtime.worker``); stopped by its pid."""

    def __init__(
        self, pack_dir: Path, prefix: str, bootstrap: str, log_file: Path, *, settings: WorkerSettings | None = None
    ):
        base = settings or WorkerSettings(pack_dir=str(pack_dir))
        self.settings = replace(base, pack_dir=str(pack_dir), topic_prefix=prefix)
        self.cmd = self.settings.command()
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

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

    def restart_if_stalled(self) -> bool:
        """A worker that exited because it stopped making progress is started again (crash-only)."""
        if self.proc is not None and self.proc.poll() == STALLED_EXIT:
            self.start()
            return True
        return False

    def kill(self) -> None:
        """SIGKILL: a crash, for tests."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
