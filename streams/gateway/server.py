"""`bosai gateway`: readings in over HTTP, from municipal sensors and from Orion subscriptions, onto Kafka.

    POST /v1/readings                         a sensor owner's readings (JSON: one, a list, {"readings": [...]})
    POST /v1/orion/{orion}/notifications      an Orion's NGSI-v2 subscription notifications
    GET  /healthz, /openapi.json              (openapi/gateway.yaml)

Both doors take ``Authorization: Bearer <token>`` (owners' tokens from ``bosai gateway token issue``,
an Orion's from ``bosai bridge orion subscribe``), checked in one place (:meth:`Doors.authenticate`)
against the hashed token store, re-read when it changes so a revocation applies at once. Failed logins
are limited per (address, token id) and per address (a growing delay, then 429 with Retry-After), as
at every door of the hub (:mod:`streams.security.login_guard`; ``--trusted-proxy`` for X-Forwarded-For). An owner may
send only its own stations (403 otherwise, nothing written). Requests are bounded in size (413) and
each subject in readings per second (429 with Retry-After). Every reading is validated as the worker
validates it (:func:`streams.observed.readings.validate`); the valid ones go to the region's raw topic,
the invalid ones to its dead-letter topic with the reason, and the answer — 202 when all were valid,
else 400 listing the refused ones (the others were accepted) — is sent only after Kafka acknowledged
every record (idempotent producer, ``acks=all``). If Kafka does not, the answer is 503: send again
(a reading that is not newer than its station's last changes nothing, so a repeat is harmless).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from streams.fiware.bridge_file import BridgeConfig, OrionTarget
from streams.fiware.ngsi_in import EntityMapping, NotificationError, entity_record, parse_notification
from streams.gateway import intake
from streams.gateway.owners import Owner
from streams.kernel.dead_letters import dead_letter_record
from streams.kernel.errors import ConfigError
from streams.kernel.messages import AvroRecord, InMessage, OutRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics
from streams.observed.readings import InvalidReading, validate
from streams.platform import health, kafka, metrics
from streams.platform.avro import DEAD_LETTER, READING, AvroCodec, SchemaStore
from streams.platform.described import add_openapi
from streams.security import tokens
from streams.security.login_guard import LoginGuard, LoginLimited
from streams.security.login_limits import UNKNOWN, LoginPolicy, Network
from streams.security.token_store import TokenStore

log = logging.getLogger("bosai.gateway")
Progress = Callable[[str], None]
OWNER, ORION = "owner", "orion"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # 1 MiB per request
    max_readings: int = 1000  # per request
    orion_rate_per_s: float = 50.0
    orion_burst: float = 500.0


@dataclass(frozen=True)
class Subject:
    kind: str  # owner | orion
    id: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


class Doors:
    """Authentication of both doors, in one place, within the login limits (:class:`LoginGuard`).

    The limits count a token by its id when the store knows it (``bst.<id>.<secret>``), else as ``?``:
    made-up tokens never become keys, and a token's secret is never logged, counted or kept.
    """

    challenge = {"WWW-Authenticate": 'Bearer realm="bosai hub gateway"'}

    def __init__(
        self,
        tokens: TokenStore,
        *,
        refresh_s: float = 1.0,
        trusted_proxies: Sequence[Network] = (),
        policy: LoginPolicy | None = None,
    ):
        self.tokens, self.refresh_s = tokens, refresh_s
        self.guard = LoginGuard(policy=policy, trusted_proxies=trusted_proxies, metrics_door="gateway")
        self._mtime = tokens.mtime_ns()
        # a store others may read or write is refused at start
        self._stored: Mapping[str, Mapping[str, str]] = tokens.load()
        self._checked = -math.inf  # the first request looks for a change again

    def _current(self) -> Mapping[str, Mapping[str, str]]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_s:
            self._checked = now
            mtime = self.tokens.mtime_ns()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._stored = self.tokens.load()
                except ConfigError as exc:  # keep the last good tokens; say so until the file is fixed
                    log.error("gateway: %s; still using the tokens read before", exc)
        return self._stored

    async def authenticate(self, request: web.Request, kind: str) -> Subject:
        door = "orion" if kind == ORION else "gateway"
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):  # a client's first ask: not counted
            raise _json_error(web.HTTPUnauthorized, "a bearer token is required", headers=self.challenge)
        token, stored = header[7:].strip(), self._current()
        parts = tokens.split_token(token)
        token_id = parts[0] if parts is not None and parts[0] in stored else UNKNOWN
        fingerprint = tokens.secret_hash(parts[1]).encode() if parts is not None else b""  # as the store holds it
        address = self.guard.address(request)
        try:
            await self.guard.admit(door, address, token_id, fingerprint)
        except LoginLimited as limited:
            raise _json_error(
                web.HTTPTooManyRequests,
                f"too many login attempts; try again in {limited.retry_after} s",
                headers={"Retry-After": str(limited.retry_after)},
            ) from None
        subject = tokens.token_matches(token, stored)
        if subject is None:
            self.guard.failed(door, "malformed" if parts is None else "unknown" if token_id == UNKNOWN else "wrong")
            log.info("gateway: refused a token (id %s) at %s from %s", token_id, request.path, address)
            raise _json_error(web.HTTPUnauthorized, "unknown or revoked token", headers=self.challenge)
        self.guard.succeeded(door, address, token_id, fingerprint)
        found_kind, _, found_id = subject.partition(":")
        if found_kind != kind:
            raise _json_error(web.HTTPForbidden, f"a token of a {found_kind} does not open the {kind} door")
        return Subject(found_kind, found_id)


class PayloadTooLarge(web.HTTPClientError):
    """413 with our own JSON body (aiohttp's HTTPRequestEntityTooLarge insists on its own text)."""

    status_code = 413


def _json_error(
    cls: type[web.HTTPException], detail: str, *, headers: Mapping[str, str] | None = None, **fields: object
) -> web.HTTPException:
    name = cls.__name__.removeprefix("HTTP")
    body = json.dumps({"error": name, "detail": detail, **fields}, ensure_ascii=False)
    return cls(text=body, content_type="application/json", headers=headers)


class Gateway:
    """Both doors: parse, authorise, limit, validate, write to Kafka, answer."""

    def __init__(
        self,
        *,
        packs: Sequence[RegionPack],
        owners: Mapping[str, Owner],
        bridge: BridgeConfig | None,
        tables: Mapping[tuple[str, str], EntityMapping],  # (orion, entity id) -> station
        topics: Mapping[str, HubTopics],
        sender: kafka.BatchSender,
        store: SchemaStore,
        doors: Doors,
        limits: Limits = Limits(),
        clock: Callable[[], float] = time.time,
    ):
        self.packs = {p.name: p for p in packs}
        self.owners, self.tables, self.topics = owners, tables, topics
        self.orions: dict[str, OrionTarget] = {t.id: t for t in bridge.orions} if bridge else {}
        self.sender, self.doors, self.limits, self.clock = sender, doors, limits, clock
        self.readings = AvroCodec(store, READING)
        self.dead = AvroCodec(store, DEAD_LETTER)
        self.buckets: dict[str, intake.TokenBucket] = {}
        self.sensor_kinds = {s: st.kind.avro_symbol for p in packs for s, st in p.stations.items()}
        self.worker = f"{socket.gethostname()}/{os.getpid()} gateway"

    # -- limits ------------------------------------------------------------------------------------------
    def _limit(self, subject: Subject, count: int, rate: float, burst: float) -> None:
        if count > self.limits.max_readings:
            raise _json_error(PayloadTooLarge, f"{count} readings in one request; at most {self.limits.max_readings}")
        bucket = self.buckets.setdefault(subject.label, intake.TokenBucket(rate, burst))
        wait = bucket.take(count, time.monotonic())
        if wait == math.inf:
            raise _json_error(PayloadTooLarge, f"{count} readings exceed the burst of {burst:g} for {subject.label}")
        if wait > 0:
            raise _json_error(
                web.HTTPTooManyRequests,
                f"{subject.label} may send {rate:g} readings/s (burst {burst:g})",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    # -- writing -----------------------------------------------------------------------------------------
    def _dead_letter(
        self, door: str, subject: Subject, index: int, key: bytes | None, raw: bytes, reason: str, detail: str
    ) -> AvroRecord:
        now = int(self.clock() * 1000)
        origin = InMessage(f"http:{subject.label}", -1, index, key, raw, now)  # an HTTP request's item
        return dead_letter_record(
            origin,
            reason=reason,
            detail=detail,
            stage=f"gateway.{door}",
            failed_at=now,
            worker=f"{self.worker} {subject.label}",
        )

    async def _write(
        self, region: str, door: str, subject: Subject, items: Sequence[tuple[object, AvroRecord | InvalidReading]]
    ) -> web.Response:
        """Validate each (raw, record | refusal), write valid ones and dead letters, answer after the acks."""
        pack, topics = self.packs[region], self.topics[region]
        good, dead, refused = [], [], []
        for index, (raw, found) in enumerate(items):
            try:
                if isinstance(found, InvalidReading):
                    raise found
                good.append(validate(found, pack.stations).record)
            except InvalidReading as exc:
                station, key = _key_of(raw)
                body = raw if isinstance(raw, bytes) else json.dumps(raw, ensure_ascii=False).encode()
                dead.append(self._dead_letter(door, subject, index, key, body, exc.reason, exc.detail))
                refused.append({"index": index, "station_id": station, "reason": exc.reason, "detail": exc.detail})
        records = [
            OutRecord(topics.raw, r["station_id"].encode(), v)
            for r, v in zip(good, self.readings.encode_many(good), strict=True)
        ]
        records += [
            OutRecord(topics.deadletter, d["original_key"] or b"", v)
            for d, v in zip(dead, self.dead.encode_many(dead), strict=True)
        ]
        try:
            await self.sender.send(records)
        except Exception as exc:  # noqa: BLE001 - whatever Kafka says, nothing was acknowledged to the sender
            log.error("gateway: Kafka did not acknowledge %d record(s) of %s: %s", len(records), subject.label, exc)
            raise _json_error(
                web.HTTPServiceUnavailable,
                "the hub could not store the readings now; send them again",
                headers={"Retry-After": "5"},
            ) from None
        metrics.GATEWAY_READINGS.labels(door, subject.id, "accepted").inc(len(good))
        for d in dead:
            metrics.DEAD_LETTERS.labels(region, d["reason"]).inc()
        if dead:
            metrics.GATEWAY_READINGS.labels(door, subject.id, "invalid").inc(len(dead))
            return web.json_response({"accepted": len(good), "rejected": refused}, status=400, dumps=_dumps)
        return web.json_response({"accepted": len(good)}, status=202)

    async def _body(self, request: web.Request) -> bytes:
        if request.content_type != "application/json":
            raise _json_error(
                web.HTTPUnsupportedMediaType, f"Content-Type {request.content_type!r}; expected application/json"
            )
        if request.content_length is not None and request.content_length > self.limits.max_body_bytes:
            raise _json_error(PayloadTooLarge, f"body over {self.limits.max_body_bytes} bytes")
        return await request.read()  # aiohttp answers 413 past client_max_size

    # -- the doors -----------------------------------------------------------------------------------------
    async def post_readings(self, request: web.Request) -> web.Response:
        subject = await self.doors.authenticate(request, OWNER)
        owner = self.owners.get(subject.id)
        if owner is None:
            raise _json_error(web.HTTPForbidden, f"owner {subject.id} is not in the owners file")
        body = await self._body(request)
        try:
            readings = intake.readings_in(body)
        except InvalidReading as exc:
            return await self._write(owner.region, "readings", subject, [(body, exc)])
        foreign = sorted(  # a station id that is not text is no station of anyone's: refused below as invalid
            {
                r["station_id"]
                for r in readings
                if isinstance(r, dict)
                and isinstance(r.get("station_id"), str)
                and r["station_id"] not in owner.stations
            }
        )
        if foreign:
            raise _json_error(
                web.HTTPForbidden,
                f"owner {owner.id} may not send readings of {', '.join(foreign[:20])}",
                stations=foreign[:100],
            )
        self._limit(subject, len(readings), owner.rate_per_s, owner.burst)
        source, now = f"gateway:{owner.id}", int(self.clock() * 1000)
        items: list[tuple[object, AvroRecord | InvalidReading]] = []
        for raw in readings:
            try:
                items.append(
                    (raw, intake.reading_record(raw, sensor_kinds=self.sensor_kinds, source=source, produced_at=now))
                )
            except InvalidReading as exc:
                items.append((raw, exc))
        return await self._write(owner.region, "readings", subject, items)

    def _check_headers(self, request: web.Request, target: OrionTarget) -> None:
        service = request.headers.get("Fiware-Service", "").lower()
        path = request.headers.get("Fiware-ServicePath", "/")
        if service != target.service:
            raise _json_error(web.HTTPBadRequest, f"Fiware-Service {service!r}; this door is {target.service}'s")
        sensors = target.sensor_service_path
        if sensors is None:
            raise _json_error(web.HTTPForbidden, f"orion {target.id} has no sensor_service_path: it sends no readings")
        if path == target.service_path or not (path == sensors or path.startswith(sensors + "/")):
            raise _json_error(
                web.HTTPBadRequest,
                f"Fiware-ServicePath {path!r}: the subscription must watch only the sensors' path {sensors!r}, "
                f"never {target.service_path!r} where the hub writes",
            )

    async def post_notification(self, request: web.Request) -> web.Response:
        subject = await self.doors.authenticate(request, ORION)
        target = self.orions.get(request.match_info["orion"])
        if target is None or target.id != subject.id:
            raise _json_error(web.HTTPForbidden, f"the token of {subject.id} does not open {request.path}")
        self._check_headers(request, target)
        body = await self._body(request)
        try:
            entities = parse_notification(body)
        except NotificationError as exc:
            return await self._write(target.region, "orion", subject, [(body, exc)])
        self._limit(subject, len(entities), self.limits.orion_rate_per_s, self.limits.orion_burst)
        stations, now, fmt = (
            self.packs[target.region].stations,
            int(self.clock() * 1000),
            request.headers.get("Ngsiv2-AttrsFormat"),
        )
        items: list[tuple[object, AvroRecord | InvalidReading]] = []
        for entity in entities:
            try:
                record = entity_record(
                    entity, orion=target.id, fmt_header=fmt, mappings=self.tables, stations=stations, produced_at=now
                )
                items.append((entity, record))
            except InvalidReading as exc:
                items.append((entity, exc))
        return await self._write(target.region, "orion", subject, items)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"owners": len(self.owners), "orions": len(self.orions)})


