"""E-mail channels as delivery targets: one message per alert event, sent through the SMTP relay (aiosmtplib).

Each channel runs in the one connector (:mod:`streams.delivery.connector`): its own consumer group, one alert
event at a time, retries with backoff and jitter, dead letters (key = channel id) and redrive. Per message:

* recipients on the suppression list (:class:`streams.delivery.channels.Suppressions`, read again when the file
  changes) are skipped and counted; a message whose every recipient is suppressed is done;
* STARTTLS (required, never optional: a relay without it fails the attempt) or implicit TLS, then AUTH;
* a 5xx — the message or every recipient refused, AUTH failed — is permanent: dead-lettered without retry;
  recipients refused with a 5xx while others accepted the message are counted (the message is delivered);
* a 4xx, a lost connection, a timeout: retried (only the recipients still waiting), then dead-lettered.

Addresses are never logged nor put in a metric or a dead letter (:func:`channel_text.redact_addresses` on every
error text); neither is the relay's password.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib

from streams.delivery.channel_text import redact_addresses
from streams.delivery.channels import EmailChannel, Suppressions
from streams.delivery.connector import AlertTarget, Undelivered, retrying
from streams.delivery.email_message import render_email, smtp_code_result
from streams.kernel.dead_letters import Origin
from streams.kernel.errors import ConfigError
from streams.kernel.messages import AvroRecord
from streams.kernel.redact import redact
from streams.platform import metrics
from streams.platform.avro import SchemaStore

log = logging.getLogger("bosai.sink")


@dataclass
class Attempt:
    """What one SMTP transaction did to the recipients still waiting."""

    accepted: int = 0
    refused: list[str] = field(default_factory=list)  # 5xx per recipient: never retried
    waiting: list[str] = field(default_factory=list)  # 4xx per recipient, or the whole transaction failed
    result: str = "ok"
    permanent: bool = False
    error: str = ""


def tls_context(channel: EmailChannel) -> ssl.SSLContext | None:
    smtp = channel.smtp
    if smtp.tls == "none":
        return None
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


async def send_once(
    channel: EmailChannel, message: EmailMessage, recipients: Sequence[str], context: ssl.SSLContext | None
) -> Attempt:
    """One SMTP transaction to the recipients still waiting; what it did (errors redacted)."""
    smtp, timeout = channel.smtp, channel.retry.timeout_s
    secrets = [smtp.password, smtp.username]

    def clean(text: str) -> str:
        return redact_addresses(redact(text, secrets), [*channel.recipients, smtp.username])

    try:
        async with asyncio.timeout(timeout * 4):  # every step has its timeout; the whole session a bound too
            errors, _reply = await aiosmtplib.send(
                message,
                sender=smtp.identity.sender,
                recipients=list(recipients),
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                use_tls=smtp.tls == "implicit",
                start_tls=smtp.tls == "starttls",
                tls_context=context,
                timeout=timeout,
            )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        attempt = Attempt()
        for refusal in exc.recipients:
            result, permanent = smtp_code_result(refusal.code)
            (attempt.refused if permanent else attempt.waiting).append(refusal.recipient)
            attempt.error = clean(f"recipient refused: {refusal.code} {refusal.message}")
        attempt.result = "smtp_4xx" if attempt.waiting else "smtp_5xx"
        attempt.permanent = not attempt.waiting
        return attempt
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        return Attempt(waiting=list(recipients), result="timeout", error=f"no answer within {timeout:g}s")
    except aiosmtplib.SMTPResponseException as exc:
        result, permanent = smtp_code_result(exc.code)
        text = clean(f"{type(exc).__name__}: {exc.code} {exc.message}")
        return Attempt(waiting=list(recipients), result=result, permanent=permanent, error=text)
    except (aiosmtplib.SMTPException, OSError) as exc:  # refused connection, TLS, lost session, no STARTTLS
        return Attempt(waiting=list(recipients), result="connection", error=clean(f"{type(exc).__name__}: {exc}"))
    attempt = Attempt(accepted=len(recipients) - len(errors), result="ok")
    for recipient, reply in errors.items():
        result, permanent = smtp_code_result(reply.code)
        (attempt.refused if permanent else attempt.waiting).append(recipient)
        attempt.result = "ok" if not attempt.waiting else "smtp_4xx"
        attempt.error = clean(f"recipient refused: {reply.code} {reply.message}")
    return attempt


class EmailTarget(AlertTarget):
    """An e-mail channel as a delivery target: one alert event at a time, one message to its recipients."""

    group_prefix = "bosai-sink"
    stage = "sink.email"
    unit_size = 1

    def __init__(
        self,
        channel: EmailChannel,
        topics: Sequence[str],
        deadletter_topic: str,
        store: SchemaStore,
        *,
        seed: int | None = None,
    ):
        super().__init__(channel.id, topics, deadletter_topic, store, seed)
        self.channel = channel
        self.suppressions = Suppressions(channel.smtp.suppression_file)
        self.context: ssl.SSLContext | None = None

    async def open(self) -> None:
        self.context = tls_context(self.channel)

    def _count(self, result: str) -> None:
        metrics.CHANNEL_ATTEMPTS.labels("email", self.id, result).inc()

    async def send(self, alert: AvroRecord) -> tuple[str, str]:
        """Send one alert event's message (retrying): (delivered | suppressed | failed, why not)."""
        channel = self.channel
        try:
            waiting, suppressed = self.suppressions.split(channel.recipients)
        except ConfigError as exc:  # the operator's file went bad: tell them, and hold the message back
            return "failed", f"suppression list unreadable: {redact_addresses(str(exc))}"
        if suppressed:
            metrics.CHANNEL_SUPPRESSED.labels(self.id).inc(suppressed)
        if not waiting:
            log.info(
                "sink.email %s: %s/%s: every recipient is suppressed", self.id, alert["alert_id"], alert["sequence"]
            )
            return "suppressed", ""
        message = render_email(
            alert,
            channel=channel.id,
            municipality=channel.municipality_name,
            identity=channel.smtp.identity,
            date=datetime.now(UTC),
        )
        accepted = refused = 0

        async def attempt(_n: int) -> tuple[bool, bool, Attempt]:
            nonlocal waiting, accepted, refused
            outcome = await send_once(channel, message, waiting, self.context)
            self._count(outcome.result)
            accepted += outcome.accepted
            refused += len(outcome.refused)
            waiting = outcome.waiting
            if not waiting and not outcome.permanent:
                return True, False, outcome
            if not waiting and accepted:  # every other recipient refused for good: delivered to the rest
                return True, False, outcome
            return False, outcome.permanent, outcome

        delivered, attempts, last = await retrying(
            attempt, channel.retry, self.rng, on_retry=metrics.CHANNEL_RETRIES.labels("email", self.id).inc
        )
        if refused and delivered:
            metrics.CHANNEL_REFUSED.labels(self.id).inc(refused)
            log.warning(
                "sink.email %s: %d of %d recipient(s) refused for good (a bounce: see the relay's log, then "
                "`bosai sink suppress`)",
                self.id,
                refused,
                len(channel.recipients),
            )
        if delivered:
            return "delivered", ""
        where = f"{channel.smtp.host}:{channel.smtp.port}"
        permanent = " (permanent: not retried)" if last is not None and last.permanent else ""
        error = last.error if last is not None else ""
        return "failed", f"{attempts} attempt(s) via {where} failed{permanent}; last: {error}"

    async def deliver_alert(self, message: Origin, alert: AvroRecord) -> Undelivered | None:
        outcome, detail = await self.send(alert)
        if outcome == "failed":
            return Undelivered(message, "email_delivery_failed", detail)
        metrics.CHANNEL_DELIVERIES.labels("email", self.id, outcome).inc()
        return None

    def report_dead_letter(self, undelivered: Undelivered) -> None:
        metrics.CHANNEL_DELIVERIES.labels("email", self.id, "dead_lettered").inc()
