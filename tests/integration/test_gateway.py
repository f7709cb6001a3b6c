"""`bosai gateway` on the real broker: good readings acknowledged after Kafka has them, bad input refused with
reasons and dead-lettered, every kind of authentication and limit failure answered as due."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, replace

import aiohttp
import pytest
import yaml
from aiohttp import web

from streams.fiware.bridge_file import load_bridge_config
from streams.fiware.orion_table import load_orion_table
from streams.gateway.owners import load_owners
from streams.gateway.server import Doors, Gateway, Limits, build_app
from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.access_file import generate, load_access, render
from streams.platform.avro import DEAD_LETTER, READING, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.token_store import TokenStore
from tests.support.orion_standin import RIVER_ENTITY, RIVER_GAUGE, make_nasushiobara_pack

STORE = default_store()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Env:
    url: str
    topics: HubTopics
    bootstrap: str
    tokens: TokenStore
    owner_token: str
    neighbour_token: str
    orion_token: str
    gateway: Gateway

    async def written(self, topic: str, action) -> list:
        """What action() wrote to topic (decoded), read back from Kafka."""
        before = await kafka.end_offsets(self.bootstrap, [topic])
        result = await action()
        after = await kafka.end_offsets(self.bootstrap, [topic])
        codec = AvroCodec(STORE, DEAD_LETTER if topic == self.topics.deadletter else READING)
        return result, [codec.decode(m.value) for m in await kafka.read_range(self.bootstrap, before, after)]


@pytest.fixture(scope="module")
async def env(kafka_bootstrap, project_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway")
    pack = load_pack(make_nasushiobara_pack(project_root / "regions" / "tochigi", root / "tochigi"))
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"gw{uuid.uuid4().hex[:8]}")
    await apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()]))
    owners_file = root / "owners.yaml"
    owners_file.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"rate_per_s": 1000, "burst": 5000},
                "owners": [
                    {"id": "ns-kensetsu", "region": "tochigi", "stations": [RIVER_GAUGE, "41091"]},
                    {"id": "utsunomiya", "region": "tochigi", "stations": ["41277"], "rate_per_s": 1, "burst": 3},
                ],
            }
        )
    )
    access = root / "access.yaml"
    access.write_text(render(generate([pack], catalog)), encoding="utf-8")
    bridge_file = root / "bridge.yaml"
    orion = {
        "id": "nasushiobara",
        "url": "http://127.0.0.1:9",
        "service": "nasushiobara",
        "sensor_service_path": "/sensors",
    }
    bridge_file.write_text(
        yaml.safe_dump({"version": 1, "orions": [{**orion, "region": "tochigi", "municipalities": ["09213"]}]})
    )
    bridge = load_bridge_config(bridge_file, [pack], load_access(access), environ={})
    tokens = TokenStore(root / "tokens.json")
    gateway = Gateway(
        packs=[pack],
        owners=load_owners(owners_file, [pack]),
        bridge=bridge,
        tables=load_orion_table(pack, {"nasushiobara"}),
        topics={"tochigi": HubTopics.for_region(catalog, pack)},
        sender=kafka.BatchSender(kafka_bootstrap),
        store=STORE,
        doors=Doors(tokens, refresh_s=0.0),
        limits=Limits(max_body_bytes=64_000, max_readings=50),
    )
    await gateway.sender.start()
    runner = web.AppRunner(build_app(gateway))
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Env(
        url=f"http://127.0.0.1:{port}",
        topics=gateway.topics["tochigi"],
        bootstrap=kafka_bootstrap,
        tokens=tokens,
        owner_token=tokens.issue("owner:ns-kensetsu"),
        neighbour_token=tokens.issue("owner:utsunomiya"),
        orion_token=tokens.issue("orion:nasushiobara"),
        gateway=gateway,
    )
    await runner.cleanup()
    await gateway.sender.stop()


def river(level, hour=0, **changes):
    return {
        "station_id": RIVER_GAUGE,
        "observed_at": f"2026-07-01T{10 + hour:02d}:00:00+09:00",
        "measurements": [{"quantity": "water_level", "value": level, "unit": "m"}],
    } | changes


async def post(url, body, token=None, *, path="/v1/readings", headers=None, raw=None):
    sent = {
        "Content-Type": "application/json",
        **({"Authorization": f"Bearer {token}"} if token else {}),
        **(headers or {}),
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url + path, data=raw if raw is not None else json.dumps(body), headers=sent) as answer:
            text = await answer.text()
            return answer.status, (json.loads(text) if text.startswith("{") else text), answer.headers


async def test_a_batch_of_good_readings_is_answered_202_once_kafka_holds_every_one(env):
    batch = {"readings": [river(1.1, 0), river(1.2, 1), river(1.3, 2)]}
    (status, body, _), written = await env.written(env.topics.raw, lambda: post(env.url, batch, env.owner_token))
    assert (status, body) == (202, {"accepted": 3})
    assert [r["measurements"][0]["value"] for r in written] == [1.1, 1.2, 1.3]
    assert {(r["station_id"], r["sensor_kind"], r["source"]) for r in written} == {
        (RIVER_GAUGE, "RIVER_LEVEL_GAUGE", "gateway:ns-kensetsu")
    }


async def test_invalid_readings_are_answered_400_with_reasons_dead_lettered_and_the_valid_ones_of_the_batch_kept(env):
    batch = [
        river(1.5, 3),
        river(-30.0, 4),
        river(1.0, 5, measurements=[]),
        river(1.0, 6, observed_at="2026-07-01T16:00:00"),
        river(1.0, 7, measurements=[{"quantity": "water_level", "value": 1.0, "unit": "cm"}]),
        {
            "station_id": "41091",
            "observed_at": 1,
            "measurements": [{"quantity": "precipitation_1h", "value": 1, "unit": "mm"}],
        },
    ]
    (result, dead) = await env.written(
        env.topics.deadletter, lambda: env.written(env.topics.raw, lambda: post(env.url, batch, env.owner_token))
    )
    (status, body, _), accepted = result
    assert status == 400 and body["accepted"] == 1 and [r["measurements"][0]["value"] for r in accepted] == [1.5]
    reasons = [(r["index"], r["reason"]) for r in body["rejected"]]
    assert reasons == [
        (1, "impossible_value"),
        (2, "missing_field"),
        (3, "impossible_value"),
        (4, "impossible_value"),
        (5, "impossible_value"),
    ]
    assert all(r["detail"] for r in body["rejected"])
    assert [d["reason"] for d in dead] == [reason for _, reason in reasons]
    assert all(d["stage"] == "gateway.readings" and d["source_topic"] == "http:owner:ns-kensetsu" for d in dead)
    assert (
        json.loads(dead[0]["original_value"])["measurements"][0]["value"] == -30.0
        and dead[0]["original_key"] == RIVER_GAUGE.encode()
    )


async def test_a_body_that_is_not_json_is_refused_and_kept_whole_in_the_dead_letters(env):
    (status, body, _), dead = await env.written(
        env.topics.deadletter, lambda: post(env.url, None, env.owner_token, raw=b"{not json")
    )
    assert status == 400 and body["rejected"][0]["reason"] == "undecodable"
    assert [(d["reason"], d["original_value"]) for d in dead] == [("undecodable", b"{not json")]


async def test_missing_wrong_and_revoked_tokens_are_401_and_other_owners_stations_403_with_nothing_written(env):
    (status, _, headers), _ = await env.written(env.topics.raw, lambda: post(env.url, river(1.0)))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert (await post(env.url, river(1.0), "bst.nope." + "x" * 43))[0] == 401
    (status, body, _), written = await env.written(
        env.topics.raw, lambda: post(env.url, [river(1.0, 8)], env.neighbour_token)
    )
    assert status == 403 and body["stations"] == [RIVER_GAUGE] and written == []
    assert (await post(env.url, river(1.0, 8), env.orion_token))[0] == 403
    assert (await post(env.url, {"data": []}, env.owner_token, path="/v1/orion/nasushiobara/notifications"))[0] == 403
    spare = env.tokens.issue("owner:ns-kensetsu")
    assert (await post(env.url, river(1.0, 9), spare))[0] == 202
    assert (await post(env.url, river(1.0, 9), env.owner_token))[0] == 401, "issuing again rotates"
    env.tokens.revoke("owner:ns-kensetsu")
    assert (await post(env.url, river(1.0, 9), spare))[0] == 401, "a revoked token is refused at once"
    env.owner_token = env.tokens.issue("owner:ns-kensetsu")


async def test_size_count_rate_and_content_type_are_bounded(env):
    assert (await post(env.url, None, env.owner_token, raw=b"[" + b" " * 70_000 + b"]"))[0] == 413
    status, body, _ = await post(env.url, [river(1.0, i % 10) for i in range(51)], env.owner_token)
    assert status == 413 and "at most 50" in body["detail"]
    assert (await post(env.url, None, env.owner_token, raw=b"[]", headers={"Content-Type": "text/plain"}))[0] == 415
    rain = {
        "station_id": "41277",
        "observed_at": "2026-07-01T10:00:00+09:00",
        "measurements": [{"quantity": "precipitation_1h", "value": 1.0, "unit": "mm"}],
    }
    assert (await post(env.url, [rain, rain, rain], env.neighbour_token))[0] == 202
    status, _, headers = await post(env.url, [rain], env.neighbour_token)
    assert status == 429 and int(headers["Retry-After"]) >= 1


def notification(level, fmt="normalized", entity_id=RIVER_ENTITY):
    if fmt == "keyValues":
        entity = {
            "id": entity_id,
            "type": "WaterObserved",
            "waterLevel": level,
            "dateObserved": "2026-07-02T01:00:00.000Z",
        }
    else:
        entity = {
            "id": entity_id,
            "type": "WaterObserved",
            "waterLevel": {"type": "Number", "value": level, "metadata": {}},
            "dateObserved": {"type": "DateTime", "value": "2026-07-02T01:00:00.000Z", "metadata": {}},
        }
    return {"subscriptionId": "5f0c", "data": [entity]}


ORION_HEADERS = {"Fiware-Service": "nasushiobara", "Fiware-ServicePath": "/sensors", "Ngsiv2-AttrsFormat": "normalized"}
NOTIFY = "/v1/orion/nasushiobara/notifications"


async def test_the_orion_door_takes_notifications_of_the_sensors_path_only_with_the_orions_token(env):
    (status, _, _), written = await env.written(
        env.topics.raw, lambda: post(env.url, notification(2.2), env.orion_token, path=NOTIFY, headers=ORION_HEADERS)
    )
    assert status == 202 and [(r["station_id"], r["source"], r["measurements"][0]["value"]) for r in written] == [
        (RIVER_GAUGE, "orion:nasushiobara", 2.2)
    ]
    hub_path = {**ORION_HEADERS, "Fiware-ServicePath": "/bosai"}
    status, body, _ = await post(env.url, notification(2.2), env.orion_token, path=NOTIFY, headers=hub_path)
    assert status == 400 and "never '/bosai'" in body["detail"]
    assert (
        await post(
            env.url,
            notification(2.2),
            env.orion_token,
            path=NOTIFY,
            headers={**ORION_HEADERS, "Fiware-Service": "other"},
        )
    )[0] == 400
    assert (
        await post(
            env.url,
            notification(2.2),
            env.orion_token,
            path="/v1/orion/someone-else/notifications",
            headers=ORION_HEADERS,
        )
    )[0] == 403
    assert (await post(env.url, notification(2.2), None, path=NOTIFY, headers=ORION_HEADERS))[0] == 401


async def test_notified_entities_that_are_unknown_of_the_wrong_type_or_impossible_are_dead_lettered_with_reasons(env):
    body = {
        "subscriptionId": "5f0c",
        "data": [
            notification(2.3, "keyValues")["data"][0],
            notification(2.3, "keyValues", "urn:x:unknown")["data"][0],
            notification(900, "keyValues")["data"][0],
        ],
    }
    headers = {**ORION_HEADERS, "Ngsiv2-AttrsFormat": "keyValues"}
    (result, dead) = await env.written(
        env.topics.deadletter,
        lambda: env.written(env.topics.raw, lambda: post(env.url, body, env.orion_token, path=NOTIFY, headers=headers)),
    )
    (status, answer, _), accepted = result
    assert status == 400 and answer["accepted"] == 1 and len(accepted) == 1
    assert [d["reason"] for d in dead] == ["unknown_station", "impossible_value"]
    assert all(d["stage"] == "gateway.orion" for d in dead) and dead[0]["original_key"] == b"urn:x:unknown"


async def test_the_gateway_answers_as_its_document_says(env):
    """Schemathesis against both doors with an owner's token (last in this module: the fuzzing's wrong tokens
    leave the login limits of 127.0.0.1 raised)."""
    from tests.integration.test_openapi_doors import fuzz

    found = {"measurements": 0.0, "observed_at": 0, "station_id": ["", False], "location": {}}  # was a 500
    status, body, _headers = await post(env.url, found, env.owner_token)
    assert status == 400 and body["rejected"][0]["reason"], body
    await fuzz(env.url, "-H", f"Authorization: Bearer {env.owner_token}", config="gateway.toml")
