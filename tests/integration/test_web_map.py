"""`bosai web` on the real broker: rebuilt from the topics on start, live after, public information only."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import ClientSession, ClientTimeout

from streams.delivery.cap_schema import cap_validation_errors
from streams.kernel.times import parse_jst
from tests.support.web_data import alert, heavy_rain, internal_alert, jma_landslide_alert
from tests.support.web_hub import INTERNAL_STATION, WebHub, internal_reading, tochigi_with_an_internal_gauge

INTERNAL_WORDS = ("急激な水位上昇", "内部限り", INTERNAL_STATION, "市独自雨量計")


@pytest.fixture(scope="module")
def hub(kafka_bootstrap, project_root, tmp_path_factory):
    from uuid import uuid4

    pack_dir = tochigi_with_an_internal_gauge(project_root, tmp_path_factory.mktemp("web") / "tochigi")
    hub = WebHub(kafka_bootstrap, pack_dir, f"web{uuid4().hex[:8]}", tmp_path_factory.mktemp("logs"), heartbeat_s=1.0)
    records, _enriched, _alerts = heavy_rain(project_root, hub.pack, hub.topics, "2023-09-04T00:00", "2023-09-04T13:01")
    at_13 = parse_jst("2023-09-04T13:00", option="t")
    hub.write(
        [
            *records,
            # what must never show, even where it should not be: on the public topic, and a non-public gauge
            *hub.alert_records(internal_alert(), topics=[hub.topics.alerts, hub.topics.public]),
            hub.enriched_record(internal_reading(at_13)),
        ]
    )
    hub.process.start()
    yield hub
    hub.process.stop()


def _text(document) -> str:
    return json.dumps(document, ensure_ascii=False)


def test_on_start_the_map_is_rebuilt_from_the_topics_with_public_information_only(hub):
    snapshot = hub.get_json("/api/v1/snapshot.json")
    stations = hub.get_json("/api/v1/stations.geojson")
    alerts = hub.get_json("/api/v1/alerts.geojson")
    health = hub.get_json("/healthz")
    _status, atom = hub.get("/feeds/public.atom")

    assert {"09201", "09209", "09386"} <= set(snapshot["municipalities"])
    assert snapshot["data_time"] == parse_jst("2023-09-04T13:00", option="t")
    assert len(stations["features"]) == 19 and INTERNAL_STATION not in _text(stations)
    assert {f["id"] for f in alerts["features"]} == {a["id"] for a in snapshot["alerts"]}
    for word in INTERNAL_WORDS:
        assert word not in _text(snapshot) and word not in _text(alerts) and word not in atom.decode()
    assert health["ready"] and health["stations"] == 19


def test_public_cap_messages_are_served_without_credentials_and_internal_ones_are_not(hub):
    item = hub.get_json("/api/v1/snapshot.json")["alerts"][0]

    status, document = hub.get(item["cap"])
    internal_status, _ = hub.get("/cap/tochigi-river_rise-41331-20230904T1300JST.0.xml")

    assert status == 200 and cap_validation_errors(document) == []
    assert internal_status == 404


async def _follow(url: str, events: list, stop: asyncio.Event) -> None:
    """Read the live stream into `events` as (arrival time, event, data) until told to stop."""
    async with ClientSession(timeout=ClientTimeout(total=60)) as session:
        async with session.get(url + "api/v1/events") as response:
            fields: dict = {}
            while not stop.is_set():
                try:
                    line = (await asyncio.wait_for(response.content.readline(), 0.5)).decode().rstrip("\n")
                except TimeoutError:
                    continue
                if line == "" and "event" in fields:
                    events.append((time.monotonic(), fields["event"], json.loads(fields["data"])))
                    fields = {}
                elif ":" in line and not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.lstrip(" ")


def test_a_public_alert_reaches_the_live_stream_within_two_seconds_and_an_internal_one_never(hub):
    sano = alert(
        alert_id="tochigi-rain_1h-41311-20230905T2100JST",
        station_id="41311",
        municipality_codes=["09204"],
        headline="葛生（佐野市）非常に激しい雨: 61 mm",
        observed_at=parse_jst("2023-09-05T21:00", option="t"),
    )
    internal = internal_alert(alert_id="tochigi-river_rise-41311-20230905T2100JST", municipality_codes=["09204"])

    async def scenario():
        events, stop = [], asyncio.Event()
        follower = asyncio.create_task(_follow(hub.url, events, stop))
        while not events:  # the snapshot
            await asyncio.sleep(0.05)
        await asyncio.to_thread(hub.write, hub.alert_records(internal, topics=[hub.topics.alerts, hub.topics.public]))
        await asyncio.to_thread(hub.write, [hub.enriched_record(internal_reading(sano["observed_at"], 120.0))])
        written = time.monotonic()
        await asyncio.to_thread(hub.write, hub.alert_records(sano))
        sent = time.monotonic()
        await asyncio.to_thread(hub.write, hub.alert_records(jma_landslide_alert()))
        await asyncio.sleep(3.0)  # past heartbeats: anything else would have arrived
        stop.set()
        await follower
        return events, written, sent

    events, written, sent = asyncio.run(scenario())

    kinds = [kind for _t, kind, _d in events]
    assert kinds[0] == "snapshot" and "heartbeat" in kinds
    arrivals = [
        (t, d) for t, kind, d in events if kind == "alerts" and any(a["id"] == sano["alert_id"] for a in d["alerts"])
    ]
    assert arrivals, kinds
    assert arrivals[0][0] - sent < 2.0
    assert arrivals[0][1]["municipalities"]["09204"]["tone"] == "severe"
    jma = [d for _t, kind, d in events if kind == "alerts" and d["official_landslide"]]
    assert jma and jma[0]["official_landslide"] == ["09205", "09206"]
    for _t, _kind, data in events:
        for word in INTERNAL_WORDS:
            assert word not in _text(data), (word, data)
    assert written < sent
