"""Chat channels as delivery targets: one POST of a rendered JSON payload per alert event (Teams, Slack,
LINE WORKS, or an operator's template; :mod:`streams.delivery.chat_payloads`).

Each channel runs in the one connector (:mod:`streams.delivery.connector`): its own consumer group, one alert
event at a time, retries with backoff and jitter, dead letters (key = channel id) and redrive. What an answer
means: 2xx delivered; 429 retried after the ``Retry-After`` the service asked for; 5xx, 408, timeouts and
lost connections retried, then dead-lettered; any other 4xx dead-lettered at once (a retry cannot fix it —
after the fix, redrive). A payload the template cannot render as JSON is dead-lettered without a request.

The webhook URL is the channel's credential: only its origin (scheme, host, port) ever reaches a log or a
dead letter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from streams.delivery.channels import ChatChannel
from streams.delivery.chat_payloads import PayloadError, classify_status, retry_after_s
from streams.delivery.connector import HttpAlertTarget, Undelivered, retrying
from streams.kernel.dead_letters import Origin
from streams.kernel.messages import AvroRecord
from streams.kernel.redact import redact, url_origin
from streams.platform import metrics
from streams.platform.avro import SchemaStore


@dataclass(frozen=True)
class Answer:
    """What one POST learned: the error (if any) and the wait a 429 asked for."""

    error: str = ""
    retry_after_s: float | None = None
    permanent: bool = False


class ChatTarget(HttpAlertTarget):
    """A chat channel as a delivery target: one alert event at a time, POSTed as its JSON payload."""

    group_prefix = "bosai-sink"
    stage = "sink.chat"
    unit_size = 1

    def __init__(
        self,
        channel: ChatChannel,
        topics: Sequence[str],
        deadletter_topic: str,
        store: SchemaStore,
        *,
        seed: int | None = None,
    ):
        super().__init__(channel.id, topics, deadletter_topic, store, seed)
        self.channel = channel

    def _count(self, result: str) -> None:
        metrics.CHANNEL_ATTEMPTS.labels(self.channel.kind, self.id, result).inc()

    async def post(self, body: bytes) -> tuple[bool, int, Answer | None]:
        """POST until a 2xx, a permanent refusal, or max_attempts: (delivered, attempts, the last answer)."""
        assert self.session is not None, "open() first"
        session, channel = self.session, self.channel

        async def attempt(_n: int) -> tuple[bool, bool, Answer]:
            try:
                async with session.post(
                    channel.url,
                    data=body,
                    headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "bosai-hub-chat/1"},
                    timeout=aiohttp.ClientTimeout(total=channel.retry.timeout_s),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    verdict = classify_status(response.status)
                    if verdict == "ok":
                        self._count("ok")
                        return True, False, Answer()
                    error = f"HTTP {response.status} {response.reason or ''}".strip()
                    if verdict == "rate_limited":
                        self._count("http_429")
                        wait = retry_after_s(response.headers.get("Retry-After"), time.time())
                        return False, False, Answer(f"{error} (Retry-After {wait:g}s)" if wait else error, wait)
                    self._count("http_5xx" if response.status >= 500 else "http_4xx")
                    if verdict == "permanent":
                        return False, True, Answer(error + " (permanent: not retried)", permanent=True)
                    return False, False, Answer(error)
            except TimeoutError:
                self._count("timeout")
                return False, False, Answer(f"no answer within {channel.retry.timeout_s:g}s")
            except aiohttp.ClientError as exc:  # its text may quote the URL: the URL is the secret
                self._count("connection")
                text = f"{type(exc).__name__}: {exc}".replace(channel.url, url_origin(channel.url))
                return False, False, Answer(redact(text, [channel.url]))

        return await retrying(
            attempt,
            channel.retry,
            self.rng,
            on_retry=metrics.CHANNEL_RETRIES.labels(channel.kind, self.id).inc,
            requested_wait=lambda answer: answer.retry_after_s,
        )

    async def send(self, alert: AvroRecord) -> tuple[str, str, str]:
        """(delivered | failed, the dead letter's reason, its detail) of one alert event."""
        channel = self.channel
        try:
            body = channel.template.render(alert, municipality=channel.municipality_name, channel=channel.id)
        except PayloadError as exc:
            self._count("template")
            return "failed", "chat_template_failed", f"{channel.kind} payload: {exc}"
        delivered, attempts, last = await self.post(body)
        if delivered:
            return "delivered", "", ""
        error = last.error if last is not None else ""
        detail = f"{attempts} attempt(s) to {url_origin(channel.url)} failed; last: {error}"
        return "failed", "chat_delivery_failed", detail

    async def deliver_alert(self, message: Origin, alert: AvroRecord) -> Undelivered | None:
        outcome, reason, detail = await self.send(alert)
        if outcome != "delivered":
            return Undelivered(message, reason, detail)
        metrics.CHANNEL_DELIVERIES.labels(self.channel.kind, self.id, "delivered").inc()
        return None

    def report_dead_letter(self, undelivered: Undelivered) -> None:
        metrics.CHANNEL_DELIVERIES.labels(self.channel.kind, self.id, "dead_lettered").inc()
