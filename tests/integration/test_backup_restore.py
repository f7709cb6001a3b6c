"""The restore drill: a hub backed up in the middle of the heavy rain of 2023-09-04, restored onto a second, fresh
cluster, has the same records and the same open alerts, and its worker carries on with the next readings without
repeating an alert or a reading.

On the session broker a Tochigi replay of 2023-09-04 00:00–15:00 (JST) leaves alerts open; `bosai backup create`
and `bosai backup verify` run as an operator runs them; a second embedded broker (stopped by its pid in the end)
gets `bosai backup restore`; the readings of 15:00–24:00 then go through a worker on the restored cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.hub.replay import ReplaySettings, run_replay
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.ops.backup import load_manifest
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.avro import ALERT, READING, AvroCodec, default_store
from streams.platform.broker import EmbeddedBroker
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
START, CUT, END = "2023-09-04T00:00", "2023-09-04T15:00", "2023-09-05T00:00"
TIMES: dict[str, float] = {}


def _replay(root: Path, bootstrap: str, prefix: str, since: str, until: str, log_dir: Path):
    settings = ReplaySettings(
        [load_pack(root / "regions" / "tochigi")],
        load_catalog(default_catalog_path()),
        csv_path=root / CSV,
        bootstrap=bootstrap,
        prefix=prefix,
        since_ms=parse_jst(since, option="--from"),
        until_ms=parse_jst(until, option="--to"),
        timeout_s=90,
        log_dir=log_dir,
        keep_topics=True,
    )
    return run_replay(settings, default_store(), print)


def _bosai(*args: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )
    took = TIMES[args[1] if args[1] not in TIMES else f"{args[1]} again"] = time.monotonic() - started
    print(f"bosai {' '.join(args)} -> {done.returncode} in {took:.1f} s\n{done.stderr}{done.stdout}")
    return done


def _everything(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], list[tuple]]:
    async def read() -> list[kafka.Record]:
        ends = await kafka.end_offsets(bootstrap, topics)
        return await kafka.read_range(bootstrap, dict.fromkeys(ends, 0), ends, timeout_s=30)

    found: dict[tuple[str, int], list[tuple]] = {}
    for m in asyncio.run(read()):
        found.setdefault((m.topic, m.partition), []).append((m.key, m.value, m.timestamp, tuple(m.headers or ())))
    return found


def _count(records: dict[tuple[str, int], list[tuple]], topic: str) -> int:
    return sum(len(items) for (name, _p), items in records.items() if name == topic)


def _open_alerts(records: dict[tuple[str, int], list[tuple]], topic: str) -> dict[str, tuple[int, str]]:
    """alert id -> (sequence, level) of each alert whose last event on the topic is not its CANCEL."""
    codec = AvroCodec(default_store(), ALERT)
    last: dict[str, dict] = {}
    for (name, _p), items in sorted(records.items()):
        if name == topic:
            for _key, value, _ts, _headers in items:
                alert = codec.decode(value)
                if alert["alert_id"] not in last or alert["sequence"] > last[alert["alert_id"]]["sequence"]:
                    last[alert["alert_id"]] = alert
    return {i: (a["sequence"], a["level"]) for i, a in last.items() if a["msg_type"] != "CANCEL"}


def _uninterrupted(root: Path) -> list[tuple[str, int, str, str]]:
    """The day's alert events from the pipeline itself, in one batch (no Kafka, no backup)."""
    pack = load_pack(root / "regions" / "tochigi")
    store = default_store()
    readings = [
        r
        for r in read_amedas(
            root / CSV, since_ms=parse_jst(START, option="--from"), until_ms=parse_jst(END, option="--to")
        )
        if r["station_id"] in pack.stations
    ]
    pipeline = Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), store)
    payloads = AvroCodec(store, READING).encode_many(readings)
    result = pipeline.process(
        [InMessage("raw", 0, i, None, p) for i, p in enumerate(payloads)], lambda _s: StationState()
    )
    return sorted(
        (a.record["alert_id"], a.record["sequence"], a.record["msg_type"], a.record["level"]) for a in result.alerts
    )


@pytest.fixture()
def second_cluster(tmp_path_factory):
    """A fresh single-node embedded broker, stopped by its pid whatever happens."""
    broker = EmbeddedBroker(f"pytest-restore-{os.getpid()}", root=tmp_path_factory.mktemp("restored"))
    started = time.monotonic()
    state = broker.up(progress=lambda m: print(f"[restore broker] {m}"), heap="512m")
    TIMES["second broker up"] = time.monotonic() - started
    try:
        yield state.bootstrap
    finally:
        broker.down()


