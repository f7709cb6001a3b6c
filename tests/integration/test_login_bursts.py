"""Password guessing against every HTTP door that authenticates, on the real broker.

A burst of 200 wrong passwords (or tokens) in a few seconds — from one attacker's address, from the
address a municipality's own client uses, and from a small botnet — is answered 401 or 429; the broker
sees a bounded number of SCRAM handshakes (the door's counter and the broker's own log agree); and the
right credential still gets in promptly from the municipality's address and from a new one. The doors
run with their production defaults; clients are told apart by X-Forwarded-For from a trusted proxy
(the test's own address), as behind a municipality's reverse proxy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from streams.delivery.atom import CurrentAlerts
from streams.delivery.feed_server import CredentialChecker, build_app
from streams.fiware.bridge_file import load_bridge_config
from streams.gateway.owners import load_owners
from streams.gateway.server import Doors, Gateway
from streams.gateway.server import build_app as gateway_app
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform import kafka, metrics
from streams.platform.access_file import default_access_path, load_access
from streams.platform.avro import default_store
from streams.platform.kafka_admin import issue_credential, revoke_credential
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.login_guard import LoginGuard
from streams.security.login_limits import parse_networks
from streams.security.token_store import TokenStore

PROXY = parse_networks(["127.0.0.1/32"])  # the test client is the reverse proxy
OFFICE = "192.0.2.10"  # the municipality's own client: logged in before the burst
ATTACKER = "203.0.113.66"
NEWCOMER = "192.0.2.99"  # the municipality from an address never seen before
BOTNET = [f"198.51.100.{i}" for i in range(1, 26)]
RATE, BURST = 5.0, 5.0  # the feed's default handshake budget


def _attempts() -> list[tuple[str, str]]:
    """200 wrong secrets: 100 from the attacker (half of them one password repeated), 50 from the office's
    address (someone behind the same NAT), 50 from a botnet of 25 addresses; interleaved."""
    attacker = [f"guess-{i}" for i in range(50)] + ["Summer2026!"] * 50
    office = [f"office-guess-{i}" for i in range(50)]
    botnet = [f"bot-guess-{i}" for i in range(50)]
    mixed = []
    for i in range(50):
        mixed += [(ATTACKER, attacker[2 * i]), (ATTACKER, attacker[2 * i + 1])]
        mixed += [(OFFICE, office[i]), (BOTNET[i % 25], botnet[i])]
    return mixed


def _broker_failed_authentications(logs: list[Path] | None) -> int | None:
    """The broker's own count: its log's "Failed authentication" lines (None for an external cluster)."""
    if logs is None:
        return None
    return sum(log.read_text(errors="replace").count("Failed authentication") for log in logs)


async def _settled_broker_count(logs: list[Path] | None) -> int | None:
    """The broker's count once its log stops growing (it writes a line as it closes each connection)."""
    count = _broker_failed_authentications(logs)
    for _ in range(30):
        await asyncio.sleep(0.2)
        again = _broker_failed_authentications(logs)
        if again == count:
            break
        count = again
    return count


def _counter(metric, **labels: str) -> float:
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@dataclass
class Burst:
    statuses: Counter
    elapsed_s: float
    retry_after: list[str]
    right: dict[str, tuple[int, float]]  # who -> (status, seconds to get in)


Send = Callable[[str, str], Awaitable[tuple[int, dict]]]


