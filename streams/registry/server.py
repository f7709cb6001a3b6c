"""`bosai registry serve`: a read-only Confluent-compatible schema registry over the hub's ``avro/`` schemas.

Standard Avro tooling (Confluent's ``AvroDeserializer`` and ``KafkaAvroDeserializer``, ``kcat -s avro -r``,
Kafka UIs) decodes the Confluent wire format by asking a registry for the schema of each message's id. The
hub's schemas are files, so this registry serves them and nothing else, with ids derived from their
fingerprints (:mod:`streams.platform.schema_registry`): the same ids the hub writes, on every machine.

    GET  /subjects                                   record names and <topic>-value of the client topics
    GET  /subjects/{subject}/versions                [1, 2, …]
    GET  /subjects/{subject}/versions/{v|latest}     {subject, version, id, schema}
    GET  /subjects/{subject}/versions/{v}/schema     the schema text
    POST /subjects/{subject}                         is this schema a version of the subject? (look-up)
    GET  /schemas/ids/{id}  (/schema, /versions, /subjects)
    GET  /schemas/types, /config, /config/{subject}, /mode
    GET  /healthz, /openapi.json

Every write (register, delete, config, mode) is refused with Confluent's 403 ``{"error_code": 40301, …}``;
another method on a known path is 405, an unknown path 404, both with an ``error_code`` body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from streams.kernel.topics import Catalog, RegionTopics, expand
from streams.platform import metrics
from streams.platform import schema_registry as core
from streams.platform.avro import SchemaStore, text_fingerprint
from streams.platform.described import add_openapi
from streams.platform.wire import subject_of

log = logging.getLogger("bosai.registry")
MEDIA = "application/vnd.schemaregistry.v1+json"
_MAX_BODY = 1 << 20


def build_registry(store: SchemaStore, catalog: Catalog, regions: Sequence[RegionTopics]) -> core.Registry:
    """The registry's content: every schema of ``avro/`` (with its kept versions), the record-name subjects,
    and ``<topic>-value`` of every topic the catalog frames for clients (for these regions; other prefixes,
    e.g. a replay's, by pattern)."""
    schemas = [
        core.RegisteredSchema(s.name, s.version, s.full, s.registry_id, text_fingerprint(s.full) or b"")
        for s in store.all_versions()
    ]
    named = {
        subject_of(spec.name): spec.value_schema for spec in expand(catalog, regions) if spec.framing == "confluent"
    }
    names = [r.name for r in regions]
    patterns = tuple(
        (core.subject_pattern(t.name, names), t.value_schema) for t in catalog.templates if t.framing == "confluent"
    )
    return core.Registry(schemas, core.TopicSubjects(named, patterns))


def _answer(answer: core.Answer) -> web.Response:
    status, body = answer
    if isinstance(body, str) and status == 200:  # a schema's own text
        return web.Response(text=body, status=status, content_type=MEDIA)
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status, content_type=MEDIA)


class RegistryHandlers:
    """Each route: the core's answer, as JSON."""

    def __init__(self, registry: core.Registry):
        self.registry = registry

    async def root(self, _request: web.Request) -> web.Response:
        return _answer((200, {}))

    async def subjects(self, _request: web.Request) -> web.Response:
        return _answer((200, self.registry.subjects()))

    async def versions(self, request: web.Request) -> web.Response:
        return _answer(self.registry.subject_versions(request.match_info["subject"]))

    async def version(self, request: web.Request) -> web.Response:
        return _answer(self.registry.subject_version(request.match_info["subject"], request.match_info["version"]))

    async def version_schema(self, request: web.Request) -> web.Response:
        status, body = self.registry.subject_version(request.match_info["subject"], request.match_info["version"])
        return _answer((status, body["schema"] if status == 200 else body))

    async def lookup(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            text = body["schema"]
            if not isinstance(text, str) or body.get("schemaType", "AVRO") != "AVRO":
                raise TypeError("schema")
        except (ValueError, TypeError, KeyError, AttributeError):
            return _answer((422, {"error_code": core.INVALID_SCHEMA, "message": "Invalid schema: expected {schema}"}))
        return _answer(self.registry.lookup(request.match_info["subject"], text_fingerprint(text)))

    async def schema(self, request: web.Request) -> web.Response:
        return _answer(self.registry.schema(request.match_info["id"]))

    async def schema_text(self, request: web.Request) -> web.Response:
        return _answer(self.registry.schema_text(request.match_info["id"]))

    async def schema_versions(self, request: web.Request) -> web.Response:
        return _answer(self.registry.schema_versions(request.match_info["id"]))

    async def schema_subjects(self, request: web.Request) -> web.Response:
        return _answer(self.registry.schema_subjects(request.match_info["id"]))

    async def types(self, _request: web.Request) -> web.Response:
        return _answer((200, ["AVRO"]))

    async def config(self, _request: web.Request) -> web.Response:
        return _answer(self.registry.config())

    async def mode(self, _request: web.Request) -> web.Response:
        return _answer(self.registry.mode())

    async def refuse(self, request: web.Request) -> web.Response:
        return _answer(core.refused(request.method, request.path))

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"schemas": len(self.registry.by_id), "subjects": len(self.registry.subjects())})


