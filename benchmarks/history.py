"""`bosai bench history`: what the archive costs and how fast it answers.

* **storage**: a station-year of every Tochigi station (hourly, the real 2023 values cycled over 365 days),
  written with the archiver's own rows and files (one file per station-day folder flush, as the archiver's
  compaction leaves a finished day), then bytes per reading on disk;
* **queries**: ``bosai history readings``' query of one station over the whole year (8,760 readings), and of
  one day, repeated: p50 / p99 / max in ms (DuckDB over the committed files);
* **archiver vs the hub** (with a broker): a replay of real readings through the hub alone (its drain
  time), then the archiver over the same topics until caught up: records per second of each, and the
  archiver's time as a share of the hub's.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str], None]
CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max": round(ordered[-1], 2),
    }


def station_year(root: Path, work: Path, *, days: int, progress: Progress) -> dict:
    """Write ``days`` days of every Tochigi station into an archive at ``work`` and measure it."""
    from streams.history.layout import Manifest
    from streams.history.rows import Source, reading_row
    from streams.history.store import ArchiveStore
    from streams.kernel.times import parse_jst
    from streams.observed.amedas_csv import read_amedas
    from streams.packs.region_pack import load_pack

    pack = load_pack(root / "regions" / "tochigi")
    real = [r for r in read_amedas(root / CSV) if r["station_id"] in pack.stations]
    by_station: dict[str, list[dict]] = {}
    for record in real:
        by_station.setdefault(record["station_id"], []).append(record)
    stations = {s.station_id: (s.lon, s.lat, s.alt_m) for s in pack.stations.values()}
    start = parse_jst("2023-01-01", option="start")
    shutil.rmtree(work, ignore_errors=True)
    store, manifest, offset = ArchiveStore(work), Manifest(), 0
    progress(f"writing {days} days x {len(by_station)} stations of hourly readings into {work} …")
    started = time.perf_counter()
    for day in range(days):
        rows = []
        for station_id, records in sorted(by_station.items()):
            for hour in range(24):
                source = records[(day * 24 + hour) % len(records)]
                enriched = {
                    "reading": {**source, "observed_at": start + day * DAY_MS + hour * HOUR_MS},
                    "region": pack.name,
                    "municipality_code": pack.stations[station_id].municipality_code,
                    "city_code": None,
                    "geofence_method": "contains",
                    "distance_m": 0.0,
                    "hazard_zones": [],
                }
                key, row = reading_row(enriched, Source("bosai.tochigi.readings.enriched", 0, offset), stations)
                rows.append(row)
                offset += 1
        ranges = {"bosai.tochigi.readings.enriched": {0: (offset - len(rows), offset - 1)}}
        written = store.write(key, rows, sequence=manifest.sequence + 1, index=0, offsets=ranges)
        manifest = manifest.committed([written], {"bosai.tochigi.readings.enriched": {0: offset}}, 0)
        store.commit(manifest)
    write_s = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (work / "readings").rglob("*.parquet"))
    return {
        "stations": len(by_station),
        "days": days,
        "readings": offset,
        "files": len(manifest.files),
        "bytes": size,
        "bytes_per_reading": round(size / offset, 1),
        "write_readings_per_s": round(offset / write_s),
        "start_ms": start,
    }


def queries(work: Path, start_ms: int, days: int, *, repeat: int, progress: Progress) -> dict:
    from streams.history.query import Filter
    from streams.history.reader import ArchiveReader

    reader = ArchiveReader(work)
    results = {}
    for name, span in (("station_year", days), ("station_day", 1)):
        since = start_ms + (0 if span == days else (days // 2) * DAY_MS)
        where = Filter("readings", since_ms=since, until_ms=since + span * DAY_MS, station_ids=("41277",))
        timings, count = [], 0
        progress(f"query {name}: {repeat} times …")
        for _ in range(repeat):
            started = time.perf_counter()
            count = len(reader.rows(where))
            timings.append((time.perf_counter() - started) * 1000)
        results[name] = {"readings": count, **_percentiles(timings)}
    return results


def archiver_vs_hub(root: Path, bootstrap: str, work: Path, *, until: str, progress: Progress) -> dict:
    """The hub alone on a replay, then the archiver over the replay's topics (until caught up)."""
    import asyncio

    from streams.history.archiver import Archiver, ArchiveSettings
    from streams.hub.replay import ReplaySettings, run_replay
    from streams.kernel.times import parse_jst
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import default_store
    from streams.platform.kafka_admin import delete_namespace
    from streams.platform.topic_catalog import load_default_catalog

    packs = [load_pack(root / "regions" / "tochigi")]
    prefix = time.strftime("replay-benchhist%H%M%S")
    catalog = load_default_catalog(prefix)
    settings = ReplaySettings(
        packs,
        catalog,
        csv_path=root / CSV,
        bootstrap=bootstrap,
        prefix=prefix,
        since_ms=parse_jst("2023-07-13", option="--from"),
        until_ms=parse_jst(until, option="--to"),
        timeout_s=600,
        log_dir=work / "logs",
        keep_topics=True,
    )
    try:
        replayed = run_replay(settings, default_store(), progress)
        archive = work / "archive"
        shutil.rmtree(archive, ignore_errors=True)
        archiver = Archiver(
            ArchiveSettings(archive, packs, catalog, bootstrap, until_caught_up=True), default_store(), progress
        )
        started, cpu = time.perf_counter(), time.process_time()
        stats = asyncio.run(archiver.run())
        archive_s, archive_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        asyncio.run(delete_namespace(bootstrap, prefix, [p.name for p in packs]))
    hub_s = replayed.drain_s + replayed.produce_s
    return {
        "readings": replayed.readings,
        "alert_events": len(replayed.alerts),
        "hub_s": round(hub_s, 2),
        "hub_readings_per_s": round(replayed.readings / hub_s),
        "archived_records": stats.records,
        "archive_s": round(archive_s, 2),
        "archive_cpu_s": round(archive_cpu, 2),
        "archive_records_per_s": round(stats.records / archive_s),
        "archive_share_of_hub_time": round(archive_s / hub_s, 3),
        "flushes": stats.flushes,
    }


