"""What operators use, against the real broker: `bosai tail`, and Prometheus scraping a working hub."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import replace

import pytest
import yaml

from streams.hub.processes import WorkerProcess
from streams.hub.replay import wait_drained
from streams.hub.worker import WorkerSettings
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics, expand
from streams.observed.amedas_csv import read_amedas
from streams.ops.grafana import WORKER_DASHBOARDS, queries, render
from streams.packs.region_pack import load_pack
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.kafka import end_offsets
from streams.platform.kafka_admin import apply_topics
from streams.platform.kafka_node import free_port as _free_port
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"


async def _produce(bootstrap, topic, items, pause_s=0.0):
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for start in range(0, len(items), 100):
            await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in items[start : start + 100]])
            await asyncio.sleep(pause_s)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def running_hub(kafka_bootstrap, project_root, tmp_path_factory):
    """A Tochigi hub worker with its metrics endpoint, fed 2023-09-04..06 and a few bad messages."""
    pack = load_pack(project_root / "regions/tochigi")
    prefix = "ops"
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()])))
    topics = HubTopics.for_region(catalog, pack)
    port = _free_port()
    worker = WorkerProcess(
        pack.path,
        prefix,
        kafka_bootstrap,
        tmp_path_factory.mktemp("ops") / "worker.log",
        settings=WorkerSettings(pack_dir="", metrics_port=port),
    )
    worker.start()
    records = [
        r
        for r in read_amedas(
            project_root / CSV,
            since_ms=parse_jst("2023-09-04", option="f"),
            until_ms=parse_jst("2023-09-07", option="t"),
        )
        if r["station_id"] in pack.stations
    ]
    items = [
        (r["station_id"].encode(), p)
        for r, p in zip(
            records,
            AvroCodec(default_store(), READING).encode_many(
                [dict(r, produced_at=int(time.time() * 1000)) for r in records]
            ),
            strict=False,
        )
    ]
    items[100:100] = [(b"41277", b"not avro at all")] * 3
    yield {"pack": pack, "topics": topics, "port": port, "worker": worker, "items": items, "prefix": prefix}
    worker.stop()


def _feed_and_drain(kafka_bootstrap, hub, pause_s):
    asyncio.run(_produce(kafka_bootstrap, hub["topics"].raw, hub["items"], pause_s))
    ends = asyncio.run(end_offsets(kafka_bootstrap, [hub["topics"].raw]))
    assert asyncio.run(
        wait_drained(
            kafka_bootstrap,
            f"{hub['prefix']}-tochigi-hub",
            ends,
            timeout_s=120,
            progress=print,
            workers=[hub["worker"]],
        )
    )


def test_prometheus_scrapes_the_hub_and_every_dashboard_and_rule_expression_returns_data(
    kafka_bootstrap, running_hub, project_root, tmp_path
):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is missing: .ci/run installs Debian's prometheus")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    shutil.copy(project_root / "deploy/prometheus/rules.yml", tmp_path / "rules.yml")
    config = yaml.safe_load((project_root / "deploy/prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{running_hub['port']}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = _free_port()
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "wb"),
    )
    try:
        _feed_and_drain(kafka_bootstrap, running_hub, pause_s=0.3)  # about 4 s of paced input
        time.sleep(8)  # a few more scrapes, and the consumer-lag sampler's next round

        def query(expr: str) -> list:
            url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        rules = yaml.safe_load((project_root / "deploy/prometheus/rules.yml").read_text())
        expressions = set()
        boards = [text for name, text in render().items() if name[len("bosai-") : -len(".json")] in WORKER_DASHBOARDS]
        for expr in [e for text in boards for e in queries(text)] + [r["expr"] for r in rules["groups"][0]["rules"]]:
            # a filtering comparison (an alert that is not firing, "> 0" in a table) returns data only
            # when it holds: evaluate the signals it compares
            for side in re.split(r"\s+(?:and|or|unless)\s+", expr):
                expressions.add(re.sub(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.e+]+\s*$", "", side))
        empty = []
        for expr in sorted(expressions):
            concrete = expr.replace("$region", ".*").replace("$__rate_interval", "30s").replace("$__range", "5m")
            if not query(concrete):
                empty.append(concrete)
        assert empty == [], f"expressions without data: {empty}"
        assert float(query('sum(bosai_dead_letters_total{reason="undecodable"})')[0]["value"][1]) == 3
        assert float(query("sum(bosai_consumer_lag_messages)")[0]["value"][1]) == 0  # drained: nothing left
        assert float(query("count(bosai_station_silence_seconds)")[0]["value"][1]) == len(running_hub["pack"].stations)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_tail_follows_a_municipality_and_decodes_its_alerts(kafka_bootstrap, running_hub, project_root):
    if not asyncio.run(end_offsets(kafka_bootstrap, [running_hub["topics"].municipal["09201"]])):
        pytest.fail("no alerts topic")
    ends = asyncio.run(end_offsets(kafka_bootstrap, [running_hub["topics"].raw]))
    if sum(ends.values()) == 0:
        _feed_and_drain(kafka_bootstrap, running_hub, pause_s=0.0)
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    base = [
        sys.executable,
        "-m",
        "streams.cli",
        "tail",
        "--region",
        str(project_root / "regions/tochigi"),
        "--topic-prefix",
        "ops",
        "--from-beginning",
        "--timeout",
        "3",
    ]

    lines = subprocess.run(base + ["--municipality", "宇都宮市"], capture_output=True, text=True, env=env, timeout=60)
    as_json = subprocess.run(
        base + ["--municipality", "09209", "--json", "--max", "1"], capture_output=True, text=True, env=env, timeout=60
    )
    wrong = subprocess.run(base + ["--municipality", "横浜市"], capture_output=True, text=True, env=env, timeout=60)

    assert lines.returncode == 0, lines.stderr
    assert "ops.tochigi.alerts.09201" in lines.stderr
    assert any("非常に激しい雨" in line and "tochigi-rain_1h-41277-" in line for line in lines.stdout.splitlines())
    assert all("→ 09201" in line for line in lines.stdout.splitlines())
    record = json.loads(as_json.stdout)
    assert record["topic"] == "ops.tochigi.alerts.09209" and record["schema"] == "Alert"
    assert record["value"]["municipality_codes"] == ["09209"]
    assert wrong.returncode != 0 and "no municipality of tochigi" in wrong.stderr
