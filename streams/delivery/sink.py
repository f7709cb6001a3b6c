"""`bosai sink`: deliver each municipality's alert events to its subscribers' webhooks, e-mail and chat channels.

Every subscription runs as its own task with its own consumer group (``bosai-sink-<id>``) on the
municipality's alerts topic(s), so a slow or dead endpoint holds up only itself — never the hub's
pipeline (a separate process) and never another subscriber. Per subscriber, messages are delivered in
topic order: one at a time, retried with exponential backoff and jitter; the offset is committed only
after the delivery succeeded or the message was written to the sink dead-letter topic
(``<prefix>.<region>.sink.deadletter``, key = subscription id). A crash in between repeats a delivery,
which the receiver de-duplicates by alert id and sequence. ``bosai sink redrive`` re-delivers the
dead-lettered messages of a subscription (its own consumer group on the dead-letter topic).

The e-mail and chat channels of the same file (:mod:`streams.delivery.channels`) run in the same process the
same way (:mod:`streams.delivery.email_delivery`, :mod:`streams.delivery.chat_delivery`): each its own task and
consumer group (``bosai-sink-<channel id>``), the same dead-letter topic (key = channel id), the same redrive.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from streams.delivery.channels import Channel, EmailChannel
from streams.delivery.chat_delivery import ChatTarget
from streams.delivery.connector import Connector, DeliveryTarget, HttpAlertTarget, Undelivered, retrying, run_connectors
from streams.delivery.email_delivery import EmailTarget
from streams.delivery.webhooks import PERMANENT_STATUSES, Subscription, headers, json_body
from streams.kernel.dead_letters import Origin
from streams.kernel.messages import AvroRecord
from streams.kernel.redact import redact, url_origin
from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, HubTopics, topic_name
from streams.platform import kafka, metrics
from streams.platform.avro import SchemaStore

log = logging.getLogger("bosai.sink")
Progress = Callable[[str], None]
RenderCap = Callable[[AvroRecord], bytes]


@dataclass(frozen=True)
class Route:
    """Where a subscription reads from and dead-letters to."""

    subscription: Subscription
    topics: tuple[str, ...]
    deadletter_topic: str


def topics_of(
    region: str, municipality_code: str, packs: Sequence[RegionPack], catalog: Catalog
) -> tuple[tuple[str, ...], str]:
    """A municipality's alert topics (a designated city: every ward's) and the sink's dead-letter topic."""
    pack = next(p for p in packs if p.name == region)
    topics = HubTopics.for_region(catalog, pack)
    return (
        tuple(topics.read_by(pack, municipality_code)),
        topic_name(catalog, "sink.deadletter", pack.name, prefecture_code=pack.prefecture_code),
    )


def routes_for(subscriptions: Sequence[Subscription], packs: Sequence[RegionPack], catalog: Catalog) -> list[Route]:
    """Each subscription's topics: its municipality's (a designated city: every ward's), and the dead letters."""
    return [Route(sub, *topics_of(sub.region, sub.municipality_code, packs, catalog)) for sub in subscriptions]


def channel_targets(
    channels: Sequence[Channel], packs: Sequence[RegionPack], catalog: Catalog, store: SchemaStore
) -> list[DeliveryTarget]:
    """Each e-mail or chat channel as a delivery target on its municipality's topics."""
    out: list[DeliveryTarget] = []
    for channel in channels:
        topics, deadletter = topics_of(channel.region, channel.municipality_code, packs, catalog)
        if isinstance(channel, EmailChannel):
            out.append(EmailTarget(channel, topics, deadletter, store))
        else:
            out.append(ChatTarget(channel, topics, deadletter, store))
    return out


def _channel_kind(target: DeliveryTarget) -> str:
    if isinstance(target, EmailTarget):
        return "email"
    if isinstance(target, ChatTarget):
        return target.channel.kind
    return "webhook"


def body_for(sub: Subscription, alert: AvroRecord, render_cap: RenderCap) -> bytes:
    return render_cap(alert) if sub.format == "cap" else json_body(alert)


