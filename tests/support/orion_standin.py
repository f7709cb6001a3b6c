"""A FIWARE Orion stand-in for the tests: exactly the NGSI-v2 requests the hub uses, as Orion's API manual
describes them, and Orion's refusals with Orion's error bodies.

Implemented (per tenant ``Fiware-Service`` and ``Fiware-ServicePath``):

- ``POST /v2/op/update`` with ``actionType`` ``append`` (create, or add/replace attributes) -> 204;
- ``GET /v2/entities`` (``type``, ``options=keyValues``, ``limit``/``offset``), ``GET|DELETE /v2/entities/{id}``,
  ``DELETE /v2/entities/{id}/attrs/{attr}``;
- ``GET|POST /v2/subscriptions``, ``GET|PATCH|DELETE /v2/subscriptions/{id}``;
- notifications: on every change of an entity a subscription covers, ``POST`` to its ``http``/
  ``httpCustom`` URL with ``{"subscriptionId", "data": [entity]}`` in ``normalized`` or ``keyValues``,
  headers ``Fiware-Service``, ``Fiware-ServicePath``, ``Ngsiv2-AttrsFormat``, ``Fiware-Correlator`` and
  the subscription's ``httpCustom.headers``; a non-2xx answer marks the subscription ``failed``.

Refused as Orion refuses them (400 ``{"error": "BadRequest", "description": …}``): forbidden characters
``< > " ' = ; ( )`` in any string value (``Invalid characters in attribute value``), ids/types/names
that break the field syntax rules (plain ASCII, no whitespace, ``& ? / #``, ≤ 256), bad JSON
(``ParseError``), DateTime values that are not ISO 8601. On top of Orion, every entity it receives is
validated against the Smart Data Models schemas (``fiware/smart-data-models``, with its own validator
built here from the files): a failure is recorded in ``schema_failures`` and refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

MODELS = Path(__file__).resolve().parents[2] / "fiware" / "smart-data-models"
FORBIDDEN = set("<>\"'=;()")
ID_FORBIDDEN = set("&?/#") | FORBIDDEN
SERVICE = re.compile(r"[A-Za-z0-9_]{1,50}")
SERVICE_PATH = re.compile(r"/|(/[A-Za-z0-9_]{1,50}){1,10}")
SCHEMAS = {
    "Alert": "dataModel.Alert/Alert/schema.json",
    "WeatherObserved": "dataModel.Weather/WeatherObserved/schema.json",
    "WaterObserved": "dataModel.Environment/WaterObserved/schema.json",
}
SHARED = (
    "data-models/common-schema.json",
    "dataModel.Alert/alert-schema.json",
    "dataModel.Weather/weather-schema.json",
    "dataModel.Environment/Environment-schema.json",
)


def _validators() -> dict[str, Draft202012Validator]:
    def load(rel):
        return json.loads((MODELS / rel).read_text(encoding="utf-8"))

    docs = [load(rel) for rel in SHARED] + [load(rel) for rel in SCHEMAS.values()]
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    return {
        t: Draft202012Validator(load(rel), registry=registry, format_checker=FormatChecker())
        for t, rel in SCHEMAS.items()
    }


class Refused(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _bad(description: str) -> Refused:
    return Refused(400, "BadRequest", description)


def _check_id_field(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise _bad(f"Invalid characters in {what}" if isinstance(value, str) else f"{what} is not a string")
    if len(value) > 256:
        raise _bad(f"{what} length: {len(value)}, max length supported: 256")
    if any(ord(c) < 0x21 or ord(c) > 0x7E or c in ID_FORBIDDEN for c in value):
        raise _bad(f"Invalid characters in {what}")


def _check_value(value: object) -> None:
    if isinstance(value, str) and FORBIDDEN & set(value):
        raise _bad("Invalid characters in attribute value")
    if isinstance(value, dict):
        for v in value.values():
            _check_value(v)
    if isinstance(value, list):
        for v in value:
            _check_value(v)


def _datetime(text: object) -> str:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise _bad("date has invalid format")
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _attribute(name: str, raw: object) -> dict:
    _check_id_field(name, "attribute name")
    if name in ("dateCreated", "dateModified", "dateExpires", "*", "geo:distance"):
        raise _bad(f"attribute name {name} is reserved")
    attr = raw if isinstance(raw, dict) else {"value": raw}
    value = attr.get("value")
    default = "Text" if isinstance(value, str) else "Number" if isinstance(value, (int, float)) else "StructuredValue"
    ngsi_type = attr.get("type", default)
    _check_id_field(ngsi_type, "attribute type")
    _check_value(value)
    metadata = attr.get("metadata") or {}
    for meta_name, meta in metadata.items():
        _check_id_field(meta_name, "metadata name")
        _check_value(meta.get("value") if isinstance(meta, dict) else meta)
    if ngsi_type == "DateTime":
        value = _datetime(value)
    return {"type": ngsi_type, "value": value, "metadata": metadata}


def key_values(entity: dict) -> dict:
    return {k: v if k in ("id", "type") else v["value"] for k, v in entity.items()}


class OrionStandIn:
    """One Orion; start() on a free port, stop() at the end. State is kept per (service, path)."""

    def __init__(self, *, require_header: tuple[str, str] | None = None, validate_models: bool = True):
        self.entities: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self.subscriptions: dict[str, dict] = {}  # id -> {"service", "path", "body", ...}
        self.received: list[dict] = []  # every entity of every accepted update, as sent
        self.schema_failures: list[tuple[str, list[str]]] = []
        self.notifications: list[tuple[str, int | None]] = []  # (subscription id, answer status)
        self.require_header = require_header
        self.validate_models = validate_models
        self.fail_with: int | None = None  # answer every request with this status (an Orion in trouble)
        self.refuse_ids: set[str] = set()  # refuse updates naming these entities with 400 (fault injection)
        self.requests = 0
        self._validators = _validators()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self.url = ""

    # -- server ------------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application(middlewares=[self._errors])
        app.router.add_post("/v2/op/update", self.op_update)
        app.router.add_get("/v2/entities", self.list_entities)
        app.router.add_get("/v2/entities/{id}", self.get_entity)
        app.router.add_delete("/v2/entities/{id}", self.delete_entity)
        app.router.add_delete("/v2/entities/{id}/attrs/{attr}", self.delete_attribute)
        app.router.add_get("/v2/subscriptions", self.list_subscriptions)
        app.router.add_post("/v2/subscriptions", self.create_subscription)
        app.router.add_get("/v2/subscriptions/{id}", self.get_subscription)
        app.router.add_patch("/v2/subscriptions/{id}", self.patch_subscription)
        app.router.add_delete("/v2/subscriptions/{id}", self.delete_subscription)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        self._session = aiohttp.ClientSession()
        self.url = f"http://{host}:{site._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        self.requests += 1
        try:
            if self.fail_with is not None:
                raise Refused(self.fail_with, "InternalError", "the stand-in was told to fail")
            if self.require_header and request.headers.get(self.require_header[0]) != self.require_header[1]:
                raise Refused(401, "Unauthorized", "missing or wrong auth header (PEP proxy)")
            return await handler(request)
        except Refused as exc:
            return web.json_response({"error": exc.error, "description": exc.description}, status=exc.status)

    @staticmethod
    def _tenant(request: web.Request) -> tuple[str, str]:
        service = request.headers.get("Fiware-Service", "")
        path = request.headers.get("Fiware-ServicePath", "/")
        if service and not SERVICE.fullmatch(service):
            raise _bad("bad character in tenant name")
        if not path.startswith("/"):
            raise _bad("Only /absolute/ Service Paths allowed [a service path must begin with /]")
        if not SERVICE_PATH.fullmatch(path):
            raise _bad("a component of ServicePath contains an illegal character")
        return service.lower(), path

    @staticmethod
    async def _json(request: web.Request) -> object:
        if request.content_type != "application/json":
            raise Refused(415, "UnsupportedMediaType", f"not supported content type: {request.content_type}")
        try:
            return json.loads(await request.read())
        except ValueError:
            raise Refused(400, "ParseError", "Errors found in incoming JSON buffer") from None

    # -- entities ----------------------------------------------------------------------------------------
    def _model_check(self, entity: dict) -> None:
        validator = self._validators.get(entity["type"])
        if not self.validate_models or validator is None:
            return
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(key_values(entity))
        ]
        if errors:
            self.schema_failures.append((entity["id"], errors))
            raise _bad(f"entity {entity['id']} does not follow the {entity['type']} Smart Data Model: {errors[0]}")

    async def op_update(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        body = await self._json(request)
        if (
            not isinstance(body, dict)
            or body.get("actionType") != "append"
            or not isinstance(body.get("entities"), list)
        ):
            raise _bad("the stand-in implements actionType append with an entities array, as the hub uses it")
        options = request.query.get("options", "")
        parsed = []
        for raw in body["entities"]:
            if not isinstance(raw, dict):
                raise _bad("entity is not an object")
            _check_id_field(raw.get("id"), "entity id")
            if raw["id"] in self.refuse_ids:
                raise _bad(f"the stand-in was told to refuse {raw['id']}")
            _check_id_field(raw.get("type", "Thing"), "entity type")
            attrs = {
                k: _attribute(k, {"value": v} if options == "keyValues" else v)
                for k, v in raw.items()
                if k not in ("id", "type")
            }
            parsed.append({"id": raw["id"], "type": raw.get("type", "Thing"), **attrs})
        store = self.entities.setdefault(tenant, {})
        for entity in parsed:
            key = (entity["id"], entity["type"])
            merged = {**store.get(key, {}), **entity}
            self._model_check(merged)
            store[key] = merged
            self.received.append(entity)
            self._notify(tenant, merged)
        return web.Response(status=204)

    def _find(self, request: web.Request) -> tuple[dict, tuple[str, str]]:
        store = self.entities.get(self._tenant(request), {})
        wanted_type = request.query.get("type")
        for (entity_id, entity_type), entity in store.items():
            if entity_id == request.match_info["id"] and wanted_type in (None, entity_type):
                return entity, (entity_id, entity_type)
        raise Refused(404, "NotFound", "The requested entity has not been found. Check type and id")

    @staticmethod
    def _render(entity: dict, options: str) -> dict:
        return key_values(entity) if "keyValues" in options else entity

    async def list_entities(self, request: web.Request) -> web.Response:
        store = self.entities.get(self._tenant(request), {})
        wanted = request.query.get("type")
        found = [e for (_, t), e in sorted(store.items()) if wanted in (None, t)]
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 20))
        page = [self._render(e, request.query.get("options", "")) for e in found[offset : offset + limit]]
        return web.json_response(page, headers={"Fiware-Total-Count": str(len(found))})

    async def get_entity(self, request: web.Request) -> web.Response:
        entity, _ = self._find(request)
        return web.json_response(self._render(entity, request.query.get("options", "")))

    async def delete_entity(self, request: web.Request) -> web.Response:
        _, key = self._find(request)
        del self.entities[self._tenant(request)][key]
        return web.Response(status=204)

    async def delete_attribute(self, request: web.Request) -> web.Response:
        entity, _ = self._find(request)
        if request.match_info["attr"] not in entity or request.match_info["attr"] in ("id", "type"):
            raise Refused(404, "NotFound", "The entity does not have such an attribute")
        del entity[request.match_info["attr"]]
        return web.Response(status=204)

    # -- subscriptions -----------------------------------------------------------------------------------
    def _subscription(self, request: web.Request) -> dict:
        sub = self.subscriptions.get(request.match_info["id"])
        if sub is None or (sub["service"], sub["path"]) != self._tenant(request):
            raise Refused(404, "NotFound", "The requested subscription has not been found. Check id")
        return sub

    @staticmethod
    def _check_subscription(body: object) -> None:
        if not isinstance(body, dict):
            raise _bad("subscription is not an object")
        entities = (body.get("subject") or {}).get("entities")
        if not isinstance(entities, list) or not entities or any(("id" in e) == ("idPattern" in e) for e in entities):
            raise _bad("subject.entities: each needs id or idPattern")
        notification = body.get("notification") or {}
        if ("http" in notification) == ("httpCustom" in notification):
            raise _bad("notification needs http or httpCustom")
        if not str((notification.get("http") or notification.get("httpCustom")).get("url", "")).startswith("http"):
            raise _bad("Invalid URL")
        if notification.get("attrsFormat", "normalized") not in ("normalized", "keyValues", "values"):
            raise _bad("invalid attrsFormat")

    def _view(self, sub: dict) -> dict:
        return {"id": sub["id"], **sub["body"], "status": sub["status"]}

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        found = [self._view(s) for s in self.subscriptions.values() if (s["service"], s["path"]) == tenant]
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 20))
        return web.json_response(found[offset : offset + limit], headers={"Fiware-Total-Count": str(len(found))})

    async def create_subscription(self, request: web.Request) -> web.Response:
        service, path = self._tenant(request)
        body = await self._json(request)
        self._check_subscription(body)
        sub_id = uuid.uuid4().hex[:24]
        self.subscriptions[sub_id] = {"id": sub_id, "service": service, "path": path, "body": body, "status": "active"}
        return web.Response(status=201, headers={"Location": f"/v2/subscriptions/{sub_id}"})

    async def get_subscription(self, request: web.Request) -> web.Response:
        return web.json_response(self._view(self._subscription(request)))

    async def patch_subscription(self, request: web.Request) -> web.Response:
        sub = self._subscription(request)
        patch = await self._json(request)
        if not isinstance(patch, dict):
            raise _bad("subscription update is not an object")
        sub["status"] = patch.pop("status", sub["status"])
        body = {**sub["body"], **patch}
        self._check_subscription(body)
        sub["body"] = body
        return web.Response(status=204)

    async def delete_subscription(self, request: web.Request) -> web.Response:
        sub = self._subscription(request)
        del self.subscriptions[sub["id"]]
        return web.Response(status=204)

    # -- notifications -----------------------------------------------------------------------------------
    @staticmethod
    def _covers(body: dict, entity: dict) -> bool:
        for wanted in body["subject"]["entities"]:
            if wanted.get("type") not in (None, entity["type"]):
                continue
            if wanted.get("id") == entity["id"] or (
                "idPattern" in wanted and re.fullmatch(wanted["idPattern"], entity["id"])
            ):
                return True
        return False

    def _notify(self, tenant: tuple[str, str], entity: dict) -> None:
        for sub in list(self.subscriptions.values()):
            if (
                (sub["service"], sub["path"]) == tenant
                and sub["status"] in ("active", "failed")
                and self._covers(sub["body"], entity)
            ):
                task = asyncio.get_running_loop().create_task(self._send(sub, tenant, entity))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, sub: dict, tenant: tuple[str, str], entity: dict) -> None:
        notification = sub["body"]["notification"]
        fmt = notification.get("attrsFormat", "normalized")
        custom = notification.get("httpCustom") or {}
        url = (notification.get("http") or custom)["url"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Fiware-Service": tenant[0],
            "Fiware-ServicePath": tenant[1],
            "Ngsiv2-AttrsFormat": fmt,
            "Fiware-Correlator": uuid.uuid4().hex,
            **custom.get("headers", {}),
        }
        data = key_values(entity) if fmt == "keyValues" else entity
        body = json.dumps({"subscriptionId": sub["id"], "data": [data]}, ensure_ascii=False).encode()
        status = None
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as answer:
                status = answer.status
                await answer.read()
        except (aiohttp.ClientError, TimeoutError):
            pass
        self.notifications.append((sub["id"], status))
        sub["status"] = "active" if status is not None and 200 <= status < 300 else "failed"


# -- a test pack: Tochigi with a municipal river gauge and rain gauge of 那須塩原市 fed by its Orion -----------

RIVER_GAUGE = "R-09-213-01"  # test-defined (no real gauge list is at hand): 那珂川 at 黒磯, 那須塩原市
RIVER_ENTITY = "urn:ngsi-ld:WaterObserved:nasushiobara-naka-kuroiso"
RAIN_ENTITY = "urn:ngsi-ld:WeatherObserved:nasushiobara-rain-01"


def make_nasushiobara_pack(tochigi_dir: Path, dest: Path, orion_id: str = "nasushiobara") -> Path:
    """regions/tochigi plus a river gauge with published stages and an Orion table for orion_id."""
    import shutil

    import yaml

    shutil.copytree(tochigi_dir, dest)
    manifest = yaml.safe_load((dest / "region.yaml").read_text(encoding="utf-8"))
    manifest["files"]["station_settings"] = "stations.yaml"
    manifest["files"]["orion_entities"] = "orion_entities.csv"
    (dest / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    with open(dest / "stations.csv", "a", encoding="utf-8") as handle:
        handle.write(f"{RIVER_GAUGE},river_level_gauge,那珂川黒磯テスト,Naka Kuroiso test,36.975,140.06,300\n")
    stages = {"standby_m": 1.0, "caution_m": 2.0, "evacuation_m": 2.6, "danger_m": 3.1}
    (dest / "stations.yaml").write_text(yaml.safe_dump({RIVER_GAUGE: {"river_stages": stages}}), encoding="utf-8")
    (dest / "orion_entities.csv").write_text(
        "orion,entity_id,station_id,attribute,quantity\n"
        f"{orion_id},{RIVER_ENTITY},{RIVER_GAUGE},,\n"
        f"{orion_id},{RAIN_ENTITY},41091,,\n",
        encoding="utf-8",
    )
    return dest