async def _burst(send: Send, right_secret: str, *, concurrency: int = 20) -> Burst:
    """The 200 wrong secrets; one second in, the right secret from the office and from a newcomer (a real
    client: it honours Retry-After)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(address: str, secret: str) -> tuple[int, dict]:
        async with gate:
            return await send(address, secret)

    async def right(address: str) -> tuple[int, float]:
        await asyncio.sleep(1.0)
        started = time.monotonic()
        while True:
            status, headers = await send(address, right_secret)
            if status != 429 or time.monotonic() - started > 20:
                return status, time.monotonic() - started
            await asyncio.sleep(float(headers.get("Retry-After", "1")))

    started = time.monotonic()
    wrong = asyncio.gather(*(one(a, s) for a, s in _attempts()))
    office, newcomer = asyncio.create_task(right(OFFICE)), asyncio.create_task(right(NEWCOMER))
    answers = await wrong
    elapsed = time.monotonic() - started
    return Burst(
        Counter(status for status, _ in answers),
        elapsed,
        [h.get("Retry-After", "") for status, h in answers if status == 429],
        {"office": await office, "newcomer": await newcomer},
    )


def _assert_refused_and_right_gets_in(result: Burst, ok: int) -> None:
    assert sum(result.statuses.values()) == 200
    assert set(result.statuses) <= {401, 429}, result.statuses
    assert result.statuses[429] > 0 and all(r.isdigit() and int(r) >= 1 for r in result.retry_after)
    for who, (status, _seconds) in result.right.items():
        assert status == ok, f"the right credential from the {who} got {status}"
    office, newcomer = result.right["office"][1], result.right["newcomer"][1]
    assert office < 1.5, f"the municipality's own address waited {office:.2f} s (at most the capped 1 s delay)"
    assert newcomer < 5.0, f"a new address of the municipality waited {newcomer:.2f} s"


# -- the feed: HTTP Basic checked by a SCRAM handshake with the broker ---------------------------------


@pytest.fixture(scope="module")
def feed_principal(kafka_bootstrap, kafka_clients_listener):
    policy = load_access(default_access_path())
    principal = policy.principal("muni-09203")
    password = asyncio.run(issue_credential(kafka_bootstrap, principal))
    yield policy, principal.name, password
    asyncio.run(revoke_credential(kafka_bootstrap, principal.name))


async def _feed_burst(
    listener, logs: list[Path] | None, policy, name: str, password: str, *, auth_cache_s: float
) -> tuple[Burst, dict]:
    checker = CredentialChecker(*listener, cache_s=auth_cache_s)
    guard = LoginGuard(trusted_proxies=PROXY, metrics_door="feed")
    runner = web.AppRunner(build_app(CurrentAlerts(), policy, checker, sender_names={}, zone_polygons={}, guard=guard))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/feeds/municipality/09203.atom"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=40)) as http:

            async def send(address: str, secret: str) -> tuple[int, dict]:
                basic = base64.b64encode(f"{name}:{secret}".encode()).decode()
                headers = {"Authorization": f"Basic {basic}", "X-Forwarded-For": address}
                async with http.get(url, headers=headers) as answer:
                    await answer.read()
                    return answer.status, dict(answer.headers)

            assert (await send(OFFICE, password))[0] == 200, "the office's client logs in before the burst"
            handshakes = _counter(metrics.LOGIN_HANDSHAKES, door="feed")
            refused = _counter(metrics.LOGIN_HANDSHAKES, door="feed", result="refused")
            broker = await _settled_broker_count(logs)
            result = await _burst(send, password)
            after_broker = await _settled_broker_count(logs)
            figures = {
                "handshakes": _counter(metrics.LOGIN_HANDSHAKES, door="feed") - handshakes,
                "refused_handshakes": _counter(metrics.LOGIN_HANDSHAKES, door="feed", result="refused") - refused,
                "broker_failed_authentications": None if broker is None else after_broker - broker,
                "attacker_after": (await send(ATTACKER, password))[0],
            }
            print(
                f"\nfeed burst (auth cache {auth_cache_s:g} s): {dict(result.statuses)} in {result.elapsed_s:.1f} s; "
                f"handshakes {figures['handshakes']:g} ({figures['refused_handshakes']:g} refused), the broker logged "
                f"{figures['broker_failed_authentications']} failed authentications; right credential: "
                + ", ".join(f"{who} {s} in {t:.2f} s" for who, (s, t) in result.right.items())
            )
            return result, figures
    finally:
        await runner.cleanup()


def _assert_broker_load_bounded(result: Burst, figures: dict) -> None:
    ceiling = BURST + RATE * result.elapsed_s + 2  # the two right logins may need one each
    assert figures["handshakes"] <= ceiling, f"{figures['handshakes']} handshakes in {result.elapsed_s:.1f} s"
    if figures["broker_failed_authentications"] is not None:  # the broker's own view agrees with the counter
        assert figures["broker_failed_authentications"] == figures["refused_handshakes"] > 0


def test_a_burst_of_wrong_passwords_at_the_feed_is_refused_while_the_municipality_still_gets_in(
    kafka_clients_listener, kafka_broker_logs, feed_principal
):
    policy, name, password = feed_principal

    result, figures = asyncio.run(
        _feed_burst(kafka_clients_listener, kafka_broker_logs, policy, name, password, auth_cache_s=30.0)
    )

    _assert_refused_and_right_gets_in(result, ok=200)
    _assert_broker_load_bounded(result, figures)
    assert figures["attacker_after"] == 429, "the attacker's own address is refused, even with the right password"


def test_with_no_success_cache_every_login_asks_the_broker_and_the_load_stays_bounded(
    kafka_clients_listener, kafka_broker_logs, feed_principal
):
    policy, name, password = feed_principal

    result, figures = asyncio.run(
        _feed_burst(kafka_clients_listener, kafka_broker_logs, policy, name, password, auth_cache_s=0.0)
    )

    _assert_refused_and_right_gets_in(result, ok=200)
    _assert_broker_load_bounded(result, figures)
    assert figures["broker_failed_authentications"] is None or figures["broker_failed_authentications"] >= 3


# -- the gateway: bearer tokens at both doors -------------------------------------------------------


@pytest.fixture(scope="module")
async def gateway_url(kafka_bootstrap, project_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("logins")
    pack = load_pack(project_root / "regions" / "tochigi")
    catalog = replace(load_catalog(default_catalog_path()), prefix=f"lg{uuid.uuid4().hex[:8]}")
    owners_file = root / "owners.yaml"
    owners_file.write_text(
        yaml.safe_dump({"version": 1, "owners": [{"id": "utsunomiya", "region": "tochigi", "stations": ["41277"]}]})
    )
    bridge_file = root / "bridge.yaml"
    orion = {"id": "nasushiobara", "url": "http://127.0.0.1:9", "service": "nasushiobara"}
    bridge_file.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "orions": [
                    {**orion, "sensor_service_path": "/sensors", "region": "tochigi", "municipalities": ["09213"]}
                ],
            }
        )
    )
    tokens = TokenStore(root / "tokens.json")
    gateway = Gateway(
        packs=[pack],
        owners=load_owners(owners_file, [pack]),
        bridge=load_bridge_config(bridge_file, [pack], load_access(default_access_path()), environ={}),
        tables={},
        topics={"tochigi": HubTopics.for_region(catalog, pack)},
        sender=kafka.BatchSender(kafka_bootstrap),
        store=default_store(),
        doors=Doors(tokens, trusted_proxies=PROXY),
    )
    await gateway.sender.start()
    runner = web.AppRunner(gateway_app(gateway))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", tokens
    await runner.cleanup()
    await gateway.sender.stop()


def _wrong_tokens(right: str) -> Callable[[str], str]:
    """A wrong guess per secret: the right token id with a wrong secret, unknown ids, and garbage."""
    token_id = right.split(".")[1]

    def wrong(secret: str) -> str:
        kind = zlib.crc32(secret.encode()) % 3
        if kind == 0:
            return f"bst.{token_id}.{secret:x<43}"
        return f"bst.{uuid.uuid4().hex[:12]}.{secret:x<43}" if kind == 1 else secret

    return wrong


async def _gateway_burst(url: str, path: str, token: str, headers: dict) -> Burst:
    wrong = _wrong_tokens(token)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=40)) as http:

        async def send(address: str, secret: str) -> tuple[int, dict]:
            bearer = token if secret == token else wrong(secret)
            sent = {"Authorization": f"Bearer {bearer}", "X-Forwarded-For": address, **headers}
            async with http.post(
                url + path, data=json.dumps({"data": []} if "orion" in path else []), headers=sent
            ) as a:
                await a.read()
                return a.status, dict(a.headers)

        assert (await send(OFFICE, token))[0] == 202, "the owner's client sends before the burst"
        return await _burst(send, token)


async def test_a_burst_of_wrong_tokens_at_both_gateway_doors_is_refused_while_the_right_ones_get_in(gateway_url):
    url, tokens = gateway_url
    owner, orion = tokens.issue("owner:utsunomiya"), tokens.issue("orion:nasushiobara")
    orion_headers = {"Fiware-Service": "nasushiobara", "Fiware-ServicePath": "/sensors"}
    failures = _counter(metrics.LOGIN_FAILURES)

    readings, notifications = await asyncio.gather(
        _gateway_burst(url, "/v1/readings", owner, {"Content-Type": "application/json"}),
        _gateway_burst(
            url, "/v1/orion/nasushiobara/notifications", orion, {"Content-Type": "application/json", **orion_headers}
        ),
    )

    for door, result in (("gateway", readings), ("orion", notifications)):
        print(
            f"\n{door} burst: {dict(result.statuses)} in {result.elapsed_s:.1f} s; right token: "
            + ", ".join(f"{who} {s} in {t:.2f} s" for who, (s, t) in result.right.items())
        )
        _assert_refused_and_right_gets_in(result, ok=202)
    assert _counter(metrics.LOGIN_FAILURES) - failures == 400, "every refused attempt is counted"
