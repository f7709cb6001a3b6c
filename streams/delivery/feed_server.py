"""`bosai feed`: the Atom/CAP feed over HTTP, behind the broker's own credentials.

Reads every region's prefecture-wide alerts topic through the hub's listener (from the beginning, no
consumer group: the current set is rebuilt on start) and serves

    GET /feeds/public.atom                    public alerts, every region
    GET /feeds/prefecture/<region>.atom       every alert of the region (prefecture, hub)
    GET /feeds/municipality/<code>.atom       public + municipal alerts of a municipality (a designated
                                              city's code covers its wards)
    GET /cap/<identifier>.xml                 one CAP 1.2 message (ja-JP and en-US)
    GET /healthz, /openapi.json               (openapi/feed.yaml)

Feeds and messages carry ``ETag`` and ``Last-Modified`` and answer ``304`` to ``If-None-Match`` /
``If-Modified-Since`` (after the login: what a principal may see is its own), so a client polling every
minute costs one small answer while nothing changes.

HTTP Basic credentials are the principal's SCRAM credential (``bosai access issue``): the server checks
them by authenticating to the broker's SASL_SSL listener, so a revoked or rotated credential stops
working here too (within ``--auth-cache`` seconds). What a principal sees follows ``access_policy.visible``.

Logins are limited (:mod:`streams.security.login_guard`): failures per (address, principal) and per
address bring a growing delay, then 429 with Retry-After; per principal alone only a capped delay. The
broker is asked at most about ``--handshakes-per-s`` times a second: answers are cached under a keyed
hash of the credential (right ones ``--auth-cache`` s, wrong ones ``--failure-cache`` s), concurrent
checks of one credential share one handshake, and a token bucket with a reserve for clients that logged
in before bounds the rest (429 when it is empty). A broker that cannot be asked is a 503, counted
against nobody.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from streams.delivery import cap
from streams.delivery.atom import CurrentAlerts, feed_entries, render_atom
from streams.delivery.cap import DEFAULT_IDENTITY, CapIdentity
from streams.delivery.cap_english import CapEnglish
from streams.kernel.access import AccessPolicy, Principal, visible
from streams.kernel.errors import SettingsError
from streams.kernel.messages import AvroRecord
from streams.platform import health, kafka, metrics
from streams.platform.avro import ALERT, AvroCodec, CodecError, SchemaStore
from streams.platform.conditional_get import conditional
from streams.platform.described import add_openapi
from streams.platform.tls import client_ssl_context
from streams.security.credential_cache import CredentialCache
from streams.security.login_guard import LoginGuard, LoginLimited
from streams.security.login_limits import UNKNOWN, HandshakeBudget, Network, Verdict

log = logging.getLogger("bosai.feed")


DOOR = "feed"
OK, OK_CACHED, WRONG, WRONG_CACHED = "ok", "ok_cached", "wrong", "wrong_cached"
PRIVILEGED_WAIT_S = 2.0  # how long a privileged login waits for a handshake to spare before a 429


def listener_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """The (host, port) of each node of a bootstrap list, in its order (``[::1]:9093`` keeps its brackets)."""
    addresses = []
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"not a host:port list: {bootstrap!r}")
        addresses.append((host, int(port)))
    return addresses


def handshake_order(count: int, answering: int) -> list[int]:
    """The order to ask ``count`` nodes in: the one that answered last, then the others in turn."""
    return [(answering + i) % count for i in range(count)]


class CredentialChecker:
    """Verifies a user name and password by a SASL/SCRAM handshake with the broker, asking it sparingly.

    Answers are cached under a keyed hash of the credential (:class:`CredentialCache`), a handshake for a
    credential already being checked is shared, and handshakes are bounded by a :class:`HandshakeBudget`.
    """

    def __init__(
        self,
        clients_bootstrap: str,
        ca_file: Path,
        *,
        cache_s: float = 30.0,
        failure_cache_s: float = 60.0,
        handshakes_per_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._addresses = listener_addresses(clients_bootstrap)
        self._answering = 0  # index of the address that answered last: asked first
        self._ssl = client_ssl_context(ca_file)
        self.cache = CredentialCache(secrets.token_bytes(32), ok_s=cache_s, refused_s=failure_cache_s)
        self.budget = HandshakeBudget(handshakes_per_s, burst=max(3.0, handshakes_per_s), reserve=2.0)
        self.clock = clock
        self._checking: dict[bytes, asyncio.Future[bool]] = {}

    def fingerprint(self, username: str, password: str) -> bytes:
        return self.cache.fingerprint(username, password)

    def known_good(self, fingerprint: bytes) -> bool:
        return self.cache.get(fingerprint, self.clock()) is True

    async def verify(self, fingerprint: bytes, username: str, password: str, *, privileged: bool) -> tuple[str, float]:
        """(OK | OK_CACHED | WRONG | WRONG_CACHED, 0) or ("", seconds to wait): no handshake to spare.

        A privileged check (see :class:`HandshakeBudget`) waits up to ``PRIVILEGED_WAIT_S`` for its turn.

        Raises :class:`kafka.LoginUnavailable` when the broker could not be asked.
        """
        cached = self.cache.get(fingerprint, self.clock())
        if cached is not None:
            return (OK_CACHED if cached else WRONG_CACHED), 0.0
        pending = self._checking.get(fingerprint)
        if pending is not None:
            return (OK if await asyncio.shield(pending) else WRONG), 0.0
        waited, wait = 0.0, self.budget.take(self.clock(), privileged=privileged)
        while wait > 0 and privileged and waited + wait <= PRIVILEGED_WAIT_S:  # a client known good waits its turn
            await asyncio.sleep(wait)
            waited, wait = waited + wait, self.budget.take(self.clock(), privileged=privileged)
        if wait > 0:
            return "", wait
        return (OK if await self._handshake(fingerprint, username, password) else WRONG), 0.0

    async def _handshake(self, fingerprint: bytes, username: str, password: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even when nobody waits
        self._checking[fingerprint] = future
        try:
            ok = await self._login(username, password)
        except BaseException as exc:
            metrics.LOGIN_HANDSHAKES.labels(DOOR, "error").inc()
            future.set_exception(exc if isinstance(exc, Exception) else kafka.LoginUnavailable("cancelled"))
            raise
        finally:
            self._checking.pop(fingerprint, None)
        metrics.LOGIN_HANDSHAKES.labels(DOOR, "accepted" if ok else "refused").inc()
        self.cache.put(fingerprint, ok, self.clock())
        future.set_result(ok)
        return ok

    async def _login(self, username: str, password: str) -> bool:
        """One handshake, with the node that answered last first, then the others: a lost node (one of a
        cluster's three) leaves the others to ask. LoginUnavailable only when none could be asked."""
        unavailable: kafka.LoginUnavailable | None = None
        for index in handshake_order(len(self._addresses), self._answering):
            host, port = self._addresses[index]
            try:
                ok = await kafka.scram_login(host, port, self._ssl, username, password)
            except kafka.LoginUnavailable as exc:
                unavailable = exc
                continue
            self._answering = index
            return ok
        assert unavailable is not None  # at least one address (listener_addresses)
        raise unavailable

    async def check(self, username: str, password: str) -> bool:
        """Whether the credential is right (cached answers first; waits for a handshake to spare)."""
        fingerprint = self.fingerprint(username, password)
        while True:
            outcome, wait = await self.verify(fingerprint, username, password, privileged=True)
            if outcome:
                return outcome in (OK, OK_CACHED)
            await asyncio.sleep(wait)


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
        sender_names: Mapping[str, str],
        zone_polygons: Mapping[str, cap.ZonePolygons],
        guard: LoginGuard | None = None,
        identity: CapIdentity = DEFAULT_IDENTITY,
        english: CapEnglish | None = None,
    ):
        self.alerts, self.policy, self.checker = alerts, policy, checker
        self.sender_names, self.zone_polygons = sender_names, zone_polygons
        self.guard = guard or LoginGuard(metrics_door=DOOR)
        self.identity, self.english = identity, english or CapEnglish()
        self.changed_at = time.time()  # wall clock of the last change of the alerts (Last-Modified)

    def changed(self) -> None:
        self.changed_at = time.time()

    def last_modified(self, now_ms: int) -> float:
        """When the feeds last changed: new messages, or an alert whose ``expires`` passed since."""
        expired = [r["expires"] for r in self.alerts.latest.values() if (r.get("expires") or now_ms + 1) <= now_ms]
        return float(max([self.changed_at, *(e / 1000 for e in expired)]))

    def _refused(self, text: str) -> web.HTTPUnauthorized:
        return web.HTTPUnauthorized(headers=self.challenge, text=text)

    @staticmethod
    def _credentials(header: str) -> tuple[str, str] | None:
        try:
            username, colon, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
        return (username, password) if colon else None

    async def principal_of(self, request: web.Request) -> Principal:
        """The principal of the request's Basic credentials, within the login limits (401, 429 or 503)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise self._refused("credentials required (bosai access issue)\n")  # a client's first ask: not counted
        guard, address = self.guard, self.guard.address(request)
        credentials = self._credentials(header)
        if credentials is None:
            await self._admit(address, UNKNOWN)
            guard.failed(DOOR, "malformed")
            raise self._refused("malformed Basic credentials\n")
        username, password = credentials
        principal = self.policy.principal(username)
        name = username if principal is not None else UNKNOWN  # a made-up name is never a key, nor logged
        fingerprint = self.checker.fingerprint(username, password)
        if principal is not None and self.checker.known_good(fingerprint):  # right, and checked recently
            try:
                guard.refuse_if_limited(DOOR, address, name, fingerprint)
            except LoginLimited as limited:
                raise self._too_many(limited) from None
            guard.succeeded(DOOR, address, name, fingerprint, admitted=False)
            return principal
        verdict = await self._admit(address, name, fingerprint)
        if principal is None:
            guard.failed(DOOR, "unknown")
            raise self._refused("wrong user name or password\n")
        try:
            outcome, wait = await self.checker.verify(fingerprint, username, password, privileged=verdict.privileged)
        except kafka.LoginUnavailable as exc:
            guard.cancel(address, name)
            log.warning("feed: cannot check the login of %s: %s", name, exc)
            raise web.HTTPServiceUnavailable(
                headers={"Retry-After": "5"}, text="credentials cannot be checked now; try again\n"
            ) from None
        if not outcome:  # no handshake to spare: a suspect attempt still counts, a privileged one does not
            if verdict.privileged:
                guard.cancel(address, name)
            raise self._too_many(guard.limited(DOOR, wait, "handshakes"))
        if outcome in (OK, OK_CACHED):
            guard.succeeded(DOOR, address, name, fingerprint)
            return principal
        guard.failed(DOOR, "wrong" if outcome == WRONG else "cached")
        (log.info if outcome == WRONG else log.debug)("feed: wrong password for %s from %s", name, address)
        raise self._refused("wrong user name or password\n")

    async def _admit(self, address: str, name: str, fingerprint: bytes = b"") -> Verdict:
        try:
            return await self.guard.admit(DOOR, address, name, fingerprint)
        except LoginLimited as limited:
            raise self._too_many(limited) from None

    @staticmethod
    def _too_many(limited: LoginLimited) -> web.HTTPTooManyRequests:
        return web.HTTPTooManyRequests(
            headers={"Retry-After": str(limited.retry_after)},
            text=f"too many login attempts; try again in {limited.retry_after} s\n",
        )

    def atom(
        self, request: web.Request, entries: list[AvroRecord], feed_id: str, title: str, now_ms: int
    ) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        body = render_atom(
            entries,
            feed_id=self.identity.urn(feed_id),
            title=title,
            self_url=f"{base}{request.path}",
            cap_url=f"{base}/cap/{{identifier}}.xml",
            identity=self.identity,
        )
        return conditional(request, body, "application/atom+xml", last_modified_s=self.last_modified(now_ms))

    async def public_feed(self, request: web.Request) -> web.Response:
        principal, now_ms = await self.principal_of(request), _now_ms()
        return self.atom(
            request,
            feed_entries(self.alerts, principal, public_only=True, now_ms=now_ms),
            "feed:public",
            "bosai hub: public alerts",
            now_ms,
        )

    async def prefecture_feed(self, request: web.Request) -> web.Response:
        principal = await self.principal_of(request)
        region = request.match_info["region"]
        if not (principal.role == "hub" or (principal.role == "prefecture" and principal.region == region)):
            raise web.HTTPForbidden(text=f"{principal.name} may not read the {region} prefecture feed\n")
        now_ms = _now_ms()
        return self.atom(
            request,
            feed_entries(self.alerts, principal, region=region, now_ms=now_ms),
            f"feed:prefecture:{region}",
            f"bosai hub: {region} (all alerts)",
            now_ms,
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
        now_ms = _now_ms()
        return self.atom(
            request,
            feed_entries(self.alerts, principal, municipality_code=code, now_ms=now_ms),
            f"feed:municipality:{code}",
            f"bosai hub: {code}",
            now_ms,
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
            identity=self.identity,
            english=self.english,
        )
        return conditional(request, body, "application/cap+xml", last_modified_s=record["observed_at"] / 1000)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"alerts": len(self.alerts.latest), "current": len(self.alerts.current(_now_ms()))})


HANDLERS = web.AppKey("handlers", FeedHandlers)


def build_app(
    alerts: CurrentAlerts,
    policy: AccessPolicy,
    checker: CredentialChecker,
    *,
    sender_names: Mapping[str, str],
    zone_polygons: Mapping[str, cap.ZonePolygons],
    guard: LoginGuard | None = None,
    identity: CapIdentity = DEFAULT_IDENTITY,
    english: CapEnglish | None = None,
) -> web.Application:
    handlers = FeedHandlers(
        alerts,
        policy,
        checker,
        sender_names=sender_names,
        zone_polygons=zone_polygons,
        guard=guard,
        identity=identity,
        english=english,
    )
    app = web.Application()
    app[HANDLERS] = handlers
    app.router.add_get("/feeds/public.atom", handlers.public_feed)
    app.router.add_get("/feeds/prefecture/{region}.atom", handlers.prefecture_feed)
    app.router.add_get(r"/feeds/municipality/{code:\d{5}}.atom", handlers.municipality_feed)
    app.router.add_get("/cap/{identifier}.xml", handlers.cap_message)
    app.router.add_get("/healthz", handlers.healthz)
    add_openapi(app, "feed")
    return app


async def follow_alerts(
    bootstrap: str,
    topics: Sequence[str],
    alerts: CurrentAlerts,
    store: SchemaStore,
    ready: asyncio.Event | None = None,
    changed: Callable[[], None] = lambda: None,
) -> None:
    """Read the alerts topics from the beginning, then keep following them (``changed`` after each batch)."""
    codec = AvroCodec(store, ALERT)
    async with kafka.patient_consumer("following the alerts", bootstrap, *topics) as consumer:
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
            if batches:
                changed()
            if not batches and not caught_up:
                caught_up = True
                if ready is not None:
                    ready.set()


@dataclass(frozen=True)
class FeedSettings:
    """What `bosai feed` serves and how: the alert topics it follows, where it listens, how logins are
    checked against the broker and remembered. Checked once, when made (SettingsError says which setting)."""

    bootstrap: str  # the hub's listener: the alert topics are read through it
    topics: Sequence[str]  # each region's prefecture-wide alerts topic
    clients_bootstrap: str  # the SASL_SSL listener that logins are checked against
    ca_file: Path  # that listener's CA
    host: str
    port: int  # 0: any free port
    auth_cache_s: float  # how long a right credential is remembered (0: asked every time)
    failure_cache_s: float = 60.0  # how long a wrong one is
    handshakes_per_s: float = 5.0  # SCRAM handshakes the broker is asked for, at most
    trusted_proxies: Sequence[Network] = ()  # whose X-Forwarded-For names the client

    def __post_init__(self) -> None:
        def refuse(setting: str, value: object, expected: str) -> SettingsError:
            return SettingsError("feed", setting, value, expected)

        if not self.topics:
            raise refuse("topics", list(self.topics), "at least one alerts topic")
        if not 0 <= self.port <= 65535:
            raise refuse("port", self.port, "a TCP port, 0..65535")
        for setting, seconds in (("auth_cache_s", self.auth_cache_s), ("failure_cache_s", self.failure_cache_s)):
            if not seconds >= 0:
                raise refuse(setting, seconds, "seconds, 0 or more")
        if not self.handshakes_per_s > 0:
            raise refuse("handshakes_per_s", self.handshakes_per_s, "a positive rate")


async def serve_feed(
    settings: FeedSettings,
    *,
    store: SchemaStore,
    policy: AccessPolicy,
    sender_names: Mapping[str, str],
    zone_polygons: Mapping[str, cap.ZonePolygons],
    progress: Callable[[str], None],
    identity: CapIdentity = DEFAULT_IDENTITY,
    english: CapEnglish | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the feeds until ``stop`` is set (or cancelled): the alerts are read from the beginning first, then
    followed. Stopping cancels the follower and gives it ``STOP_GRACE_S`` to close its consumer."""
    alerts = CurrentAlerts()
    ready = asyncio.Event()
    checker = CredentialChecker(
        settings.clients_bootstrap,
        settings.ca_file,
        cache_s=settings.auth_cache_s,
        failure_cache_s=settings.failure_cache_s,
        handshakes_per_s=settings.handshakes_per_s,
    )
    guard = LoginGuard(trusted_proxies=settings.trusted_proxies, metrics_door=DOOR)
    app = build_app(
        alerts,
        policy,
        checker,
        sender_names=sender_names,
        zone_polygons=zone_polygons,
        guard=guard,
        identity=identity,
        english=english,
    )
    topics = settings.topics
    health.READINESS.waiting("alerts_loaded", f"reading {', '.join(topics)} from the beginning")
    follower = asyncio.create_task(
        follow_alerts(settings.bootstrap, topics, alerts, store, ready, app[HANDLERS].changed)
    )
    runner = web.AppRunner(app, shutdown_timeout=2.0)  # Ctrl-C: requests in flight get 2 s, as the map's
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    stopping = asyncio.create_task((stop or asyncio.Event()).wait())
    try:
        loaded = asyncio.create_task(ready.wait())
        await asyncio.wait([loaded, follower, stopping], return_when=asyncio.FIRST_COMPLETED)
        if stopping.done():
            loaded.cancel()
            await _stop_follower(follower)
            await runner.cleanup()
            return
        if not ready.is_set():  # the follower ended first (the cluster away past the patience): say why, exit
            loaded.cancel()
            await runner.cleanup()
            await follower
    except BaseException:
        stopping.cancel()
        raise
    health.READINESS.ok("alerts_loaded", f"{len(alerts.latest)} alert episodes")
    progress(
        f"feed: http://{settings.host}:{settings.port}/feeds/… ({len(alerts.latest)} alert episodes loaded from "
        f"{', '.join(topics)}); Ctrl-C stops"
    )
    try:
        await asyncio.wait([follower, stopping], return_when=asyncio.FIRST_COMPLETED)
        if follower.done():
            await follower  # the follower's end (the cluster away past the patience) says why
    finally:
        stopping.cancel()
        await _stop_follower(follower)
        await runner.cleanup()


STOP_GRACE_S = 5.0


async def _stop_follower(follower: asyncio.Task[None]) -> None:
    """Cancel the follower and wait for it at most STOP_GRACE_S (a consumer closing after a lost node)."""
    if follower.done():
        return
    follower.cancel()
    await asyncio.wait([follower], timeout=STOP_GRACE_S)
