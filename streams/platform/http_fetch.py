"""HTTP GET for the pollers (JMA's Atom feed and reports, AMeDAS data): timeouts, retries with backoff, limits.

One :class:`HttpFetcher` per poller (aiohttp client session). Every request is bounded (connect and
total timeout, a maximum body size), a truncated body (fewer bytes than its Content-Length, or the
connection cut mid-body) is an error, and failures that may pass — timeouts, refused connections,
5xx, truncation — are retried with exponential backoff and jitter before :class:`FetchError` is
raised. ``If-Modified-Since`` is sent when given; a ``304 Not Modified`` comes back as such. Every
attempt is counted in ``bosai_poll_requests_total{poller, result}``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from streams.platform import metrics

USER_AGENT = "bosai-hub-poller/1 (a prefecture's disaster-data hub)"
OK, NOT_MODIFIED, NOT_FOUND = "ok", "not_modified", "not_found"
TIMEOUT, CONNECTION_ERROR, HTTP_ERROR, TRUNCATED, TOO_LARGE = (
    "timeout",
    "connection_error",
    "http_error",
    "truncated",
    "too_large",
)
_RETRIED = (TIMEOUT, CONNECTION_ERROR, TRUNCATED)


class FetchError(Exception):
    """A GET that did not succeed, after its retries; ``reason`` is one of the result codes above."""

    def __init__(self, reason: str, url: str, detail: str):
        super().__init__(f"GET {url}: {reason}: {detail}")
        self.reason = reason
        self.url = url
        self.detail = detail


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int  # 200, 304 (with If-Modified-Since), or 404 (when allowed)
    body: bytes
    last_modified: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1``: exponential, with equal jitter."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class HttpFetcher:
    """GETs with retries for one poller (``poller`` labels its metrics: jma, amedas)."""

    def __init__(
        self,
        poller: str,
        *,
        policy: RetryPolicy = RetryPolicy(),
        max_bytes: int = 8 * 1024 * 1024,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.poller = poller
        self.policy = policy
        self.max_bytes = max_bytes
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpFetcher:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s, connect=min(5.0, self.policy.timeout_s))
        self.session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT})
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def get(self, url: str, *, if_modified_since: str | None = None, not_found_ok: bool = False) -> Fetched:
        """The response (200, 304, or 404 when ``not_found_ok``), or FetchError once the retries are spent."""
        last: FetchError | None = None
        for attempt in range(1, self.policy.attempts + 1):
            try:
                fetched = await self._once(url, if_modified_since, not_found_ok)
            except FetchError as exc:
                metrics.POLL_REQUESTS.labels(self.poller, exc.reason).inc()
                last = exc
                retriable = exc.reason in _RETRIED or (exc.reason == HTTP_ERROR and exc.detail.startswith("5"))
                if not retriable or attempt == self.policy.attempts:
                    break
                await self.sleep(self.policy.delay(attempt, self.rng))
                continue
            result = {304: NOT_MODIFIED, 404: NOT_FOUND}.get(fetched.status, OK)
            metrics.POLL_REQUESTS.labels(self.poller, result).inc()
            return fetched
        if last is None:
            raise FetchError(HTTP_ERROR, url, f"no attempt made ({self.policy.attempts} attempts allowed)")
        raise last

    async def _once(self, url: str, if_modified_since: str | None, not_found_ok: bool) -> Fetched:
        headers = {"If-Modified-Since": if_modified_since} if if_modified_since else {}
        if self.session is None:
            raise RuntimeError("HttpFetcher.get outside `async with HttpFetcher(...)`: no session")
        try:
            async with self.session.get(url, headers=headers, allow_redirects=True) as response:
                if response.status == 304:
                    return Fetched(url, 304, b"", response.headers.get("Last-Modified"))
                if response.status == 404 and not_found_ok:
                    return Fetched(url, 404, b"")
                if response.status != 200:
                    raise FetchError(HTTP_ERROR, url, f"{response.status} {response.reason or ''}".strip())
                expected = response.content_length
                if expected is not None and expected > self.max_bytes:
                    raise FetchError(TOO_LARGE, url, f"Content-Length {expected:,} > {self.max_bytes:,} bytes")
                body = await self._body(response, url)
                if expected is not None and len(body) != expected:
                    raise FetchError(TRUNCATED, url, f"{len(body):,} of {expected:,} bytes")
                return Fetched(url, 200, body, response.headers.get("Last-Modified"))
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError(TIMEOUT, url, f"no complete answer within {self.policy.timeout_s:g} s") from exc
        except aiohttp.ClientPayloadError as exc:
            raise FetchError(TRUNCATED, url, f"the body was cut off: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise FetchError(CONNECTION_ERROR, url, f"{type(exc).__name__}: {exc}") from exc

    async def _body(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(TOO_LARGE, url, f"more than {self.max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
