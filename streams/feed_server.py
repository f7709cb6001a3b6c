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
working here too (within ``--auth-cache`` seconds). What a principal sees follows ``feed.visible``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from streams import cap
from streams.access import AccessPolicy, Principal
from streams.feed import CurrentAlerts, feed_entries, render_atom, visible
from streams.tls import client_ssl_context

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
        from aiokafka.conn import create_conn

        key = (username, hashlib.sha256(password.encode()).hexdigest())
        if self._ok.get(key, 0) > time.monotonic():
            return True
        try:
            conn = await create_conn(self._host, self._port, ssl_context=self._ssl, security_protocol="SASL_SSL",
                                     sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=username,
                                     sasl_plain_password=password, request_timeout_ms=10_000)
        except Exception as exc:  # authentication failed or broker unreachable: either way, no access
            log.info("feed login refused for %s: %s", username, type(exc).__name__)
            self._ok.pop(key, None)
            return False
        conn.close()
        self._ok[key] = time.monotonic() + self._cache_s
        return True


def build_app(alerts: CurrentAlerts, policy: AccessPolicy, checker: CredentialChecker, *,
              sender_names: dict[str, str], zone_polygons: dict) -> web.Application:
    async def principal_of(request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": 'Basic realm="bosai hub", charset="UTF-8"'}
        if not header.startswith("Basic "):
            raise web.HTTPUnauthorized(headers=challenge, text="credentials required (bosai access issue)\n")
        try:
            username, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPUnauthorized(headers=challenge, text="malformed Basic credentials\n") from None
        principal = policy.principal(username)
        if principal is None or not await checker.check(username, password):
            raise web.HTTPUnauthorized(headers=challenge, text="wrong user name or password\n")
        return principal

    def atom(request: web.Request, entries: list[dict], feed_id: str, title: str) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        body = render_atom(entries, feed_id=feed_id, title=title, self_url=f"{base}{request.path}",
                           cap_url=f"{base}/cap/{{identifier}}.xml")
        return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")

    async def public_feed(request: web.Request) -> web.Response:
        principal = await principal_of(request)
        return atom(request, feed_entries(alerts, principal, public_only=True), "urn:bosai-hub:feed:public",
                    "bosai hub: public alerts")

    async def prefecture_feed(request: web.Request) -> web.Response:
        principal = await principal_of(request)
        region = request.match_info["region"]
        if not (principal.role == "hub" or (principal.role == "prefecture" and principal.region == region)):
            raise web.HTTPForbidden(text=f"{principal.name} may not read the {region} prefecture feed\n")
        return atom(request, feed_entries(alerts, principal, region=region),
                    f"urn:bosai-hub:feed:prefecture:{region}", f"bosai hub: {region} (all alerts)")

    async def municipality_feed(request: web.Request) -> web.Response:
        principal = await principal_of(request)
        code = request.match_info["code"]
        allowed = (principal.role in ("hub", "prefecture")
                   or (principal.role == "municipality"
                       and (code in principal.municipality_codes or principal.name == f"muni-{code}")))
        if not allowed:
            raise web.HTTPForbidden(text=f"{principal.name} may not read the feed of {code}\n")
        return atom(request, feed_entries(alerts, principal, municipality_code=code),
                    f"urn:bosai-hub:feed:municipality:{code}", f"bosai hub: {code}")

    async def cap_message(request: web.Request) -> web.Response:
        principal = await principal_of(request)
        record = alerts.by_identifier.get(request.match_info["identifier"])
        if record is None or not visible(principal, record):
            raise web.HTTPNotFound(text="no such CAP message for you\n")
        body = cap.render(record, sender_name=sender_names.get(record["region"], ""),
                          zone_polygons=zone_polygons.get(record["region"]))
        return web.Response(body=body, content_type="application/cap+xml", charset="utf-8")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"alerts": len(alerts.latest), "current": len(alerts.current())})

    app = web.Application()
    app.router.add_get("/feeds/public.atom", public_feed)
    app.router.add_get("/feeds/prefecture/{region}.atom", prefecture_feed)
    app.router.add_get(r"/feeds/municipality/{code:\d{5}}.atom", municipality_feed)
    app.router.add_get("/cap/{identifier}.xml", cap_message)
    app.router.add_get("/healthz", healthz)
    return app


async def follow_alerts(bootstrap: str, topics: Sequence[str], alerts: CurrentAlerts, store,
                        ready: asyncio.Event | None = None) -> None:
    """Read the alerts topics from the beginning, then keep following them."""
    from aiokafka import AIOKafkaConsumer

    from streams.codec import ALERT, AvroCodec, CodecError

    codec = AvroCodec(store, ALERT)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        caught_up = False
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    try:
                        alerts.apply(codec.decode(message.value))
                    except CodecError as exc:
                        log.warning("skipping undecodable alert at %s/%d@%d: %s", message.topic,
                                    message.partition, message.offset, exc)
            if not batches and not caught_up:
                caught_up = True
                if ready is not None:
                    ready.set()
    finally:
        await consumer.stop()