async def deliver(
    session: aiohttp.ClientSession, sub: Subscription, alert: AvroRecord, body: bytes, *, rng: random.Random
) -> tuple[bool, int, str]:
    """POST until a 2xx, a permanent refusal, or max_attempts; returns (delivered, attempts, last error)."""

    async def attempt(_n: int) -> tuple[bool, bool, str]:
        """(delivered, permanent, error) of one POST."""
        try:
            async with session.post(
                sub.url,
                data=body,
                headers=headers(sub, alert, body, int(time.time())),
                timeout=aiohttp.ClientTimeout(total=sub.retry.timeout_s),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    metrics.WEBHOOK_ATTEMPTS.labels(sub.id, "ok").inc()
                    return True, False, ""
                result = "http_4xx" if response.status < 500 else "http_5xx"
                error = f"HTTP {response.status} {response.reason or ''}".strip()
                metrics.WEBHOOK_ATTEMPTS.labels(sub.id, result).inc()
                if response.status in PERMANENT_STATUSES:
                    return False, True, error + " (permanent: not retried)"
                return False, False, error
        except TimeoutError:
            metrics.WEBHOOK_ATTEMPTS.labels(sub.id, "timeout").inc()
            return False, False, f"no answer within {sub.retry.timeout_s:g}s"
        except aiohttp.ClientError as exc:  # its text may quote the URL, which may carry a secret
            metrics.WEBHOOK_ATTEMPTS.labels(sub.id, "connection").inc()
            text = f"{type(exc).__name__}: {exc}".replace(sub.url, url_origin(sub.url))
            return False, False, redact(text, [sub.secret])

    delivered, attempts, error = await retrying(
        attempt, sub.retry, rng, on_retry=metrics.WEBHOOK_RETRIES.labels(sub.id).inc
    )
    return delivered, attempts, error or ""


class WebhookTarget(HttpAlertTarget):
    """A webhook subscription as a delivery target: one alert event at a time, POSTed with its signature."""

    group_prefix = "bosai-sink"
    stage = "sink.webhook"
    unit_size = 1

    def __init__(self, route: Route, store: SchemaStore, render_cap: RenderCap, *, seed: int | None = None):
        super().__init__(route.subscription.id, route.topics, route.deadletter_topic, store, seed)
        self.route, self.sub = route, route.subscription
        self.render_cap = render_cap

    async def deliver_alert(self, message: Origin, alert: AvroRecord) -> Undelivered | None:
        assert self.session is not None, "open() first"
        delivered, attempts, error = await deliver(
            self.session, self.sub, alert, body_for(self.sub, alert, self.render_cap), rng=self.rng
        )
        if not delivered:
            where = url_origin(self.sub.url)  # the subscription id names it; its path or query may be a secret
            return Undelivered(
                message, "sink_delivery_failed", f"{attempts} attempt(s) to {where} failed; last: {error}"
            )
        metrics.WEBHOOK_DELIVERIES.labels(self.sub.id, "delivered").inc()
        if message.timestamp:
            metrics.WEBHOOK_LATENCY.labels(self.sub.id).observe(max(0.0, time.time() - message.timestamp / 1000))
        return None

    def report_lag(self, lag: int) -> None:
        metrics.WEBHOOK_LAG.labels(self.sub.id).set(lag)

    def report_dead_letter(self, undelivered: Undelivered) -> None:
        metrics.WEBHOOK_DELIVERIES.labels(self.sub.id, "dead_lettered").inc()


async def run_sink(
    routes: Sequence[Route],
    bootstrap: str,
    store: SchemaStore,
    render_cap: RenderCap,
    stop: asyncio.Event,
    progress: Progress = lambda _m: None,
    *,
    targets: Sequence[DeliveryTarget] = (),
) -> list[Connector]:
    """Run every subscription and channel (``targets``) until stop is set, each supervised on its own
    (:mod:`streams.delivery.connector`); the connectors, webhooks first."""
    for target in targets:
        kind = _channel_kind(target)
        for outcome in ("delivered", "dead_lettered", *(("suppressed",) if kind == "email" else ())):
            metrics.CHANNEL_DELIVERIES.labels(kind, target.id, outcome)
    for route in routes:
        metrics.WEBHOOK_LAG.labels(route.subscription.id).set(0)
        for outcome in ("delivered", "dead_lettered"):
            metrics.WEBHOOK_DELIVERIES.labels(route.subscription.id, outcome)
    progress(
        f"sink: {len(routes)} subscription(s): "
        + ", ".join(
            f"{r.subscription.id} ({r.subscription.municipality_code}, {r.subscription.format})" for r in routes
        )
        + (f"; {len(targets)} channel(s): " + ", ".join(f"{t.id} ({_channel_kind(t)})" for t in targets))
    )
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        webhooks: list[DeliveryTarget] = [WebhookTarget(r, store, render_cap) for r in routes]
        connectors = [Connector(t, bootstrap, producer, store) for t in [*webhooks, *targets]]
        await run_connectors(connectors, stop)
    return connectors


async def redrive(
    route: Route, bootstrap: str, store: SchemaStore, render_cap: RenderCap, progress: Progress = lambda _m: None
) -> tuple[int, int]:
    """Re-deliver the subscription's dead-lettered messages present now; returns (delivered, dead-lettered again)."""
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        connector = Connector(WebhookTarget(route, store, render_cap), bootstrap, producer, store)
        return await connector.redrive(progress)


async def redrive_target(
    target: DeliveryTarget, bootstrap: str, store: SchemaStore, progress: Progress = lambda _m: None
) -> tuple[int, int]:
    """Re-deliver an e-mail or chat channel's dead-lettered messages present now: (delivered, dead-lettered again)."""
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        return await Connector(target, bootstrap, producer, store).redrive(progress)
