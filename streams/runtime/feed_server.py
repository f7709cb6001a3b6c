"""`bosai feed`: the Atom/CAP feed over HTTP, behind the broker's own credentials.

Reads every region's prefecture-wide alerts topic through the hub's listener (from the beginning, no
consumer group: the current set is rebuilt on start) and serves

    GET /feeds/public.atom                    public alerts, every region
    GET /feeds/prefecture/<region>.atom       every alert of the region (prefecture, hub)
    GET /feeds/municipality/<code>.atom       public + municipal alerts of a municipality (a designated
                                              city's code covers its wards)
    GET /cap/<identifier>.xml                 one CAP 1.2 message
    GET /healthz

HTTP Basic credentials are the principal's SCRAM credential (``bosai access issue``): the server checks
them by authenticating to the broker's SASL_SSL listener, so a revoked or rotated credential stops
working here too (within ``--auth-cache`` seconds). What a principal sees follows ``access_policy.visible``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from streams.adapters import kafka
from streams.adapters.avro import ALERT, AvroCodec, CodecError, SchemaStore
from streams.adapters.tls import client_ssl_context
from streams.core import cap
from streams.core.access_policy import AccessPolicy, Principal, visible
from streams.core.atom import CurrentAlerts, feed_entries, render_atom

log = logging.getLogger("bosai.feed")


class CredentialChecker:
    """Verifies a user name and password by a SASL/SCRAM handshake with the broker; caches successes."""

    def __init__(self, clients_bootstrap: str, ca_file: Path, *, cache_s: float = 30.0):
        host, _, port = clients_bootstrap.split(",")[0].rpartition(":")
        self._host, self._port = host, int(port)
        self._ssl = client_ssl_context(ca_file)
        self._cache_s = cache_s
        self._ok: dict[tuple[str, str], float] = {}

    async def check(self, username: str, password: str) -> bool:
        key = (username, hashlib.sha256(password.encode()).hexdigest())
        if self._ok.get(key, 0) > time.monotonic():
            return True
        if not await kafka.scram_login(self._host, self._port, self._ssl, username, password):
            log.info("feed login refused for %s", username)
            self._ok.pop(key, None)
            return False
        self._ok[key] = time.monotonic() + self._cache_s
        return True


def _now_ms() -> int:
    """Wall clock for the feed only: an alert past its ``expires`` (a relayed 記録的短時間大雨情報) has ended."""
    return int(time.time() * 1000)


class FeedHandlers:
    """The feed's HTTP handlers: each authenticates, checks what the principal may see, and renders."""

    challenge = {"WWW-Authenticate": 'Basic realm="bosai hub", charset="UTF-8"'}

    def __init__(
        self,
        alerts: CurrentAlerts,
        policy: AccessPolicy,
        checker: CredentialChecker,
        *,
        sender_names: dict[str, str],
        zone_polygons: dict,
    ):
        self.alerts, self.policy, self.checker = alerts, policy, checker
        self.sender_names, self.zone_polygons = sender_names, zone_polygons

    async def principal_of(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise web.HTTPUnauthorized(headers=self.challenge, text="credentials required (bosai access issue)\n")
        try:
            username, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPUnauthorized(headers=self.challenge, text="malformed Basic credentials\n") from None
        principal = self.policy.principal(username)
        if principal is None or not await self.checker.check(username, password):
            raise web.HTTPUnauthorized(headers=self.challenge, text="wrong user name or password\n")
        return principal

    @staticmethod
    def atom(request: web.Request, entries: list[dict], feed_id: str, title: str) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        body = render_atom(
            entries,
            feed_id=feed_id,
            title=title,
            self_url=f"{base}{request.path}",
            cap_url=f"{base}/cap/{{identifier}}.xml",
        )
        return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")

    async def public_feed(self, request: web.Request) -> web.Response:
        principal = await self.principal_of(request)
        return self.atom(
            request,
            feed_entries(self.alerts, principal, public_only=True, now_ms=_now_ms()),
            "urn:bosai-hub:feed:public",
            "bosai hub: public alerts",
        )

    async def prefecture_feed(self, request: web.Request) -> web.Response:
        principal = await self.principal_of(request)
        region = request.match_info["region"]
        if not (principal.role == "hub" or (principal.role == "prefecture" and principal.region == region)):
            raise web.HTTPForbidden(text=f"{principal.name} may not read the {region} prefecture feed\n")
        return self.atom(
            request,
            feed_entries(self.alerts, principal, region=region, now_ms=_now_ms()),
            f"urn:bosai-hub:feed:prefecture:{region}",
            f"bosai hub: {region} (all alerts)",
        )

    async def municipality_feed(self, request: web.Request) -> web.Response:
        principal = await self.principal_of(request)
        code = request.match_info["code"]
        allowed = principal.role in ("hub", "prefecture") or (
            principal.role == "municipality"
            and (code in principal.municipality_codes or principal.name == f"muni-{code}")
        )
        if not allowed:
            raise web.HTTPForbidden(text=f"{principal.name} may not read the feed of {code}\n")
        return self.atom(
            request,
            feed_entries(self.alerts, principal, municipality_code=code, now_ms=_now_ms()),
            f"urn:bosai-hub:feed:municipality:{code}",
            f"bosai hub: {code}",
        )

    async def cap_message(self, request: web.Request) -> web.Response:
        principal = await self.principal_of(request)
        record = self.alerts.by_identifier.get(request.match_info["identifier"])
        if record is None or not visible(principal, record):
            raise web.HTTPNotFound(text="no such CAP message for you\n")
        body = cap.render(
            record,
            sender_name=self.sender_names.get(record["region"], ""),
            zone_polygons=self.zone_polygons.get(record["region"]),
        )
        return web.Response(body=body, content_type="application/cap+xml", charset="utf-8")

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"alerts": len(self.alerts.latest), "current": len(self.alerts.current(_now_ms()))})


