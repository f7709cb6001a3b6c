"""The described interfaces: every HTTP door's OpenAPI 3.1 document (openapi/) is valid, served by the door itself
and names exactly the routes the door has; asyncapi.yaml is what the catalog and avro/ generate, and valid
AsyncAPI 3.0 (the official JSON Schema, vendored). The live fuzzing is tests/integration/test_openapi_doors.py."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from openapi_spec_validator import validate

from streams.cli import cli
from streams.delivery import feed_server
from streams.delivery.atom import CurrentAlerts
from streams.gateway import server as gateway
from streams.history import server as history_server
from streams.ops.asyncapi_file import render
from streams.packs.region_pack import load_pack
from streams.platform import kafka, tls
from streams.platform.access_file import default_access_path, load_access
from streams.platform.avro import default_store
from streams.platform.openapi_docs import DOORS, load_openapi
from streams.platform.topic_catalog import load_default_catalog
from streams.publicmap import server as web_map
from streams.publicmap.live_stream import LiveStream
from streams.registry import server as registry_server
from streams.security.token_store import TokenStore

VENDOR = Path(__file__).resolve().parents[2] / "vendor" / "asyncapi" / "asyncapi-3.0.0.schema.json.gz"
METHODS = {"get", "post", "put", "delete", "patch"}


def _apps(project_root: Path, tmp_path: Path) -> dict[str, web.Application]:
    tochigi = load_pack(project_root / "regions" / "tochigi")
    store = default_store()
    registry = registry_server.build_registry(store, load_default_catalog(), [tochigi.topics_input()])
    state = web_map.WebState([tochigi], LiveStream(heartbeat_s=1))
    handlers = web_map.WebHandlers(
        state,
        web_map.load_assets(project_root / "web"),
        web_map.page_config([tochigi], None, "", 1),
        web_map.security_headers(None),
    )
    checker = feed_server.CredentialChecker("127.0.0.1:9", tls.ensure_ca(tmp_path / "tls").cert_file)
    doors = gateway.Doors(TokenStore(tmp_path / "tokens.json"))
    hub_gateway = gateway.Gateway(
        packs=[tochigi],
        owners={},
        bridge=None,
        tables={},
        topics={},
        sender=kafka.BatchSender("127.0.0.1:9"),
        store=store,
        doors=doors,
    )
    return {
        "registry": registry_server.build_app(registry),
        "web": web_map.build_app(handlers),
        "feed": feed_server.build_app(
            CurrentAlerts(), load_access(default_access_path()), checker, sender_names={}, zone_polygons={}
        ),
        "gateway": gateway.build_app(hub_gateway),
        "history": history_server.build_app(history_server.HistoryService([tochigi], tmp_path / "archive")),
    }


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method.lower() in METHODS and route.resource is not None:
            found.add((route.method.lower(), route.resource.canonical))
    return found


def _documented(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}


@pytest.mark.parametrize("door", DOORS)
def test_each_openapi_document_is_valid_openapi_3_1(door):
    document = load_openapi(door)

    validate(document)  # openapi-spec-validator: raises on an invalid document

    assert document["openapi"].startswith("3.1") and document["info"]["title"]


async def test_each_door_serves_its_document_and_has_exactly_the_documented_routes(project_root, tmp_path):
    for door, app in _apps(project_root, tmp_path).items():
        document = load_openapi(door)
        async with TestClient(TestServer(app)) as client:
            answer = await client.get("/openapi.json")
            served = await answer.json()
        assert answer.status == 200 and served == json.loads(json.dumps(document)), door
        assert _routes(app) == _documented(document), door


def test_a_wrong_document_is_refused_by_the_validator():
    broken = copy.deepcopy(load_openapi("registry"))
    broken["paths"]["/subjects"]["get"]["responses"]["200"] = "a string is no response object"

    with pytest.raises(Exception, match="not valid|is not of type"):
        validate(broken)


def _asyncapi_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(gzip.decompress(VENDOR.read_bytes()))
    return jsonschema.validators.validator_for(schema)(schema)


def test_asyncapi_yaml_is_what_the_catalog_and_the_schemas_generate(project_root):
    result = CliRunner().invoke(cli, ["asyncapi", "--check"])

    assert result.exit_code == 0, result.output
    assert (project_root / "asyncapi.yaml").read_text(encoding="utf-8") == render(project_root)


def test_asyncapi_drift_is_caught(project_root, tmp_path):
    root = tmp_path / "checkout"
    for folder in ("avro", "topics"):
        (root / folder).mkdir(parents=True)
    for path in [*(project_root / "avro").rglob("*.avsc"), project_root / "topics" / "catalog.yaml"]:
        target = root / path.relative_to(project_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    catalog = root / "topics" / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("retention: 90d", "retention: 120d", 1))

    assert render(root) != render(project_root)


def test_asyncapi_yaml_is_valid_asyncapi_3_and_describes_every_topic_with_its_framing(project_root):
    document = yaml.safe_load((project_root / "asyncapi.yaml").read_text(encoding="utf-8"))
    validator = _asyncapi_validator()

    assert list(validator.iter_errors(document)) == []
    catalog = load_default_catalog()
    assert set(document["channels"]) == {t.id for t in catalog.templates}
    municipal = document["channels"]["alerts.municipality"]
    assert municipal["address"] == "{prefix}.{region}.alerts.{municipality_code}"
    (ref,) = municipal["messages"].values()
    message = document["components"]["messages"][ref["$ref"].rpartition("/")[2]]
    assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
    assert message["payload"]["schema"]["name"] == "Alert" and message["payload"]["schemaFormat"].startswith(
        "application/vnd.apache.avro+json"
    )
    raw = document["components"]["messages"]["SensorReading"]["bindings"]["kafka"]
    assert "schemaIdPayloadEncoding" not in raw  # the hub's own topics: single-object encoding
    broken = copy.deepcopy(document)
    broken["channels"]["alerts"]["bindings"]["kafka"]["partitions"] = "three"
    assert list(validator.iter_errors(broken)), "the validator must catch a wrong binding"
