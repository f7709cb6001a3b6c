"""`bosai replay --regions DIR` of the narrow national layout with one worker process serving three prefectures'
packs (built as `bosai region init-all` builds them): its 1-hour rain alerts against the test's own reading of the
CSV and JMA's bands (20/30/50/80 mm).

The slice: two days of the heavy rain of 2023-09-04..05 in Tochigi and Kanagawa, reshaped to the narrow layout
(or, with BOSAI_NATIONAL_AMEDAS naming the national file, a few hours of it); Gunma's pack gets what the file has of
its stations (none in the Tochigi–Kanagawa file): a region without readings changes nothing."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from streams.kernel.times import parse_jst
from streams.packs.national import init_all
from streams.packs.region_pack import load_pack, pack_dirs_under

PREFECTURES = ("09", "10", "14")  # Tochigi, Gunma, Kanagawa
WIDE_CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
SINCE, UNTIL = "2023-09-04T00:00:00+09:00", "2023-09-06T00:00:00+09:00"  # two days: two windows of the reader
NATIONAL_HOURS = ("2023-09-04T12:00:00+09:00", "2023-09-04T18:00:00+09:00")
BANDS = ((80.0, "extreme"), (50.0, "very_heavy"), (30.0, "intense"), (20.0, "heavy"))
BUDGET_S = 60.0


def _band(value: float | None) -> str | None:
    return next((name for threshold, name in BANDS if value is not None and value >= threshold), None)


@pytest.fixture(scope="module")
def packs_dir(project_root, tmp_path_factory) -> Path:
    n03 = tmp_path_factory.mktemp("n03")
    for code in PREFECTURES:
        source = project_root / f"data/n03/japan/N03-21_{code}.geojson.gz"
        (n03 / source.name).symlink_to(source)
    out = tmp_path_factory.mktemp("packs")
    init_all(n03, project_root / "data/amedas/japan-stations.csv", out, sharing="public")
    return out


def _narrow_slice(project_root: Path, path: Path) -> Path:
    """The slice in the narrow layout: observed_at,station_id,precip_1h_mm,precip_24h_mm, in time order."""
    national = os.environ.get("BOSAI_NATIONAL_AMEDAS")
    source = Path(national) if national else project_root / WIDE_CSV
    since, until = NATIONAL_HOURS if national else (SINCE, UNTIL)
    rows = []
    with gzip.open(source, "rt", encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["observed_at"] >= until:
                break  # both files are in time order
            if row["observed_at"] >= since:
                rows.append((row["observed_at"], row["station_id"], row["precip_1h_mm"], row["precip_24h_mm"]))
    rows.sort()
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["observed_at", "station_id", "precip_1h_mm", "precip_24h_mm"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def replayed(kafka_bootstrap, project_root, packs_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("many")
    narrow = _narrow_slice(project_root, work / "narrow.csv.gz")
    alerts_out = work / "alerts.jsonl"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, BOSAI_CACHE_DIR=str(work / "cache"))
    env["PYTHONUNBUFFERED"] = "1"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "--regions", str(packs_dir), "--csv", str(narrow)]
        + ["--workers", "1", "--alerts-out", str(alerts_out), "--topic-prefix", "itmany", "--timeout", "50"],
        env=env,
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=BUDGET_S + 30,
    )
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    alerts = [json.loads(line) for line in alerts_out.read_text(encoding="utf-8").splitlines()]
    return narrow, alerts, done, wall


def _expected(narrow: Path, stations: set[str]) -> dict[str, list[tuple[int, float | None]]]:
    """Each station's 1-hour values in time order, read by the test itself."""
    values: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    with gzip.open(narrow, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["station_id"] in stations:
                text = row["precip_1h_mm"].strip()
                hour = parse_jst(row["observed_at"], option="csv")
                values[row["station_id"]].append((hour, float(text) if text else None))
    return values


def test_one_worker_serves_three_prefectures_and_raises_what_the_bands_say(replayed, packs_dir):
    narrow, alerts, done, wall = replayed
    packs = [load_pack(d) for d in pack_dirs_under(packs_dir)]
    assert sorted(p.name for p in packs) == ["gunma", "kanagawa", "tochigi"]
    home = {sid: p.name for p in packs for sid in p.stations}
    values = _expected(narrow, set(home))
    rain = [a for a in alerts if a["rule"] == "rain_1h" and a["msg_type"] in ("ALERT", "UPDATE")]
    by_station: dict[str, list[dict]] = defaultdict(list)
    for alert in rain:
        by_station[alert["station_id"]].append(alert)

    expected_raised = {sid for sid, vs in values.items() if any(_band(v) for _, v in vs)}
    assert expected_raised, "the slice has heavy rain"
    assert set(by_station) == expected_raised
    ranks = {name: rank for rank, (_, name) in enumerate(reversed(BANDS), start=1)}
    for sid, raised in by_station.items():
        first_hour, first_value = next((t, v) for t, v in values[sid] if _band(v))
        first = raised[0]
        assert (first["msg_type"], first["level"], first["value"]) == ("ALERT", _band(first_value), first_value)
        assert parse_jst(first["observed_at"], option="alert") == first_hour
        highest = max((v for _, v in values[sid] if v is not None), default=0.0)
        assert max(ranks[a["level"]] for a in raised) == ranks[_band(highest)], sid
        assert all(t.startswith(f"itmany.{home[sid]}.") for t in first["topics"]), first["topics"]

    assert "1 worker(s)" in done.stderr and "the narrow layout" in done.stderr
    print(f"many regions: {len(rain)} rain_1h events of {len(by_station)} stations, replay wall {wall:.1f} s")
    assert wall < BUDGET_S
