"""The residents' map's HTTP side on loopback, fed without a broker: assets, data endpoints, the live stream."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer

from streams.delivery.cap_schema import cap_validation_errors
from streams.kernel.times import HOUR_MS
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.publicmap.live_stream import LiveStream, _Client
from streams.publicmap.server import WebHandlers, WebState, build_app, load_assets, page_config, security_headers
from tests.support.web_data import alert, cancel_of, heavy_rain, internal_alert


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="module")
def rain(project_root, tochigi):
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), tochigi)
    _records, enriched, alerts = heavy_rain(project_root, tochigi, topics, "2023-09-04T00:00", "2023-09-04T13:01")
    return enriched, alerts


class Served:
    def __init__(self, state, server, session):
        self.state, self.server, self.session = state, server, session

    def url(self, path):
        return str(self.server.make_url(path))


@pytest.fixture()
async def served(project_root, tochigi):
    stream = LiveStream(heartbeat_s=0.3)
    state = WebState([tochigi], stream)
    handlers = WebHandlers(
        state, load_assets(project_root / "web"), page_config([tochigi], None, "", 0.3), security_headers(None)
    )
    server = TestServer(build_app(handlers), host="127.0.0.1")
    await server.start_server()
    async with ClientSession(timeout=ClientTimeout(total=20)) as session:
        yield Served(state, server, session)
    await server.close()


async def _events(response, count, *, skip_heartbeats=True):
    """The next `count` events of an SSE response as (id, event, data)."""
    out, fields = [], {}
    while len(out) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line == "":
            if "event" in fields and not (skip_heartbeats and fields["event"] == "heartbeat"):
                out.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.lstrip(" ")
    return out


async def test_the_page_and_its_assets_come_from_memory_with_etags(served):
    async with served.session.get(served.url("/")) as first:
        body = await first.text()
        etag = first.headers["ETag"]
    async with served.session.get(served.url("/"), headers={"If-None-Match": etag}) as again:
        status_again = again.status
    async with served.session.get(served.url("/static/vendor/leaflet-1.9.4/leaflet.js")) as leaflet:
        leaflet_headers = leaflet.headers
    async with served.session.get(served.url("/static/nothing.js")) as missing:
        missing_status = missing.status

    assert first.status == 200 and '<html lang="ja">' in body
    assert first.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in first.headers["Content-Security-Policy"]
    assert status_again == 304
    assert leaflet_headers["Cache-Control"] == "public, max-age=3600" and leaflet_headers["ETag"]
    assert missing_status == 404
    assert not re.search(r'(src|href)="(https?:)?//', body)  # nothing loaded from another server


async def test_large_documents_are_sent_gzipped_to_who_accepts_it(served):
    async with served.session.get(served.url("/api/v1/municipalities.geojson"), auto_decompress=False) as packed:
        encoding = packed.headers.get("Content-Encoding")
    async with served.session.get(served.url("/api/v1/municipalities.geojson")) as plain:
        document = await plain.json(content_type=None)

    assert encoding == "gzip"
    assert len(document["features"]) == 25


async def test_data_endpoints_show_public_alerts_and_public_stations_only(served, rain):
    enriched, alerts = rain
    served.state.apply(alerts=[*alerts, internal_alert()], readings=enriched)

    async with served.session.get(served.url("/api/v1/snapshot.json")) as response:
        snapshot = await response.json()
        etag = response.headers["ETag"]
    async with served.session.get(served.url("/api/v1/alerts.geojson")) as response:
        geojson = await response.json(content_type=None)
    async with served.session.get(served.url("/api/v1/snapshot.json"), headers={"If-None-Match": etag}) as response:
        unchanged = response.status
    async with served.session.get(served.url("/feeds/public.atom")) as response:
        atom = await response.text()
    async with served.session.get(served.url("/cap/tochigi-river_rise-41331-20230904T1300JST.0.xml")) as response:
        internal_cap = response.status
    first = snapshot["alerts"][0]
    async with served.session.get(served.url(first["cap"])) as response:
        cap_xml = await response.read()
        cap_headers = response.headers

    published = {a["alert_id"] for a in alerts if a["sharing_level"] == "PUBLIC"}
    assert {i["id"] for i in snapshot["alerts"]} <= published and snapshot["alerts"]
    assert {f["id"] for f in geojson["features"]} == {i["id"] for i in snapshot["alerts"]}
    assert unchanged == 304
    assert "急激な水位上昇" not in json.dumps(snapshot, ensure_ascii=False) and "急激な水位上昇" not in atom
    assert internal_cap == 404
    assert cap_validation_errors(cap_xml) == []
    assert cap_headers["Access-Control-Allow-Origin"] == "*"  # open data
    assert f"/cap/{first['id']}.{first['sequence']}.xml" in atom


async def test_the_live_stream_opens_with_a_snapshot_then_sends_each_change(served):
    async with served.session.get(served.url("/api/v1/events")) as response:
        [(snapshot_id, kind, snapshot)] = await _events(response, 1)
        served.state.apply(alerts=[internal_alert()])  # not public: no event at all
        raised = alert()
        served.state.apply(alerts=[raised])
        served.state.apply(alerts=[cancel_of(raised, raised["observed_at"] + HOUR_MS)])
        (raised_id, first_kind, first), (_cancel_id, second_kind, second) = await _events(response, 2)

    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert kind == "snapshot" and snapshot["alerts"] == []
    assert first_kind == second_kind == "alerts"
    assert [a["id"] for a in first["alerts"]] == [raised["alert_id"]]
    assert first["municipalities"]["09201"]["label"]["ja"] == "非常に激しい雨"
    assert second["removed"] == [raised["alert_id"]] and second["municipalities"] == {"09201": None}
    assert raised_id.split("-")[0] == snapshot_id.split("-")[0]  # one epoch per process


async def test_a_reconnecting_page_gets_only_what_it_missed_and_a_stranger_gets_a_snapshot(served):
    async with served.session.get(served.url("/api/v1/events")) as response:
        [(last_id, _kind, _doc)] = await _events(response, 1)
    served.state.apply(alerts=[alert()])  # happens while the page is away

    async with served.session.get(served.url("/api/v1/events"), headers={"Last-Event-ID": last_id}) as response:
        [(_id, resumed_kind, resumed)] = await _events(response, 1)
    async with served.session.get(served.url("/api/v1/events"), headers={"Last-Event-ID": "123-4"}) as response:
        [(_id, stranger_kind, stranger)] = await _events(response, 1)

    assert resumed_kind == "alerts" and [a["id"] for a in resumed["alerts"]] == [alert()["alert_id"]]
    assert stranger_kind == "snapshot" and [a["id"] for a in stranger["alerts"]] == [alert()["alert_id"]]


async def test_a_quiet_stream_sends_heartbeats(served):
    async with served.session.get(served.url("/api/v1/events")) as response:
        await _events(response, 1)
        [(heartbeat_id, kind, beat)] = await _events(response, 1, skip_heartbeats=False)

    assert kind == "heartbeat" and heartbeat_id is None and beat["server_time"] > 0


async def test_a_slow_client_is_dropped_not_buffered():
    stream = LiveStream(queue_limit=3)
    slow, fast = _Client(), _Client()
    stream.clients.update({slow, fast})

    for _ in range(5):
        stream.publish("alerts", b"{}")
        while not fast.queue.empty():  # the fast one reads as it goes
            fast.queue.get_nowait()

    assert slow.dropped == "slow" and fast.dropped is None
    assert slow.queue.qsize() == 1 and slow.queue.get_nowait() == b""  # only the end-of-stream marker is held
    assert stream.dropped == 1


async def test_a_resume_point_older_than_what_is_held_gets_a_snapshot():
    stream = LiveStream(history=2)
    for _ in range(5):
        stream.publish("stations", b"{}")

    assert stream.missed_since(f"{stream.epoch}-1") is None
    assert len(stream.missed_since(f"{stream.epoch}-3")) == 2
    assert stream.missed_since(f"{stream.epoch}-5") == []


async def test_live_clients_beyond_the_limit_are_refused(served):
    served.state.stream.max_clients = 1
    async with served.session.get(served.url("/api/v1/events")) as first:
        await _events(first, 1)
        async with served.session.get(served.url("/api/v1/events")) as second:
            refused = second.status
            retry_after = second.headers.get("Retry-After")

    assert refused == 503 and retry_after == "30"


async def test_a_client_that_stops_reading_is_dropped_and_its_connection_closed(served):
    stream = served.state.stream
    stream.queue_limit = 2
    reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
    writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    while not stream.clients:
        await asyncio.sleep(0.01)
    big = json.dumps({"stations": ["x" * 1_000_000]}).encode()

    for _ in range(60):  # the client reads nothing: the socket fills, the write waits, the queue fills
        stream.publish("stations", big)
        await asyncio.sleep(0.01)
        if stream.dropped:
            break
    for _ in range(100):
        if not stream.clients:
            break
        await asyncio.sleep(0.01)

    assert stream.dropped == 1 and not stream.clients
    writer.close()
