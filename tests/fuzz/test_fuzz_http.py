"""HTTP request bodies at the gateway's doors (POST /v1/readings, the Orion notification door), the residents' map's
Last-Event-ID, and what an Orion answers the bridge: whatever a client sends — any bytes, any content type,
compressed, chunked, too large — the answer is a 2xx/4xx with a reason, never a 500, and every refused reading
is dead-lettered with its reason.

The gateway runs for real (aiohttp on loopback, the real region pack, token store and owners file); only its
Kafka producer is replaced by one that keeps the records it is given (the door's parsing is under test here;
tests/integration/test_gateway.py covers the same doors on the real broker).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import http.server
import json
import threading
import zlib
from dataclasses import dataclass

import aiohttp
import pytest
import yaml
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from streams.fiware.bridge_file import OrionTarget, load_bridge_config
from streams.fiware.orion import OrionClient, OrionError
from streams.fiware.orion_table import load_orion_table
from streams.gateway.owners import load_owners
from streams.gateway.server import Doors, Gateway, Limits, build_app
from streams.kernel.topics import HubTopics
from streams.observed.readings import REASONS
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.avro import DEAD_LETTER, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.publicmap.live_stream import LiveStream
from streams.security.token_store import TokenStore
from tests.support.fuzz_contract import CASES, check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import awkward_text, json_values, mutated
from tests.support.orion_standin import RIVER_ENTITY, RIVER_GAUGE, make_nasushiobara_pack

STORE = default_store()
MAX_BODY = 64_000
ALLOWED = {202, 400, 401, 403, 413, 415, 429}


class KeptRecords:
    """The gateway's sender without Kafka: keeps what the door asked to write."""

    def __init__(self) -> None:
        self.records: list = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, records) -> int:
        self.records.extend(records)
        return sum(len(r.value) for r in records)