def _key_of(raw: object) -> tuple[str | None, bytes | None]:
    """The station id of a JSON reading (or the id of an NGSI entity), as the dead letter's key."""
    if not isinstance(raw, dict):
        return None, None
    station = raw.get("station_id") if isinstance(raw.get("station_id"), str) else None
    key = station or (raw.get("id") if isinstance(raw.get("id"), str) else None)
    return station, key.encode() if key else None


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@web.middleware
async def _count(request: web.Request, handler: Handler) -> web.StreamResponse:
    door = (
        "orion" if request.path.startswith("/v1/orion/") else "readings" if request.path == "/v1/readings" else "other"
    )
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        metrics.GATEWAY_REQUESTS.labels(door, str(exc.status)).inc()
        raise
    metrics.GATEWAY_REQUESTS.labels(door, str(response.status)).inc()
    if 200 <= response.status < 300 and door != "other":
        metrics.GATEWAY_ACCEPT_SECONDS.labels(door).observe(time.perf_counter() - started)
    return response


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=gateway.limits.max_body_bytes, middlewares=[_count])
    app.router.add_post("/v1/readings", gateway.post_readings)
    app.router.add_post("/v1/orion/{orion}/notifications", gateway.post_notification)
    app.router.add_get("/healthz", gateway.healthz)
    add_openapi(app, "gateway")
    return app


async def serve_gateway(
    gateway: Gateway, *, host: str, port: int, stop: asyncio.Event, progress: Progress = lambda _m: None
) -> None:
    """Serve until stop is set; the Kafka producer is started first and flushed last."""
    health.READINESS.waiting("kafka", "starting the producer")
    await gateway.sender.start()
    health.READINESS.ok("kafka", "producer started")
    runner = web.AppRunner(build_app(gateway), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    progress(f"gateway: http://{host}:{bound}/v1/readings and /v1/orion/<id>/notifications; Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await gateway.sender.stop()
