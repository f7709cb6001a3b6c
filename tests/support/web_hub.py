"""A `bosai web` process on the session's real broker, for the integration and browser tests.

Its topics get their own prefix; the heavy rain is written as the hub's pipeline writes it (enriched
readings, alert events on every topic they go to), and more records can be written while it runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import socket
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from streams.kernel.messages import OutRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.avro import ALERT, ENRICHED, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.publicmap.process import WebProcess
from streams.publicmap.server import WebSettings

INTERNAL_STATION = "M-09-001"  # a municipality's own rain gauge in 宇都宮市, not public


def tochigi_with_an_internal_gauge(project_root: Path, target: Path) -> Path:
    """The Tochigi pack plus one station whose sharing level is not given (so internal)."""
    shutil.copytree(project_root / "regions" / "tochigi", target)
    with open(target / "stations.csv", "a", encoding="utf-8") as handle:
        handle.write(f"{INTERNAL_STATION},rain_gauge,市独自雨量計,City gauge,36.56,139.88,110\n")
    return target


def run_async(make_coroutine):
    """Run a coroutine to its end on a thread of its own (Playwright's sync API holds this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebHub:
    """Topics under their own prefix, a writer for them, and the `bosai web` process reading them."""

    def __init__(self, bootstrap: str, pack_dir: Path, prefix: str, log_dir: Path, *, heartbeat_s: float = 2.0):
        self.bootstrap = bootstrap
        self.pack: RegionPack = load_pack(pack_dir)
        self.catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
        self.topics = HubTopics.for_region(self.catalog, self.pack)
        self.alerts_codec = AvroCodec(default_store(), ALERT)
        self.enriched_codec = AvroCodec(default_store(), ENRICHED)
        run_async(lambda: apply_topics(bootstrap, expand(self.catalog, [self.pack.topics_input()])))
        self.process = WebProcess(
            WebSettings(
                pack_dirs=[str(pack_dir)],
                topic_prefix=prefix,
                port=free_port(),
                heartbeat_s=heartbeat_s,
                queue_limit=256,
            ),
            bootstrap,
            log_dir / f"web-{prefix}.log",
        )

    @property
    def url(self) -> str:
        return self.process.url

    def write(self, records: Sequence[OutRecord]) -> None:
        async def send() -> None:
            sender = kafka.BatchSender(self.bootstrap)
            await sender.start()
            try:
                await sender.send(records)
            finally:
                await sender.stop()

        run_async(send)

    def alert_records(self, record: dict, *, topics: Sequence[str] | None = None) -> list[OutRecord]:
        """An alert event on the topics the hub's fan-out would use (or the ones given)."""
        if topics is None:
            topics = [self.topics.alerts]
            if record["sharing_level"] in ("PUBLIC", "MUNICIPAL"):
                topics += [self.topics.municipal[c] for c in record["municipality_codes"] if c in self.topics.municipal]
            if record["sharing_level"] == "PUBLIC":
                topics.append(self.topics.public)
        value = self.alerts_codec.encode(record)
        return [OutRecord(t, record["alert_id"].encode(), value) for t in topics]

    def enriched_record(self, enriched: dict) -> OutRecord:
        return OutRecord(
            self.topics.enriched, enriched["reading"]["station_id"].encode(), self.enriched_codec.encode(enriched)
        )

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as response:
            return json.load(response)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def internal_reading(observed_at: int, value: float = 99.0) -> dict:
    """An enriched reading of the internal gauge, as the pipeline would write it."""
    return {
        "reading": {
            "station_id": INTERNAL_STATION,
            "sensor_kind": "RAIN_GAUGE",
            "observed_at": observed_at,
            "location": None,
            "measurements": [{"quantity": "precipitation_1h", "value": value, "unit": "mm"}],
            "quality": "OK",
            "source": "city",
            "produced_at": None,
        },
        "region": "tochigi",
        "municipality_code": "09201",
        "city_code": None,
        "geofence_method": "contains",
        "distance_m": 0.0,
        "hazard_zones": [],
    }
