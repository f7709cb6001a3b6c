"""Failed-login limits at an HTTP door: the pure limiter (streams.security.login_limits) with a clock, the delay
and the metrics. Used by ``bosai feed`` (HTTP Basic, checked against the broker) and ``bosai gateway``
(bearer tokens, both doors).

Nothing here logs or counts a principal, token or address as a metric label; log lines name a principal
only when the door knows it (a password typed into the user-name field must never reach a log).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from streams.platform import metrics
from streams.security.login_limits import LoginLimiter, LoginPolicy, Network, Verdict, client_address


class LoginLimited(Exception):
    """An attempt refused before any check (429): ``retry_after`` whole seconds, and why."""

    def __init__(self, retry_after_s: float, reason: str):
        self.retry_after = max(1, math.ceil(retry_after_s))
        self.reason = reason
        super().__init__(f"too many failed logins ({reason}); try again in {self.retry_after} s")


class LoginGuard:
    """One process's login limits, shared by its doors (``door`` labels the metrics only)."""

    def __init__(
        self,
        *,
        policy: LoginPolicy | None = None,
        trusted_proxies: Sequence[Network] = (),
        clock: Callable[[], float] = time.monotonic,
        metrics_door: str = "",
    ):
        self.limiter = LoginLimiter(policy or LoginPolicy())
        self.trusted_proxies = tuple(trusted_proxies)
        self.clock = clock
        self.metrics_door = metrics_door  # the door the tracked-keys gauge is reported under

    def address(self, request: web.Request) -> str:
        """The client's address (X-Forwarded-For only from a trusted proxy), as the limits count it."""
        return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), self.trusted_proxies)

    def refuse_if_limited(self, door: str, address: str, principal: str, fingerprint: bytes = b"") -> None:
        """Raise :class:`LoginLimited` when attempts are refused now (before even a cached answer is given:
        a refused address must learn nothing, not even that a guess was right)."""
        verdict = self.limiter.check(address, principal, self.clock(), fingerprint)
        if verdict.refused:
            raise self.limited(door, verdict.retry_after_s, verdict.reason)

    async def admit(self, door: str, address: str, principal: str, fingerprint: bytes = b"") -> Verdict:
        """Count the attempt and wait its delay, or raise :class:`LoginLimited` (counted, never checked)."""
        verdict = self.limiter.attempt(address, principal, self.clock(), fingerprint)
        self._gauge()
        if verdict.refused:
            raise self.limited(door, verdict.retry_after_s, verdict.reason)
        if verdict.delay_s > 0:
            await asyncio.sleep(verdict.delay_s)
        return verdict

    def limited(self, door: str, retry_after_s: float, reason: str) -> LoginLimited:
        """Count a refusal before any check; returns the exception to raise."""
        metrics.LOGIN_FAILURES.labels(door, "limited").inc()
        metrics.LOGIN_LIMITED.labels(door, reason).inc()
        return LoginLimited(retry_after_s, reason)

    def failed(self, door: str, outcome: str) -> None:
        """An admitted attempt was refused (it stays counted): wrong, cached, unknown, malformed."""
        metrics.LOGIN_FAILURES.labels(door, outcome).inc()

    def cancel(self, address: str, principal: str) -> None:
        """An admitted attempt was not checked after all: it does not count."""
        self.limiter.cancel(address, principal)

    def succeeded(
        self, door: str, address: str, principal: str, fingerprint: bytes = b"", *, admitted: bool = True
    ) -> None:
        self.limiter.succeeded(address, principal, self.clock(), fingerprint, admitted=admitted)
        metrics.LOGIN_SUCCESSES.labels(door, "checked" if admitted else "cached").inc()
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics_door:
            metrics.LOGIN_TRACKED.labels(self.metrics_door).set(self.limiter.tracked)
