"""Watching the hub, for real: Debian's Prometheus (started here on a free port, stopped by its pid) scrapes real
bosai processes and evaluates deploy/prometheus/rules.yml; the brokers' JMX exporter on a real broker.

* the staleness drill: `bosai jma watch` polls a stand-in of JMA's feed; the stand-in goes down; the
  BosaiPollerStale alert fires. The rule's threshold is 180 s (promtool's tests check that timing); the drill's
  copy of the rules lowers only that number to 4 s, so the same expression is seen turning true in seconds;
* the dead-letter drill: a worker is fed undecodable messages; BosaiDeadLettersRising fires (the rule as it is);
* the broker's health: a broker started with the JMX exporter serves every metric the bosai-brokers rules read.
"""

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

import pytest
import yaml

from streams.hub.processes import WorkerProcess
from streams.hub.worker import WorkerSettings
from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform.kafka_admin import apply_topics
from streams.platform.kafka_node import free_port
from streams.platform.topic_catalog import load_default_catalog
from tests.support.jma_samples import KANAGAWA, sample
from tests.support.stand_ins import JmaFeed

STALE_TEST_S = 4  # the drill's threshold for BosaiPollerStale (180 in rules.yml)


class Prometheus:
    """Debian's prometheus on a free port with a temporary config, scraping every second; stopped by its pid."""

    def __init__(self, tmp_path, project_root, jobs: dict[str, list[str]], rules: dict):
        binary = shutil.which("prometheus")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("prometheus is missing: .ci/run installs Debian's prometheus")
            pytest.skip("prometheus not installed (apt-get install prometheus)")
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "prometheus.log", "wb"),
        )

    def api(self, path: str, **params: str) -> object:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as answer:
            doc = json.loads(answer.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def firing(self, alertname: str) -> list[dict]:
        return [
            a["labels"]
            for a in self.api("alerts")["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def wait_for(self, what, timeout_s: float, describe: str):  # noqa: ANN001
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                found = what()
            except OSError:  # Prometheus still starting
                found = None
            if found:
                return found
            time.sleep(0.5)
        pytest.fail(f"{describe} within {timeout_s:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def rules_of(project_root) -> dict:
    return yaml.safe_load((project_root / "deploy/prometheus/rules.yml").read_text())


def rule(rules: dict, name: str) -> dict:
    return next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == name)


def test_the_staleness_alert_fires_when_the_jma_pollers_source_stops(kafka_bootstrap, unique, project_root, tmp_path):
    prefix = f"stale{unique}"
    pack_dir = project_root / "regions" / "kanagawa"
    asyncio.run(
        apply_topics(kafka_bootstrap, expand(load_default_catalog(prefix), [load_pack(pack_dir).topics_input()]))
    )
    feed = JmaFeed()
    feed.up()
    feed.publish("k1.xml", sample(KANAGAWA[0]))
    rules = rules_of(project_root)
    stale = rule(rules, "BosaiPollerStale")
    assert re.search(r"> 180$", stale["expr"]), stale["expr"]  # 3 minutes in the real rules
    stale["expr"] = re.sub(r"> 180$", f"> {STALE_TEST_S}", stale["expr"])
    port = free_port()
    log = open(tmp_path / "jma-watch.log", "wb")
    poller = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli.__main__",
            "jma",
            "watch",
            "--region",
            str(pack_dir),
            "--topic-prefix",
            prefix,
            "--feed",
            f"{feed.url}{feed.FEED}",
            "--interval",
            "1",
            "--timeout",
            "1",
            "--attempts",
            "1",
            "--metrics-port",
            str(port),
        ],
        env=dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, PYTHONUNBUFFERED="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prometheus = Prometheus(tmp_path, project_root, {"bosai-pollers": [f"127.0.0.1:{port}"]}, rules)
    try:
        prometheus.wait_for(
            lambda: prometheus.query('bosai_ready{check="kafka"} == 1'), 90, "the poller ready and scraped"
        )
        prometheus.wait_for(
            lambda: prometheus.query('bosai_poll_last_success_timestamp_seconds{poller="jma"} > 0'), 30, "a success"
        )
        time.sleep(STALE_TEST_S + 2)  # polling every second against a live source: never stale
        assert prometheus.query(stale["expr"]) == []
        assert prometheus.firing("BosaiPollerStale") == []

        feed.down()  # JMA's feed gone: every poll fails from now on
        stopped = time.monotonic()
        [alert] = prometheus.wait_for(lambda: prometheus.firing("BosaiPollerStale"), 60, "BosaiPollerStale firing")
        assert alert["poller"] == "jma" and alert["severity"] == "critical"
        assert time.monotonic() - stopped >= STALE_TEST_S - 1
        [value] = prometheus.query(stale["expr"])
        assert float(value["value"][1]) > STALE_TEST_S
        failures = prometheus.query('sum(bosai_poll_requests_total{poller="jma", result="connection_error"})')
        assert failures and float(failures[0]["value"][1]) > 0
        assert poller.poll() is None  # the poller itself lives on, retrying
    finally:
        prometheus.stop()
        poller.terminate()
        poller.wait(timeout=30)
        feed.close()


async def _produce_garbage(bootstrap: str, topic: str, count: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, b"not avro at all %d" % i, key=b"41277")
    finally:
        await producer.stop()


def test_the_dead_letter_alert_fires_when_a_worker_dead_letters_a_burst(
    kafka_bootstrap, unique, project_root, tmp_path
):
    prefix = f"dlq{unique}"
    pack = load_pack(project_root / "regions" / "tochigi")
    catalog = load_default_catalog(prefix)
    asyncio.run(apply_topics(kafka_bootstrap, expand(catalog, [pack.topics_input()])))
    port = free_port()
    worker = WorkerProcess(
        pack.path,
        prefix,
        kafka_bootstrap,
        tmp_path / "worker.log",
        settings=WorkerSettings(pack_dir="", metrics_port=port),
    )
    worker.start()
    rules = rules_of(project_root)
    prometheus = Prometheus(tmp_path, project_root, {"bosai-hub": [f"127.0.0.1:{port}"]}, rules)
    try:
        prometheus.wait_for(
            lambda: prometheus.query('min(bosai_ready{check=~"kafka|assignment"}) == 1'), 120, "the worker ready"
        )
        assert prometheus.firing("BosaiDeadLettersRising") == []
        asyncio.run(_produce_garbage(kafka_bootstrap, HubTopics.for_region(catalog, pack).raw, 30))
        [alert] = prometheus.wait_for(
            lambda: prometheus.firing("BosaiDeadLettersRising"), 90, "BosaiDeadLettersRising firing"
        )
        assert (alert["region"], alert["reason"], alert["severity"]) == ("tochigi", "undecodable", "warning")
        [value] = prometheus.query(rule(rules, "BosaiDeadLettersRising")["expr"])
        assert float(value["value"][1]) > 10
    finally:
        prometheus.stop()
        worker.stop()


def test_a_broker_started_with_the_jmx_exporter_serves_what_the_broker_rules_read(project_root, tmp_path):
    from streams.platform.broker import EmbeddedBroker

    broker = EmbeddedBroker(f"jmx-{os.getpid()}", root=tmp_path / "broker")
    state = broker.up(progress=print, heap="384m", jmx_exporter=True)
    try:
        port = state.nodes[0].jmx_exporter_port
        assert port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        samples = {
            line.split("{")[0].split(" ")[0]: line for line in text.splitlines() if line and not line.startswith("#")
        }
        broker_rules = next(g for g in rules_of(project_root)["groups"] if g["name"] == "bosai-brokers")["rules"]
        names = {n for r in broker_rules for n in re.findall(r"\bkafka_[a-z_]+", r["expr"])}
        assert len(names) == 5
        assert names <= set(samples), sorted(names - set(samples))
        assert samples["kafka_controller_kafkacontroller_activecontrollercount"].endswith(" 1.0")
        assert samples["kafka_server_replicamanager_underreplicatedpartitions"].endswith(" 0.0")
        assert samples["kafka_controller_kafkacontroller_offlinepartitionscount"].endswith(" 0.0")
        assert "kafka_log_log_size{" in text  # disk: each partition's log size (the dashboard's panel)
    finally:
        broker.down(progress=print)
