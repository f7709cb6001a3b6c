"""When a supervised worker comes back (pure): every exit restarts it, after a growing pause, up to a limit.

A worker is crash-only: whatever ended it — a failed transaction (75), a freeze it noticed (76), a signal
(``kill -9``, the OOM killer), a non-zero exit — its partitions' states are in Kafka, and a fresh process
restores them. So the supervisor restarts it after ``first_delay_s``, doubling with each restart still inside
the window, up to ``max_delay_s``; the ``max_restarts``-th restart within ``window_s`` is the last — the next
exit gives up (the command ends with exit 4), as systemd's ``StartLimitBurst``/``StartLimitIntervalSec`` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` restarts of one worker within ``window_s``; pauses from ``first_delay_s``
    doubling up to ``max_delay_s``."""

    max_restarts: int = 5
    window_s: float = 600.0
    first_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def recent(self, restarts: Sequence[float], now: float) -> list[float]:
        """The restarts still inside the window at ``now``."""
        return [t for t in restarts if now - t < self.window_s]

    def next_delay(self, restarts: Sequence[float], now: float) -> float | None:
        """Given when the worker was restarted before, the pause before restarting it now; None: give up."""
        recent = self.recent(restarts, now)
        if len(recent) >= self.max_restarts:
            return None
        return min(self.max_delay_s, self.first_delay_s * 2.0 ** len(recent))

    def describe(self) -> str:
        return f"{self.max_restarts} restarts within {self.window_s / 60:.0f} min"