@dataclass
class Door:
    port: int
    owner_token: str
    orion_token: str
    sender: KeptRecords
    deadletter: str

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def door(project_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-gateway")
    pack = load_pack(make_nasushiobara_pack(project_root / "regions" / "tochigi", root / "tochigi"))
    catalog = load_catalog(default_catalog_path())
    owners_file = root / "owners.yaml"
    owners_file.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"rate_per_s": 1_000_000, "burst": 1_000_000},
                "owners": [{"id": "ns-kensetsu", "region": "tochigi", "stations": [RIVER_GAUGE, "41091"]}],
            }
        )
    )
    access = root / "access.yaml"
    access.write_text(render(generate([pack], catalog)), encoding="utf-8")
    bridge_file = root / "bridge.yaml"
    orion = {"id": "nasushiobara", "url": "http://127.0.0.1:9", "service": "nasushiobara", "sensor_service_path": "/s"}
    bridge_file.write_text(
        yaml.safe_dump({"version": 1, "orions": [{**orion, "region": "tochigi", "municipalities": ["09213"]}]})
    )
    bridge = load_bridge_config(bridge_file, [pack], load_access(access), environ={})
    tokens = TokenStore(root / "tokens.json")
    owner_token, orion_token = tokens.issue("owner:ns-kensetsu"), tokens.issue("orion:nasushiobara")
    sender = KeptRecords()
    topics = HubTopics.for_region(catalog, pack)
    gateway = Gateway(
        packs=[pack],
        owners=load_owners(owners_file, [pack]),
        bridge=bridge,
        tables=load_orion_table(pack, {"nasushiobara"}),
        topics={"tochigi": topics},
        sender=sender,
        store=STORE,
        doors=Doors(tokens, refresh_s=60.0),
        limits=Limits(max_body_bytes=MAX_BODY, max_readings=50, orion_rate_per_s=1e9, orion_burst=1e9),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        runner = web.AppRunner(build_app(gateway), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield Door(port, owner_token, orion_token, sender, topics.deadletter)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _reading(level=1.5, **changes) -> dict:
    return {
        "station_id": RIVER_GAUGE,
        "observed_at": "2026-07-01T10:00:00+09:00",
        "measurements": [{"quantity": "water_level", "value": level, "unit": "m"}],
    } | changes


ENTITY = {
    "id": RIVER_ENTITY,
    "type": "WaterObserved",
    "dateObserved": {"type": "DateTime", "value": "2026-07-01T10:00:00+09:00"},
    "waterLevel": {"type": "Number", "value": 1.5},
}
readings_bodies = st.one_of(
    st.builds(_reading, level=st.floats(0, 5)).map(lambda r: json.dumps(r).encode()),
    st.lists(st.builds(_reading) | json_values, max_size=5).map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)
notification_bodies = st.one_of(
    st.lists(st.just(ENTITY) | json_values, max_size=4).map(lambda d: json.dumps({"data": d}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded"]
)


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@st.composite
def requests(draw, bodies):
    body = draw(bodies | bodies.flatmap(mutated) | st.binary(max_size=256))
    encoding = draw(st.sampled_from(["", "", "gzip", "deflate", "br"]))
    headers = {"Content-Type": draw(content_types)}
    if encoding:
        headers["Content-Encoding"] = encoding
    return _encode(body, encoding), headers


def _answer_of(door: Door, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    before = len(door.sender.records)
    status, answer = door.post(path, body, headers)
    assert status in ALLOWED, (status, answer[:300])
    written = door.sender.records[before:]
    dead = [AvroCodec(STORE, DEAD_LETTER).decode(r.value) for r in written if r.topic == door.deadletter]
    if status == 400 and answer.startswith(b"{"):
        refused = json.loads(answer)["rejected"]
        assert refused and all(r["reason"] in REASONS and r["detail"] for r in refused)
        assert len(dead) == len(refused)  # every refused reading is a dead letter too
    elif status == 400:  # aiohttp's own refusal of a body it cannot read (e.g. brotli): nothing reached the hub
        assert answer.strip() and not written, answer[:200]
    assert all(d["reason"] in REASONS and d["error_detail"] for d in dead)
    return status, answer


@settings(max_examples=examples(120))
@given(request=requests(readings_bodies))
@example(request=(b"[" * 60_000, {"Content-Type": "application/json"}))  # found: RecursionError -> 500
def test_any_body_at_the_readings_door_is_answered_with_a_reason_never_a_500(door, request):
    body, headers = request
    check(
        "http.readings_door",
        lambda: _answer_of(door, "/v1/readings", body, {**headers, "Authorization": f"Bearer {door.owner_token}"}),
        (),
        shown=(body, headers),
    )


ORION_PATH = "/v1/orion/nasushiobara/notifications"


@settings(max_examples=examples(120))
@given(request=requests(notification_bodies))
@example(request=(b"[" * 60_000, {"Content-Type": "application/json"}))
def test_any_body_at_the_orion_door_is_answered_with_a_reason_never_a_500(door, request):
    body, headers = request
    headers = {**headers, "Authorization": f"Bearer {door.orion_token}", "Fiware-Service": "nasushiobara"}
    headers["Fiware-ServicePath"] = "/s"
    check("http.orion_door", lambda: _answer_of(door, ORION_PATH, body, headers), (), shown=(body, headers))


@pytest.mark.parametrize(
    "how", ["content-length", "chunked", "gzip bomb", "deflate bomb", "gzip bomb, chunked", "wrong content type"]
)
def test_an_oversized_or_mistyped_body_is_refused_at_the_door(door, how):
    """413 past max_body_bytes whether the size is declared or not and however it is compressed; 415 for a
    body that is not JSON; the inflated bomb never sits in memory whole (aiohttp stops reading at the limit)."""
    big = b'{"readings": [' + b" " * (MAX_BODY * 200) + b"]}"  # 12.8 MB of JSON, 13 kB gzipped
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {door.owner_token}"}
    body = {
        "content-length": big[: MAX_BODY + 1],
        "chunked": (big[i : i + 8192] for i in range(0, MAX_BODY * 2, 8192)),
        "gzip bomb": gzip.compress(big),
        "deflate bomb": zlib.compress(big),
        "gzip bomb, chunked": iter([gzip.compress(big)]),
        "wrong content type": b"station_id=R-1",
    }[how]
    if "gzip" in how:
        headers["Content-Encoding"] = "gzip"
    if "deflate" in how:
        headers["Content-Encoding"] = "deflate"
    if how == "wrong content type":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    CASES["http.limits"] += 1

    status, answer = door.post("/v1/readings", body, headers)

    assert status == (415 if how == "wrong content type" else 413), (status, answer[:200])


# -- the residents' map: the Last-Event-ID a reconnecting browser sends ------------------------------------------
@settings(max_examples=examples(300))
@given(
    header=st.one_of(
        awkward_text,
        st.builds(lambda tail: f"{{epoch}}-{tail}", awkward_text),
        st.sampled_from(["{epoch}-²", "{epoch}-" + "9" * 5000, "{epoch}-", "-1", "{epoch}-٣"]),
    )
)
@example(header="{epoch}-²")  # found: int('²') -> ValueError -> 500
def test_any_last_event_id_gives_the_missed_events_or_a_fresh_snapshot(header):
    stream = LiveStream(history=8)
    for n in range(5):
        stream.publish("alerts", f'{{"n": {n}}}'.encode())
    header = header.replace("{epoch}", stream.epoch)

    missed = check("web.last_event_id", lambda: stream.missed_since(header), (), shown=header)

    assert missed is None or isinstance(missed, list)


def test_a_body_nested_too_deep_is_a_dead_letter_with_its_reason_and_counted(door):
    """(It was a 500: json.loads raised RecursionError; nothing was dead-lettered or counted.)"""
    labels = {"region": "tochigi", "reason": "undecodable"}
    before = REGISTRY.get_sample_value("bosai_dead_letters_total", labels) or 0.0
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {door.owner_token}"}
    CASES["http.limits"] += 1

    status, answer = door.post("/v1/readings", b"[" * 60_000, headers)

    assert status == 400 and json.loads(answer)["rejected"][0]["reason"] == "undecodable"
    letter = AvroCodec(STORE, DEAD_LETTER).decode(door.sender.records[-1].value)
    assert letter["reason"] == "undecodable" and "depth" in letter["error_detail"]
    assert REGISTRY.get_sample_value("bosai_dead_letters_total", labels) == before + 1


# -- what an Orion answers the bridge (a municipality's platform is outside the hub too) ----------------------------
class _Orion(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes, dict] = (200, b"{}", {})

    def log_message(self, *args):
        pass

    def do_GET(self):
        status, body, headers = type(self).answer
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def orion_answers():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Orion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield OrionTarget(
        id="o",
        url=f"http://127.0.0.1:{server.server_address[1]}",
        service="s",
        service_path="/hub",
        sensor_service_path="/sensors",
        region="tochigi",
        municipality_codes=(),
        principals=(),
        readings="none",
    )
    server.shutdown()
    server.server_close()


async def _ask_orion(target: OrionTarget, call: str):
    async with aiohttp.ClientSession() as session:
        client = OrionClient(session, target, timeout_s=10)
        if call == "entity":
            return await client.entity("urn:x", "Alert")
        return await client.subscriptions("/sensors")


orion_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.fixed_dictionaries({"id": awkward_text}) | json_values, max_size=3).map(
        lambda v: json.dumps(v).encode()
    ),
    st.binary(max_size=64),
    st.just(b"[" * 5000),
)


@settings(max_examples=examples(100))
@given(
    status=st.sampled_from([200, 200, 200, 400, 404, 500, 503]),
    body=orion_bodies,
    count=st.sampled_from(["", "1", "x", "²", "99999999999"]),
    call=st.sampled_from(["entity", "subscriptions"]),
)
@example(status=200, body=b"[" * 5000, count="", call="entity")  # found: RecursionError out of json.loads
@example(status=200, body=b'[{"no_id": 1}]', count="1", call="subscriptions")  # found: KeyError 'id'
@example(status=200, body=b"[]", count="²", call="subscriptions")  # found: ValueError from int('²')
@example(status=200, body=json.dumps([{"id": "a"}] * 100).encode(), count="99999999999", call="subscriptions")
# ^ found: the same full page with a count never reached: the client asked for the next page forever
def test_any_orion_answer_is_a_value_or_an_orion_error(orion_answers, status, body, count, call):
    _Orion.answer = (status, body, {"Fiware-Total-Count": count} if count else {})
    check(
        "orion.answers",
        lambda: asyncio.run(_ask_orion(orion_answers, call)),
        OrionError,
        shown=(status, body, count, call),
    )