_WRITES = (
    ("POST", "/subjects/{subject}/versions"),
    ("DELETE", "/subjects/{subject}"),
    ("DELETE", "/subjects/{subject}/versions/{version}"),
    ("PUT", "/config"),
    ("PUT", "/config/{subject}"),
    ("DELETE", "/config/{subject}"),
    ("PUT", "/mode"),
    ("PUT", "/mode/{subject}"),
)


@web.middleware
async def _confluent_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own 404/405/413 as Confluent's JSON errors; every answer counted by route and status."""
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "other"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405, 413):
            message = {404: "HTTP 404 Not Found", 405: "HTTP 405 Method Not Allowed", 413: "Request too large"}
            response = _answer((exc.status, {"error_code": exc.status, "message": message[exc.status]}))
            if exc.status == 405:
                response.headers["Allow"] = exc.headers.get("Allow", "")
        else:
            metrics.REGISTRY_REQUESTS.labels(route, str(exc.status)).inc()
            raise
    metrics.REGISTRY_REQUESTS.labels(route, str(response.status)).inc()
    return response


def build_app(registry: core.Registry) -> web.Application:
    handlers = RegistryHandlers(registry)
    app = web.Application(middlewares=[_confluent_errors], client_max_size=_MAX_BODY)
    get = app.router.add_get
    get("/", handlers.root)
    get("/subjects", handlers.subjects)
    get("/subjects/{subject}/versions", handlers.versions)
    get("/subjects/{subject}/versions/{version}", handlers.version)
    get("/subjects/{subject}/versions/{version}/schema", handlers.version_schema)
    app.router.add_post("/subjects/{subject}", handlers.lookup)
    get(r"/schemas/ids/{id}", handlers.schema)
    get(r"/schemas/ids/{id}/schema", handlers.schema_text)
    get(r"/schemas/ids/{id}/versions", handlers.schema_versions)
    get(r"/schemas/ids/{id}/subjects", handlers.schema_subjects)
    get("/schemas/types", handlers.types)
    get("/config", handlers.config)
    get("/config/{subject}", handlers.config)
    get("/mode", handlers.mode)
    get("/healthz", handlers.healthz)
    for method, path in _WRITES:
        app.router.add_route(method, path, handlers.refuse)
    add_openapi(app, "registry")
    return app


async def serve_registry(
    registry: core.Registry, *, host: str, port: int, progress: Callable[[str], None], stop: asyncio.Event | None = None
) -> None:
    """Serve until cancelled (or ``stop`` is set)."""
    runner = web.AppRunner(build_app(registry), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or ()  # aiohttp's asyncio.Server: the port bound when 0
    bound = sockets[0].getsockname()[1] if sockets else port
    started = time.monotonic()
    progress(
        f"schema registry: http://{host}:{bound} ({len(registry.by_id)} schemas, {len(registry.subjects())} "
        f"subjects; read-only); Ctrl-C stops"
    )
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await runner.cleanup()
        log.info("schema registry stopped after %.0f s", time.monotonic() - started)
