"""The residents' map as a process (``python -m streams.publicmap.server``), for the demo, benchmarks and tests:
started, awaited until ready, stopped by its pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.kernel.errors import BosaiError
from streams.publicmap.server import WebSettings


class WebProcess:
    """One `bosai web` process (``python -m streams.publicmap.server``): started, awaited, stopped by its pid."""

    def __init__(self, settings: WebSettings, bootstrap: str, log_file: Path):
        self.settings = settings
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}/"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, *, timeout_s: float = 60.0) -> None:
        """Start it and return once it has read the topics and answers (``/healthz`` says ready)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.settings.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BosaiError(f"bosai web exited ({self.proc.returncode}); see {self.log_file}")
            try:
                with urllib.request.urlopen(f"{self.url}healthz", timeout=2) as response:
                    if json.load(response).get("ready"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise BosaiError(f"bosai web did not become ready within {timeout_s:.0f} s; see {self.log_file}")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