def build_app(
    alerts: CurrentAlerts,
    policy: AccessPolicy,
    checker: CredentialChecker,
    *,
    sender_names: dict[str, str],
    zone_polygons: dict,
) -> web.Application:
    handlers = FeedHandlers(alerts, policy, checker, sender_names=sender_names, zone_polygons=zone_polygons)
    app = web.Application()
    app.router.add_get("/feeds/public.atom", handlers.public_feed)
    app.router.add_get("/feeds/prefecture/{region}.atom", handlers.prefecture_feed)
    app.router.add_get(r"/feeds/municipality/{code:\d{5}}.atom", handlers.municipality_feed)
    app.router.add_get("/cap/{identifier}.xml", handlers.cap_message)
    app.router.add_get("/healthz", handlers.healthz)
    return app


async def follow_alerts(
    bootstrap: str, topics: Sequence[str], alerts: CurrentAlerts, store: SchemaStore, ready: asyncio.Event | None = None
) -> None:
    """Read the alerts topics from the beginning, then keep following them."""
    codec = AvroCodec(store, ALERT)
    async with kafka.started_consumer(bootstrap, *topics) as consumer:
        caught_up = False
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    try:
                        alerts.apply(codec.decode(message.value))
                    except CodecError as exc:
                        log.warning(
                            "skipping undecodable alert at %s/%d@%d: %s",
                            message.topic,
                            message.partition,
                            message.offset,
                            exc,
                        )
            if not batches and not caught_up:
                caught_up = True
                if ready is not None:
                    ready.set()


async def serve_feed(
    bootstrap: str,
    topics: Sequence[str],
    store: SchemaStore,
    policy: AccessPolicy,
    clients_bootstrap: str,
    ca_file: Path,
    *,
    host: str,
    port: int,
    auth_cache_s: float,
    sender_names: dict[str, str],
    zone_polygons: dict,
    progress: Callable[[str], None],
) -> None:
    """Serve the feeds until cancelled: the alerts are read from the beginning first, then followed."""
    alerts = CurrentAlerts()
    ready = asyncio.Event()
    follower = asyncio.create_task(follow_alerts(bootstrap, topics, alerts, store, ready))
    app = build_app(
        alerts,
        policy,
        CredentialChecker(clients_bootstrap, ca_file, cache_s=auth_cache_s),
        sender_names=sender_names,
        zone_polygons=zone_polygons,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await ready.wait()
    progress(
        f"feed: http://{host}:{port}/feeds/… ({len(alerts.latest)} alert episodes loaded from "
        f"{', '.join(topics)}); Ctrl-C stops"
    )
    try:
        await follower
    finally:
        await runner.cleanup()
