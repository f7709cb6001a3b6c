"""Every HTTP door fuzzed against its own OpenAPI document, live, with Schemathesis (its CLI, `schemathesis run`):
no 5xx, every status, content type, header and body as documented, 405 for an undocumented method, negative
data refused. Bounded: a seed and a few dozen examples per operation (a few hundred requests per door).

The registry is the `bosai registry serve` process; the map, the feed and the gateway run in this process
on the session broker, with real data (the 2023-09-04 heavy rain) and a real credential or token, so the
fuzzing reaches past the login. The gateway's run is in tests/integration/test_gateway.py (its fixtures).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from aiohttp import web

from streams.delivery import feed_server
from streams.delivery.atom import CurrentAlerts
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform.access_file import default_access_path, load_access
from streams.platform.kafka_admin import issue_credential, revoke_credential
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.publicmap import server as web_map
from streams.publicmap.live_stream import LiveStream
from tests.support.web_data import heavy_rain

SETTINGS = Path(__file__).parent / "schemathesis"
EXAMPLES = "25"


async def fuzz(url: str, *extra: str, config: str | None = None) -> str:
    """Run Schemathesis against a live door; its report, asserting it found nothing."""
    command = [str(Path(sys.executable).parent / "schemathesis")]
    if config:
        command += ["--config-file", str(SETTINGS / config)]
    command += ["run", f"{url}/openapi.json", "--checks", "all", "--max-examples", EXAMPLES, "--seed", "27"]
    command += ["--workers", "1", "--suppress-health-check", "all", "--no-color", *extra]
    with tempfile.TemporaryDirectory() as scratch:  # Schemathesis keeps a cache of crashes in its working folder
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=scratch,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    report = output.decode(errors="replace")
    print(report[-1500:])
    assert process.returncode == 0, report[-6000:]
    assert " passed" in report and "failure" not in report.rpartition("SUMMARY")[2], report[-3000:]
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_the_registry_answers_as_its_document_says(tmp_path):
    port = _free_port()
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "registry", "serve", "--port", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "registry.log").read_text()
                await asyncio.sleep(0.3)
        await fuzz(url, config="registry.toml")
        _clients_agree_on_the_ids(url)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _clients_agree_on_the_ids(url: str) -> None:
    """Confluent's own client reads the registry; the hub's, pointed at it (BOSAI_SCHEMA_REGISTRY_URL), finds the
    ids it writes without a registry, by look-up (a read-only registry refuses to register)."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from streams.platform.avro import ALERT, default_store
    from streams.platform.registry_client import SchemaRegistryClient as HubClient

    alert = default_store().by_name(ALERT)
    confluent = SchemaRegistryClient({"url": url})
    latest = confluent.get_latest_version("bosai.tochigi.alerts.09201-value")
    found = confluent.lookup_schema("bosai.tochigi.alerts.09201-value", Schema(alert.full, "AVRO"))
    assert latest.schema_id == found.schema_id == alert.registry_id and latest.version == 3
    assert confluent.get_schema(alert.registry_id).schema_str == alert.full
    assert HubClient(url).register("replay-x.tochigi.alerts.09201-value", alert) == alert.registry_id
    assert confluent.get_subjects()[:1] == ["bosai.kanagawa.alerts-value"]


def _tochigi_rain(project_root: Path):
    pack = load_pack(project_root / "regions" / "tochigi")
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    _records, enriched, alerts = heavy_rain(project_root, pack, topics, "2023-09-04T00:00", "2023-09-04T16:00")
    return pack, enriched, alerts


async def test_the_residents_map_answers_as_its_document_says(project_root):
    pack, enriched, alerts = _tochigi_rain(project_root)
    state = web_map.WebState([pack], LiveStream(heartbeat_s=1))
    state.apply(alerts=alerts, readings=enriched)
    state.ready = True
    handlers = web_map.WebHandlers(
        state,
        web_map.load_assets(project_root / "web"),
        web_map.page_config([pack], None, "", 1),
        web_map.security_headers(None),
    )
    runner, url = await _serve(web_map.build_app(handlers))
    try:
        await fuzz(url, "--exclude-path", "/api/v1/events")  # an endless stream: tests/unit/test_web_server.py
    finally:
        await runner.cleanup()


async def test_the_feed_answers_as_its_document_says(kafka_bootstrap, kafka_clients_listener, project_root):
    _pack, _enriched, alerts = _tochigi_rain(project_root)
    current = CurrentAlerts()
    for record in alerts:
        current.apply(record)
    policy = load_access(default_access_path())
    principal = policy.principal("muni-09201")
    password = await issue_credential(kafka_bootstrap, principal)
    checker = feed_server.CredentialChecker(*kafka_clients_listener, cache_s=300)
    app = feed_server.build_app(current, policy, checker, sender_names={}, zone_polygons={})
    runner, url = await _serve(app)
    try:
        await fuzz(url, "--auth", f"{principal.name}:{password}")
    finally:
        await runner.cleanup()
        await revoke_credential(kafka_bootstrap, principal.name)