def run(
    root: Path, work: Path, *, days: int, repeat: int, bootstrap: str | None, until: str, progress: Progress
) -> dict:
    storage = station_year(root, work / "station-year", days=days, progress=progress)
    results = {
        "storage": {k: v for k, v in storage.items() if k != "start_ms"},
        "queries": queries(work / "station-year", storage["start_ms"], days, repeat=repeat, progress=progress),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    if bootstrap is not None:
        results["archiver_vs_hub"] = archiver_vs_hub(root, bootstrap, work, until=until, progress=progress)
    return results


def table(results: dict) -> list[str]:
    s, q = results["storage"], results["queries"]
    lines = [
        f"storage: {s['readings']:,} readings ({s['stations']} stations x {s['days']} days, hourly) in {s['files']} "
        f"files, {s['bytes'] / 1e6:.1f} MB: {s['bytes_per_reading']} bytes per reading "
        f"(written at {s['write_readings_per_s']:,} readings/s)"
    ]
    for name, r in q.items():
        lines.append(
            f"query {name:<13} {r['readings']:>6,} readings: p50 {r['p50']} ms, p99 {r['p99']} ms, max {r['max']} ms"
        )
    a = results.get("archiver_vs_hub")
    if a:
        lines.append(
            f"hub alone: {a['readings']:,} readings in {a['hub_s']} s ({a['hub_readings_per_s']:,}/s); archiver: "
            f"{a['archived_records']:,} records in {a['archive_s']} s ({a['archive_records_per_s']:,}/s, "
            f"{a['archive_cpu_s']} s CPU) = {a['archive_share_of_hub_time'] * 100:.1f}% of the hub's time"
        )
    return lines


def save(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return path