def test_a_hub_restored_from_a_backup_has_the_same_alerts_and_carries_on(
    kafka_bootstrap, second_cluster, project_root, tmp_path, unique
):
    drill_started = time.monotonic()
    prefix = f"bk{unique}"
    first = _replay(project_root, kafka_bootstrap, prefix, START, CUT, tmp_path / "logs1")
    assert first.drained and first.alerts
    backup = tmp_path / "backup"
    region = str(project_root / "regions" / "tochigi")
    hub_args = ["--region", region, "--topic-prefix", prefix]

    created = _bosai("backup", "create", "--out", str(backup), *hub_args, "--bootstrap", kafka_bootstrap)
    assert created.returncode == 0
    assert "consistent" in created.stdout and "NOT consistent" not in created.stdout
    assert _bosai("backup", "verify", str(backup)).returncode == 0
    manifest = load_manifest(backup)
    group = f"{prefix}-tochigi-hub"
    assert group in manifest.groups  # the worker's input offsets are in the backup
    restored = _bosai(
        "backup", "restore", str(backup), "--bootstrap", second_cluster, "--files-to", str(tmp_path / "f")
    )
    assert restored.returncode == 0
    assert (tmp_path / "f" / "regions" / "tochigi" / "region.yaml").is_file()
    again = _bosai("backup", "restore", str(backup), "--bootstrap", second_cluster)
    assert again.returncode == 4 and "already hold records" in again.stderr  # never over a hub's data unasked

    # the same records, partition by partition, in the same order (keys, values, timestamps, headers)
    topics = [t.name for t in manifest.topics]
    source, target = _everything(kafka_bootstrap, topics), _everything(second_cluster, topics)
    assert source == target
    assert sum(len(v) for v in target.values()) == manifest.records > 0
    assert any(t.catalog_id == "state.readings" and t.records for t in manifest.topics)  # changelogs included

    # the same current alerts, and some are open at the cut
    alerts_topic = f"{prefix}.tochigi.alerts"
    open_before = _open_alerts(source, alerts_topic)
    assert open_before and _open_alerts(target, alerts_topic) == open_before

    # a worker on the restored cluster takes the next readings: no reading processed twice, no alert repeated
    second = _replay(project_root, second_cluster, prefix, CUT, END, tmp_path / "logs2")
    assert second.drained and second.dead_letters == 0
    enriched = f"{prefix}.tochigi.readings.enriched"
    after_restore = _everything(second_cluster, [enriched])
    assert _count(after_restore, enriched) - _count(source, enriched) == second.readings
    before = Counter((a["alert_id"], a["sequence"]) for a in first.alerts)
    after = Counter((a["alert_id"], a["sequence"]) for a in second.alerts)
    assert not set(before) & set(after), "an alert event was emitted again after the restore"
    continued = {a["alert_id"]: a["sequence"] for a in reversed(second.alerts) if a["alert_id"] in open_before}
    assert set(continued) == set(open_before), "an alert open at the cut did not go on after the restore"
    for alert_id, first_sequence in continued.items():
        assert first_sequence == open_before[alert_id][0] + 1, alert_id  # the sequence goes on where it was
    # nothing lost: before and after the restore, the alerts of the same day processed without interruption
    events = sorted((a["alert_id"], a["sequence"], a["msg_type"], a["level"]) for a in [*first.alerts, *second.alerts])
    assert events == _uninterrupted(project_root)
    TIMES["drill"] = time.monotonic() - drill_started
    print("drill figures: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))
    print(f"backup: {manifest.records} records, {sum(f.size for f in manifest.files)} bytes")


@pytest.mark.hardened
def test_a_hardened_hub_is_backed_up_as_the_admin_with_the_hubs_credential_kept_secret(
    hardened_kafka, project_root, tmp_path, unique
):
    """Hardened mode: the backup reads through the admin listener (by certificate, a super user), keeps the hub's
    client config 0600 and marked secret, and never prints its password; the cluster's own topics refuse a
    restore over them."""
    prefix = f"replay-bk{unique}"  # the hub's grants cover replay-* topics and groups
    first = _replay(project_root, hardened_kafka.bootstrap, prefix, START, CUT, tmp_path / "logs")
    assert first.drained and first.alerts
    backup = tmp_path / "backup"
    region = ["--region", str(project_root / "regions" / "tochigi"), "--topic-prefix", prefix]
    admin = ["--bootstrap", hardened_kafka.admin_bootstrap]

    created = _bosai("backup", "create", "--out", str(backup), *region, *admin, "--secret", hardened_kafka.hub_config)
    assert created.returncode == 0 and "cut consistent" in created.stdout
    manifest = load_manifest(backup)
    assert f"{prefix}-tochigi-hub" in manifest.groups and manifest.records > 0
    hub_copy = next(f for f in manifest.files if f.source == str(Path(hardened_kafka.hub_config).resolve()))
    assert hub_copy.secret and hub_copy.kind == "credential"
    assert stat.S_IMODE((backup / hub_copy.path).stat().st_mode) == 0o600
    password = json.loads(Path(hardened_kafka.hub_config).read_text())["password"]
    assert password not in created.stdout + created.stderr + (backup / "manifest.json").read_text()
    assert _bosai("backup", "verify", str(backup)).returncode == 0
    refused = _bosai("backup", "restore", str(backup), *admin)
    assert refused.returncode == 4 and "already hold records" in refused.stderr
