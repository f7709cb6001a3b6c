"""The Orion bridge both ways on the real broker, against the stand-in (or a real Orion: tests/support/orion_env.py).

End to end: a municipal river gauge's entity changes in 那須塩原市's Orion -> its subscription notifies the
gateway -> the reading is on the raw topic -> the hub worker raises a river-stage alert -> the bridge
upserts it into the same Orion as an Alert entity under /bosai -> the level falls -> the Cancel marks
the entity cleared. Every entity the hub sent follows its Smart Data Model.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import aiohttp
import pytest
import yaml
from aiohttp import web

from streams.fiware.bridge import redrive, routes_for, run_bridge
from streams.fiware.bridge_file import load_bridge_config
from streams.fiware.ngsi import parse_iso_ms
from streams.fiware.orion import OrionClient
from streams.fiware.orion_table import load_orion_table
from streams.fiware.subscribe import subscribe
from streams.gateway.owners import load_owners
from streams.gateway.server import Doors, Gateway, build_app
from streams.hub.processes import WorkerProcess
from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform import kafka, metrics
from streams.platform.access_file import generate, load_access, render
from streams.platform.avro import ALERT, DEAD_LETTER, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.token_store import TokenStore
from tests.support.orion_env import schema_problems, start_orion, with_auth
from tests.support.orion_standin import RIVER_ENTITY, RIVER_GAUGE, OrionStandIn, make_nasushiobara_pack

STORE = default_store()
T0 = "2026-07-01T10:00:00+09:00"


def sensor_entity(level: float, hour: int) -> dict:
    return {
        "id": RIVER_ENTITY,
        "type": "WaterObserved",
        "waterLevel": {"type": "Number", "value": level},
        "dateObserved": {"type": "DateTime", "value": f"2026-07-01T{hour:02d}:00:00+09:00"},
        "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [140.06, 36.975]}},
    }


def accepted_notifications() -> float:
    return metrics.GATEWAY_READINGS.labels("orion", "nasushiobara", "accepted")._value.get()


async def until(predicate, timeout_s: float, what: str, interval_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval_s)


@pytest.fixture(scope="module")
def setting(project_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("orion")
    pack = load_pack(make_nasushiobara_pack(project_root / "regions" / "tochigi", root / "tochigi"))
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"orion{uuid.uuid4().hex[:8]}")
    access = root / "access.yaml"
    access.write_text(render(generate([pack], catalog)), encoding="utf-8")
    return root, pack, catalog, load_access(access)


def bridge_config(root, pack, policy, orion, notify_base, **extra):
    orion_entry = {
        "id": "nasushiobara",
        "url": orion.url,
        "service": orion.service,
        "sensor_service_path": "/sensors",
        "region": "tochigi",
        "municipalities": ["那須塩原市"],
        "readings": "own_stations",
        "notify_url": f"{notify_base}/v1/orion/nasushiobara/notifications",
        "retry": {"max_attempts": 3, "initial_backoff_s": 0.05, "max_backoff_s": 0.2, "timeout_s": 5},
    } | extra
    path = root / f"bridge-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "orions": [orion_entry]}, allow_unicode=True))
    config = load_bridge_config(path, [pack], policy, environ={})
    return replace(config, orions=tuple(with_auth(t, orion) for t in config.orions))


async def test_a_river_gauge_notified_by_orion_raises_an_alert_that_arrives_in_orion_and_is_cleared_after_the_cancel(
    kafka_bootstrap, setting, tmp_path
):
    root, pack, catalog, policy = setting
    await apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()]))
    topics = HubTopics.for_region(catalog, pack)
    orion = await start_orion()
    host, notify_base = orion.gateway_host()
    config = bridge_config(root, pack, policy, orion, notify_base)
    target = config.orions[0]
    tokens = TokenStore(tmp_path / "tokens.json")
    owners_file = tmp_path / "owners.yaml"
    owners_file.write_text(
        yaml.safe_dump(
            {"version": 1, "owners": [{"id": "ns-kensetsu", "region": "tochigi", "stations": [RIVER_GAUGE]}]}
        )
    )
    owner_token = tokens.issue("owner:ns-kensetsu")
    gateway = Gateway(
        packs=[pack],
        owners=load_owners(owners_file, [pack]),
        bridge=config,
        tables=load_orion_table(pack, {"nasushiobara"}),
        topics={"tochigi": topics},
        sender=kafka.BatchSender(kafka_bootstrap),
        store=STORE,
        doors=Doors(tokens, refresh_s=0.0),
    )
    await gateway.sender.start()
    runner = web.AppRunner(build_app(gateway))
    await runner.setup()
    await web.TCPSite(runner, host, int(notify_base.rsplit(":", 1)[1])).start()
    worker = WorkerProcess(pack.path, catalog.prefix, kafka_bootstrap, tmp_path / "worker.log")
    stop = asyncio.Event()
    bridge_task = None
    session = aiohttp.ClientSession()
    sensors = OrionClient(session, replace(target, service_path="/sensors"))
    try:
        mappings = load_orion_table(pack, {"nasushiobara"}).values()
        first = await subscribe(target, mappings, tokens)
        again = await subscribe(target, mappings, tokens)
        assert (first.action, again.action, again.subscription_id) == ("created", "unchanged", first.subscription_id)

        worker.start()
        bridge_task = asyncio.create_task(run_bridge(routes_for(config, [pack], catalog), kafka_bootstrap, STORE, stop))

        async def sensor_reports(level: float, hour: int) -> None:
            before = accepted_notifications()
            await sensors.append([sensor_entity(level, hour)])
            await until(lambda: _async(accepted_notifications() > before), 30, f"the notification of {level} m")

        await sensor_reports(1.0, 10)
        await sensor_reports(3.3, 11)  # over the danger stage (3.1 m): 警戒レベル4相当

        async def alert_entity(cleared: bool):
            alerts = [
                a
                for a in await orion.entities(target, "Alert")
                if a["data"]["stationId"] == RIVER_GAUGE and a["data"]["rule"] == "river_stage"
            ]
            return alerts if alerts and (("validTo" in alerts[0]) == cleared) else None

        [raised] = await until(
            lambda: alert_entity(False), 120, "the river-stage alert in Orion (worker start included)"
        )
        assert (raised["data"]["level"], raised["data"]["warningLevel"], raised["severity"]) == (
            "level_4",
            4,
            "critical",
        )
        assert (raised["category"], raised["subCategory"]) == ("naturalDisaster", "floodRisk")
        assert raised["validFrom"] == raised["dateIssued"] and parse_iso_ms(raised["dateIssued"]) == parse_iso_ms(
            "2026-07-01T11:00:00+09:00"
        )

        await sensor_reports(0.5, 12)  # back below the caution stage: the episode ends (CAP Cancel)
        [cleared] = await until(lambda: alert_entity(True), 60, "the cancel in Orion")
        assert cleared["id"] == raised["id"] and cleared["severity"] == "informational"
        assert parse_iso_ms(cleared["validTo"]) == parse_iso_ms("2026-07-01T12:00:00+09:00")
        assert cleared["data"]["msgType"] == "Cancel"

        # a reading below the gauge's zero, from the municipality's own sensor through the readings door
        async with session.post(
            f"{notify_base}/v1/readings",
            json={
                "station_id": RIVER_GAUGE,
                "observed_at": "2026-07-01T13:00:00+09:00",
                "measurements": [{"quantity": "water_level", "value": -0.2, "unit": "m"}],
            },
            headers={"Authorization": f"Bearer {owner_token}"},
        ) as answer:
            assert answer.status == 202

        async def observed_below_zero():
            found = [w for w in await orion.entities(target, "WaterObserved") if w.get("gaugeWaterLevel") == -0.2]
            return found or None

        [observation] = await until(observed_below_zero, 60, "the below-zero observation in Orion")
        assert "waterLevel" not in observation and observation["stationCode"] == RIVER_GAUGE

        alerts = await orion.entities(target, "Alert")
        observations = await orion.entities(target, "WaterObserved")
        assert schema_problems(alerts + observations) == {}
        assert not [a for a in alerts if a["data"]["sharingLevel"] == "INTERNAL"], (
            "the internal river_rise alert stays at the prefecture"
        )
        assert await _hub_alerts_include_internal(kafka_bootstrap, topics), (
            "the hub did raise an internal alert (rapid rise) it had to keep back"
        )
        if orion.standin is not None:
            assert orion.standin.schema_failures == []
            assert all(not schema_problems([e]) for e in orion.standin.received)
            assert {s for s, _ in orion.standin.notifications} == {first.subscription_id}, (
                "nothing the hub wrote came back"
            )
            assert len(orion.standin.notifications) == 3
    finally:
        stop.set()
        if bridge_task is not None:
            await asyncio.wait_for(bridge_task, 30)
        worker.stop()
        if orion.real:
            await orion.cleanup(target, ["/sensors", "/bosai"], ["Alert", "WaterObserved", "WeatherObserved"])
        await session.close()
        await runner.cleanup()
        await gateway.sender.stop()
        if orion.standin is not None:
            await orion.standin.stop()


async def _async(value):
    return value


async def _hub_alerts_include_internal(bootstrap, topics) -> bool:
    ends = await kafka.end_offsets(bootstrap, [topics.alerts])
    alerts = [AvroCodec(STORE, ALERT).decode(m.value) for m in await kafka.read_range(bootstrap, {}, ends)]
    return any(a["sharing_level"] == "INTERNAL" for a in alerts)


def alert_record(alert_id: str, sequence: int, msg_type: str, hour: int, code: str = "09213") -> dict:
    observed = int(time.mktime(time.strptime(f"2026-07-02 {hour:02d}", "%Y-%m-%d %H"))) * 1000
    return {
        "alert_id": alert_id,
        "sequence": sequence,
        "msg_type": msg_type,
        "transition": {"ALERT": "RAISED", "UPDATE": "ESCALATED", "CANCEL": "CLEARED"}[msg_type],
        "references": None,
        "references_observed_at": None,
        "region": "tochigi",
        "prefecture_code": "09",
        "rule": "rain_1h",
        "level": "intense",
        "level_rank": 0 if msg_type == "CANCEL" else 2,
        "warning_level": None,
        "event": "激しい雨",
        "headline": f"黒磯（那須塩原市）激しい雨 (test) {sequence}",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Observed",
        "sharing_level": "PUBLIC",
        "station_id": "41091",
        "observed_at": observed,
        "value": 31.0,
        "unit": "mm",
        "threshold": 30.0,
        "area": {
            "description": "那須塩原市",
            "point": {"lat": 36.98, "lon": 140.02, "alt_m": None},
            "hazard_zone_ids": [],
        },
        "municipality_codes": [code],
        "source_readings": [],
        "source": "hub",
        "status": "Actual",
        "expires": None,
        "official": None,
    }


async def test_a_dead_orion_delays_only_itself_its_failures_wait_in_the_dead_letters_and_a_redrive_never_goes_back(
    kafka_bootstrap, setting, tmp_path
):
    root, pack, catalog, policy = setting
    catalog = replace(catalog, prefix=f"orionb{uuid.uuid4().hex[:8]}")
    await apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()]))
    topics = HubTopics.for_region(catalog, pack)
    healthy, dead = OrionStandIn(), OrionStandIn()
    await healthy.start()
    await dead.start()
    dead.fail_with = 503
    configs = []
    for name, standin in (("healthy", healthy), ("dead", dead)):
        orion = type("O", (), {"url": standin.url, "service": "nasushiobara", "auth": None})()
        configs.append(bridge_config(root, pack, policy, orion, "http://127.0.0.1:9", id=name))
    config = replace(configs[0], orions=configs[0].orions + configs[1].orions)
    routes = routes_for(config, [pack], catalog)
    codec = AvroCodec(STORE, ALERT)
    episodes = [f"tochigi-rain_1h-41091-2026070{i}T1000JST" for i in range(1, 4)]
    events = [alert_record(a, 0, "ALERT", 10) for a in episodes] + [alert_record(episodes[0], 1, "CANCEL", 11)]
    events.append(alert_record("tochigi-rain_1h-41277-20260702T1000JST", 0, "ALERT", 10, code="09201"))  # 宇都宮市's
    async with kafka.started_producer(kafka_bootstrap) as producer:
        for event in events:
            await producer.send_and_wait(topics.alerts, codec.encode(event), key=event["alert_id"].encode())
    stop = asyncio.Event()
    task = asyncio.create_task(run_bridge(routes, kafka_bootstrap, STORE, stop))
    try:

        async def healthy_done():
            found = {e["id"]: e for e in healthy.received}
            return len(found) == 3 and any(e.get("validTo") for e in found.values())

        await until(healthy_done, 60, "the healthy Orion's entities")
        dlq = routes[1].deadletter_topic

        async def dead_letters():
            ends = await kafka.end_offsets(kafka_bootstrap, [dlq])
            found = [m for m in await kafka.read_range(kafka_bootstrap, {}, ends) if m.key == b"dead"]
            return found if len(found) >= 4 else None

        letters = await until(dead_letters, 60, "the dead Orion's dead letters")
    finally:
        stop.set()
        loops = await asyncio.wait_for(task, 30)
    good, bad = loops
    assert good.target.entities_sent == 3 and good.dead_lettered == 0, "the dead Orion never held the healthy one up"
    assert bad.target.entities_sent == 0 and bad.dead_lettered == 4
    decoded = [AvroCodec(STORE, DEAD_LETTER).decode(m.value) for m in letters]
    assert all(d["reason"] == "orion_delivery_failed" and "503" in d["error_detail"] for d in decoded)
    assert not [e for e in healthy.received if "41277" in e["id"]], "宇都宮市's alert is not 那須塩原市's to see"
    cleared = next(e for e in healthy.received if e["id"].endswith(episodes[0]) and "validTo" in e)
    assert cleared["severity"]["value"] == "informational"

    dead.fail_with = None
    await dead_entity_then_newer(dead, episodes[1])
    delivered, superseded, again = await redrive(routes[1], kafka_bootstrap, STORE)
    assert (delivered, superseded, again) == (3, 1, 0), "episode 2's message is older than what the Orion holds"
    held = {e["id"]: e for e in dead.received}
    assert held[[k for k in held if k.endswith(episodes[0])][0]]["validTo"], "the cleared episode stays cleared"
    assert await redrive(routes[1], kafka_bootstrap, STORE) == (0, 0, 0), "each dead letter is redriven once"
    assert healthy.schema_failures == [] and dead.schema_failures == []
    await healthy.stop()
    await dead.stop()


async def dead_entity_then_newer(standin: OrionStandIn, alert_id: str) -> None:
    """Someone (a later message, delivered after the Orion came back) already put sequence 1 there."""
    from streams.fiware.bridge_file import OrionTarget
    from streams.fiware.ngsi import alert_entity

    target = OrionTarget("x", standin.url, "nasushiobara", "/bosai", None, "tochigi", (), (), "none")
    async with aiohttp.ClientSession() as session:
        await OrionClient(session, target).append([alert_entity(alert_record(alert_id, 1, "UPDATE", 12))])


async def test_orion_refuses_forbidden_characters_and_bad_ids_and_accepts_what_the_hub_makes_of_them(setting):
    from streams.fiware.bridge_file import OrionTarget
    from streams.fiware.ngsi import alert_entity
    from streams.fiware.orion import OrionError

    orion = await start_orion()
    target = with_auth(OrionTarget("t", orion.url, orion.service, "/bosai", None, "tochigi", (), (), "none"), orion)
    evil = alert_record("tochigi-rain_1h-41091-20260703T1000JST", 0, "ALERT", 10) | {
        "headline": "a<b> \"c\" 'd' e=f; (g)"
    }
    raw = alert_entity(evil)
    raw["description"]["value"] = evil["headline"]  # what Orion would get without sanitising
    try:
        async with aiohttp.ClientSession() as session:
            client = OrionClient(session, target)
            with pytest.raises(OrionError) as refused:
                await client.append([raw])
            assert (refused.value.status, refused.value.error) == (400, "BadRequest")
            assert "Invalid characters in attribute value" in refused.value.description
            for bad_id in ("has space", "a/b", "a#b", "a(b)", "x" * 257):
                with pytest.raises(OrionError) as refused:
                    await client.append([{**raw, "id": bad_id, "description": {"type": "Text", "value": "ok"}}])
                assert refused.value.status == 400 and refused.value.error == "BadRequest", bad_id
            await client.append([alert_entity(evil)])  # sanitised: accepted
            [held] = await orion.entities(target, "Alert")
            assert held["description"] == "a＜b＞ ＂c＂ ＇d＇ e＝f； （g）"
            assert schema_problems([held]) == {}
    finally:
        if orion.real:
            await orion.cleanup(target, ["/bosai"], ["Alert"])
        if orion.standin is not None:
            assert orion.standin.schema_failures == []
            await orion.standin.stop()


async def test_an_entity_orion_refuses_for_good_is_found_in_its_batch_and_dead_lettered_alone(kafka_bootstrap, setting):
    root, pack, catalog, policy = setting
    catalog = replace(catalog, prefix=f"orionc{uuid.uuid4().hex[:8]}")
    await apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()]))
    topics = HubTopics.for_region(catalog, pack)
    standin = OrionStandIn()
    await standin.start()
    orion = type("O", (), {"url": standin.url, "service": "nasushiobara", "auth": None})()
    config = bridge_config(root, pack, policy, orion, "http://127.0.0.1:9")
    episodes = [f"tochigi-rain_1h-41091-2026071{i}T1000JST" for i in range(5)]
    standin.refuse_ids = {f"urn:ngsi-ld:Alert:bosai:{episodes[2]}"}
    codec = AvroCodec(STORE, ALERT)
    async with kafka.started_producer(kafka_bootstrap) as producer:
        for alert_id in episodes:
            await producer.send_and_wait(
                topics.alerts, codec.encode(alert_record(alert_id, 0, "ALERT", 10)), key=alert_id.encode()
            )
    [route] = routes_for(config, [pack], catalog)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bridge([route], kafka_bootstrap, STORE, stop))
    try:

        async def settled():
            ends = await kafka.end_offsets(kafka_bootstrap, [route.deadletter_topic])
            delivered = len({e["id"] for e in standin.received}) == 4
            return ends if delivered and sum(ends.values()) >= 1 else None

        ends = await until(settled, 60, "four delivered and one dead letter")
    finally:
        stop.set()
        [loop] = await asyncio.wait_for(task, 30)
        await standin.stop()
    [letter] = [
        AvroCodec(STORE, DEAD_LETTER).decode(m.value) for m in await kafka.read_range(kafka_bootstrap, {}, ends)
    ]
    assert (loop.delivered, loop.dead_lettered) == (4, 1)
    assert (
        letter["reason"] == "orion_delivery_failed"
        and "1 attempt(s)" in letter["error_detail"]
        and "400" in letter["error_detail"]
    )
    assert codec.decode(letter["original_value"])["alert_id"] == episodes[2]
