"""`bosai amedas watch` against map files generated from the real AMeDAS CSV in JMA's layout, on the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from streams.kernel.times import HOUR_MS, parse_jst
from streams.kernel.topics import HubTopics, expand
from streams.observed.amedas_map import SOURCE
from streams.observed.amedas_watch import AmedasSettings, AmedasWatcher, watch
from streams.packs.region_pack import load_pack
from streams.platform import kafka, metrics
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.http_fetch import RetryPolicy
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import load_default_catalog
from tests.support.stand_ins import AmedasData

STORE = default_store()
CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
NOON = parse_jst("2023-09-04T12:00", option="t")


@pytest.fixture(scope="module")
def packs(project_root):
    return [project_root / "regions" / "tochigi", project_root / "regions" / "kanagawa"]


async def ready(bootstrap, prefix, pack_dirs):
    catalog = load_default_catalog(prefix)
    await apply_topics(bootstrap, expand(catalog, [load_pack(d).topics_input() for d in pack_dirs]))
    return catalog


async def readings(bootstrap, catalog, pack_dirs) -> list[dict]:
    topics = [HubTopics.for_region(catalog, load_pack(d)).raw for d in pack_dirs]
    return [AvroCodec(STORE, READING).decode(m.value) for m in await kafka.read_since(bootstrap, topics, 0)]


def expected(data: AmedasData, times) -> set[tuple[str, int]]:
    return {(sid, t) for t in times for sid in data.maps.get(t, {})}


def files(outcome: str) -> float:
    return metrics.AMEDAS_FILES.labels(outcome)._value.get()


async def test_a_backfill_writes_each_station_s_precipitation_once_through_faults_and_a_changed_layout(
    kafka_bootstrap, unique, packs, project_root
):
    catalog = await ready(kafka_bootstrap, f"aw{unique}", packs)
    data = AmedasData(project_root / CSV, NOON, NOON + 6 * HOUR_MS)
    data.up()
    data.slow_s = 1.0
    base = f"{data.url}{data.BASE}"
    data.faults[f"{data.BASE}/map/20230904130000.json"] = ["500"]
    data.faults[f"{data.BASE}/map/20230904140000.json"] = ["truncated"]
    data.faults[f"{data.BASE}/map/20230904150000.json"] = ["slow"]
    data.broken_layout.add(NOON + 4 * HOUR_MS)  # 16:00 comes in a layout the poller does not know
    settings = AmedasSettings(
        base_url=base,
        since_ms=NOON,
        until_ms=NOON + 6 * HOUR_MS,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05, timeout_s=0.5),
    )
    layout_errors = metrics.POLL_LAYOUT_ERRORS.labels("amedas")._value.get()
    missing = files("missing")
    watcher = AmedasWatcher([load_pack(d) for d in packs], catalog, STORE, kafka_bootstrap, settings)

    await watch(watcher, progress=print)

    data.close()
    got = await readings(kafka_bootstrap, catalog, packs)
    hours = [NOON + h * HOUR_MS for h in range(7) if h != 4]
    assert {(r["station_id"], r["observed_at"]) for r in got} == expected(data, hours)
    assert len(got) == len(expected(data, hours)) and all(r["source"] == SOURCE for r in got)
    utsunomiya_15 = next(r for r in got if r["station_id"] == "41277" and r["observed_at"] == NOON + 3 * HOUR_MS)
    values = {m["quantity"]: m["value"] for m in utsunomiya_15["measurements"]}
    assert values["precipitation_1h"] == data.maps[NOON + 3 * HOUR_MS]["41277"]["precipitation1h"][0]
    assert values["precipitation_10min"] is None  # not in the hourly CSV: MISSING, never invented
    assert metrics.POLL_LAYOUT_ERRORS.labels("amedas")._value.get() - layout_errors == 1
    assert files("missing") - missing == 6 * 5  # the 10-minute steps between the hours: no file here
    assert data.violations == []


async def test_live_polling_catches_up_after_a_gap_up_to_its_limit_and_survives_an_outage(
    kafka_bootstrap, unique, packs, project_root
):
    catalog = await ready(kafka_bootstrap, f"al{unique}", packs)
    data = AmedasData(project_root / CSV, NOON, NOON + 6 * HOUR_MS)
    data.up()
    data.latest_ms = NOON + HOUR_MS
    settings = AmedasSettings(
        base_url=f"{data.url}{data.BASE}",
        interval_s=0.05,
        max_catch_up=13,  # two hours and ten minutes of files
        max_polls=1,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02, timeout_s=0.5),
    )
    watcher = AmedasWatcher([load_pack(d) for d in packs], catalog, STORE, kafka_bootstrap, settings)

    await watch(watcher, progress=print)  # first start: the latest file only (13:00)
    data.down()
    await watch(watcher, progress=print)  # JMA unreachable: nothing, no harm
    data.up()
    data.latest_ms = NOON + 6 * HOUR_MS  # five hours later
    await watch(watcher, progress=print)  # catch up: at most 13 files, 16:00 .. 18:00
    await watch(watcher, progress=print)  # nothing new

    data.close()
    got = await readings(kafka_bootstrap, catalog, packs)
    times = sorted({r["observed_at"] for r in got})
    assert times == [NOON + HOUR_MS, NOON + 4 * HOUR_MS, NOON + 5 * HOUR_MS, NOON + 6 * HOUR_MS]
    assert len(got) == len({(r["station_id"], r["observed_at"]) for r in got}) and data.violations == []


def test_killing_a_backfill_and_running_it_again_writes_nothing_twice_and_skips_nothing(
    kafka_bootstrap, unique, packs, project_root, tmp_path
):
    prefix = f"ak{unique}"
    catalog = asyncio.run(ready(kafka_bootstrap, prefix, packs))
    start = parse_jst("2023-09-04T00:00", option="t")
    data = AmedasData(project_root / CSV, start, start + 12 * HOUR_MS)
    data.up()
    data.delay_s[f"{data.BASE}/map/"] = 0.08
    command = [sys.executable, "-m", "streams.cli", "amedas", "watch", "--topic-prefix", prefix]
    command += [a for d in packs for a in ("--region", str(d))]
    command += ["--base-url", f"{data.url}{data.BASE}", "--since", "2023-09-04T00:00", "--until", "2023-09-04T12:00"]
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    want = expected(data, range(start, start + 12 * HOUR_MS + 1, HOUR_MS))
    log = tmp_path / "poller.log"
    try:
        with open(log, "w") as out:
            first = subprocess.Popen(command, env=env, cwd=project_root, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(asyncio.run(readings(kafka_bootstrap, catalog, packs))) < 60:
            assert time.monotonic() < deadline and first.poll() is None, log.read_text()
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = len(asyncio.run(readings(kafka_bootstrap, catalog, packs)))
        with open(log, "a") as out:
            second = subprocess.run(
                command, env=env, cwd=project_root, stdout=out, stderr=subprocess.STDOUT, timeout=120
            )
    finally:
        data.close()

    got = asyncio.run(readings(kafka_bootstrap, catalog, packs))
    pairs = Counter((r["station_id"], r["observed_at"]) for r in got)
    assert second.returncode == 0, log.read_text()
    assert 60 <= before < len(want)
    assert set(pairs) == want and max(pairs.values()) == 1
    assert data.violations == []
