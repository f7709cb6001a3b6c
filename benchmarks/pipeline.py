"""`bosai bench`: throughput, latency and cost growth of the hub, its ceilings and a peer, in one run.

Against the embedded broker (or KAFKA_BOOTSTRAP_SERVERS; `--brokers 3` for a three-node cluster):
1. sustained throughput of one hub worker process (`bosai worker`, exactly-once) on a backlog of
   --readings, and of two workers of the region sharing it;
2. the ceilings: a raw aiokafka passthrough on the same messages and partitions, plain (at-least-once)
   and transactional (one transaction per partition batch, like the hub: what exactly-once costs);
   Faust's floor (an agent taking the same batches and doing nothing) and Faust's own exactly-once
   (the same core in a Faust agent with processing_guarantee="exactly_once");
3. the peer: the same pure core driven by Quix Streams, exactly-once (like for like) and at-least-once;
4. end-to-end latency (produced_at -> enriched reading readable by a read_committed consumer) at fixed
   offered loads, with one and with two workers;
5. throughput with 1k / 10k / 100k stations and 100 / 10k hazard zones.
Throughput is measured from the group's committed offsets (first commit to drained), so start-up
time is left out and every counted reading had its outputs committed.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.load import make_pack, readings

Progress = Callable[[str], None]


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    a = np.array(values_ms)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "n": int(len(a)),
    }


async def _produce(bootstrap: str, topic: str, records, codec, progress: Progress, total: int) -> float:
    from streams.platform import kafka

    producer = kafka.producer(bootstrap, linger_ms=20)
    await producer.start()
    started = time.monotonic()
    try:
        chunk, done, pending = [], 0, []
        for record in records:
            chunk.append(record)
            if len(chunk) == 5000:
                for r, payload in zip(chunk, codec.encode_many(chunk), strict=False):
                    pending.append(await producer.send(topic, payload, key=r["station_id"].encode()))
                done += len(chunk)
                chunk = []
                if len(pending) > 50_000:
                    await asyncio.gather(*pending)
                    pending = []
                if done % 200_000 == 0:
                    progress(f"  produced {done:,}/{total:,}")
        for r, payload in zip(chunk, codec.encode_many(chunk), strict=False):
            pending.append(await producer.send(topic, payload, key=r["station_id"].encode()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def _throughput(bootstrap: str, group: str, topic: str, procs: list[subprocess.Popen], timeout_s: float) -> dict:
    """Readings/s from the first committed offset to the last, polling the group every 100 ms."""
    from streams.platform import kafka

    ends = await kafka.end_offsets(bootstrap, [topic])
    total = sum(ends.values())
    admin = kafka.admin(bootstrap)
    await admin.start()
    first = None
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"the process under test exited with {proc.returncode}")
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except Exception:
                committed = {}
            done = sum(min(committed[tp].offset, end) for tp, end in ends.items() if tp in committed)
            now = time.monotonic()
            if done > 0 and first is None:
                first = (now, done)
            if done >= total:
                seconds = now - first[0]
                return {
                    "readings": total - first[1],
                    "seconds": round(seconds, 2),
                    "rps": round((total - first[1]) / seconds) if seconds > 0 else None,
                }
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{group} did not drain {total} readings within {timeout_s:.0f}s")
    finally:
        await admin.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bench:
    def __init__(self, bootstrap: str, work: Path, progress: Progress, seed: int = 11):
        from streams.platform.avro import READING, AvroCodec, default_store
        from streams.platform.settings import project_root
        from streams.platform.topic_catalog import default_catalog_path, load_catalog

        self.bootstrap = bootstrap
        self.work = work
        self.progress = progress
        self.seed = seed
        self.catalog = load_catalog(default_catalog_path())
        self.store = default_store()
        self.codec = AvroCodec(self.store, READING)
        self.tochigi = project_root() / "regions" / "tochigi"
        # the processes under test import benchmarks/ from the checkout (it is not installed)
        path = os.pathsep.join(p for p in (str(project_root()), os.environ.get("PYTHONPATH", "")) if p)
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1", PYTHONPATH=path)
        self.run_id = time.strftime("%H%M%S")

    def namespace(self, name: str, pack_dir: Path):
        from streams.kernel.topics import HubTopics, expand
        from streams.packs.region_pack import load_pack
        from streams.platform.kafka_admin import apply_topics

        prefix = f"bench{self.run_id}{name}"
        catalog = replace(self.catalog, prefix=prefix)
        pack = load_pack(pack_dir)
        asyncio.run(apply_topics(self.bootstrap, expand(catalog, [pack.topics_input()])))
        return prefix, pack, HubTopics.for_region(catalog, pack)

    def pack(self, stations: int, zones: int) -> Path:
        return make_pack(
            self.work / f"pack-{stations}-{zones}", stations=stations, zones=zones, seed=self.seed, tochigi=self.tochigi
        )

    def backlog(self, topic: str, pack, count: int, cross_share: float) -> float:
        stations = [(s.station_id, s.lat, s.lon) for s in pack.stations.values()]
        return asyncio.run(
            _produce(
                self.bootstrap,
                topic,
                readings(stations, count, cross_share=cross_share, seed=self.seed),
                self.codec,
                self.progress,
                count,
            )
        )

    def _log(self, name: str):
        return open(self.work / f"{name}.log", "ab")

    def _backlog_run(
        self,
        name: str,
        pack_dir: Path,
        count: int,
        cross_share: float,
        timeout_s: float,
        command: Callable[[str, object], list[str]],
        group: Callable[[str], str],
    ) -> dict:
        """Fill a fresh namespace's raw topic, start the process under test, measure until drained."""
        prefix, pack, topics = self.namespace(name, pack_dir)
        self.backlog(topics.raw, pack, count, cross_share)
        commands = command(prefix, topics)
        commands = commands if isinstance(commands[0], list) else [commands]
        procs = [
            subprocess.Popen([sys.executable, "-m", *c], env=self.env, stdout=self._log(name), stderr=subprocess.STDOUT)
            for c in commands
        ]
        try:
            return asyncio.run(_throughput(self.bootstrap, group(prefix), topics.raw, procs, timeout_s))
        finally:
            for proc in procs:
                _stop(proc)

    def hub(
        self, name: str, pack_dir: Path, count: int, cross_share: float, timeout_s: float, workers: int = 1
    ) -> dict:
        return self._backlog_run(
            name,
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: [
                ["streams.cli", "worker", "--region", str(pack_dir), "--topic-prefix", prefix, "--instance", str(i)]
                for i in range(workers)
            ],
            lambda prefix: f"{prefix}-bench-hub",
        )

    def ceiling_tx(self, pack_dir: Path, count: int, cross_share: float, timeout_s: float) -> dict:
        return self._backlog_run(
            "ceiling-tx",
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: [
                "benchmarks.passthrough",
                self.bootstrap,
                topics.raw,
                topics.enriched,
                f"{prefix}-passthrough",
                "tx",
            ],
            lambda prefix: f"{prefix}-passthrough",
        )

    def faust_eos(self, pack_dir: Path, count: int, cross_share: float, timeout_s: float) -> dict:
        return self._backlog_run(
            "faust-eos",
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: [
                "benchmarks.faust_eos",
                self.bootstrap,
                str(pack_dir),
                prefix,
                f"{prefix}-faust-eos",
            ],
            lambda prefix: f"{prefix}-faust-eos",
        )

    def ceiling(self, pack_dir: Path, count: int, cross_share: float, timeout_s: float) -> dict:
        return self._backlog_run(
            "ceiling",
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: [
                "benchmarks.passthrough",
                self.bootstrap,
                topics.raw,
                topics.enriched,
                f"{prefix}-passthrough",
            ],
            lambda prefix: f"{prefix}-passthrough",
        )

    def faust_floor(self, pack_dir: Path, count: int, cross_share: float, timeout_s: float) -> dict:
        return self._backlog_run(
            "faust-floor",
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: ["benchmarks.faust_floor", self.bootstrap, topics.raw, f"{prefix}-faust-floor"],
            lambda prefix: f"{prefix}-faust-floor",
        )

    def peer(
        self, pack_dir: Path, count: int, cross_share: float, timeout_s: float, guarantee: str = "exactly-once"
    ) -> dict:
        return self._backlog_run(
            f"peer-{guarantee}",
            pack_dir,
            count,
            cross_share,
            timeout_s,
            lambda prefix, topics: [
                "benchmarks.quix_peer",
                self.bootstrap,
                str(pack_dir),
                prefix,
                f"{prefix}-quix",
                guarantee,
            ],
            lambda prefix: f"{prefix}-quix",
        )

    def latency(self, pack_dir: Path, rates: list[int], seconds: float, cross_share: float, workers: int = 1) -> dict:
        prefix, pack, topics = self.namespace(f"latency{workers}", pack_dir)
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streams.cli",
                    "worker",
                    "--region",
                    str(pack_dir),
                    "--topic-prefix",
                    prefix,
                    "--instance",
                    str(i),
                ],
                env=self.env,
                stdout=self._log(f"latency{workers}"),
                stderr=subprocess.STDOUT,
            )
            for i in range(workers)
        ]
        try:
            stations = [(s.station_id, s.lat, s.lon) for s in pack.stations.values()]
            return asyncio.run(
                _latency_runs(
                    self.bootstrap,
                    topics,
                    stations,
                    self.codec,
                    self.store,
                    rates,
                    seconds,
                    cross_share,
                    self.seed,
                    self.progress,
                )
            )
        finally:
            for proc in procs:
                _stop(proc)


async def _latency_runs(bootstrap, topics, stations, codec, store, rates, seconds, cross_share, seed, progress):
    from streams.platform import kafka
    from streams.platform.avro import ENRICHED, AvroCodec

    enriched = AvroCodec(store, ENRICHED)
    # read_committed: a reading counts once the transaction holding its outputs has committed
    consumer = kafka.consumer(bootstrap, topics.enriched, auto_offset_reset="latest", fetch_max_wait_ms=5)
    producer = kafka.producer(bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    results = {}
    try:
        await consumer.getmany(timeout_ms=1000)
        # warm-up: the worker joins its group and recovers before the first measured load
        await _offer(producer, topics.raw, stations, codec, 50, 5.0, cross_share, seed, offset=0)
        await _collect(consumer, enriched, 10**9, 8.0)
        offset = 10_000
        for rate in rates:
            progress(f"  latency at {rate:,} readings/s for {seconds:.0f}s …")
            sender = asyncio.create_task(
                _offer(producer, topics.raw, stations, codec, rate, seconds, cross_share, seed, offset=offset)
            )
            latencies = await _collect(consumer, enriched, int(rate * seconds), seconds + 15.0)
            await sender
            offset += int(rate * seconds) + 1000
            results[str(rate)] = _percentiles(latencies)
    finally:
        await producer.stop()
        await consumer.stop()
    return results


async def _offer(producer, topic, stations, codec, rate, seconds, cross_share, seed, *, offset):
    """Produce `rate` readings a second for `seconds`, stamping produced_at, in 10 ms slices."""
    total = int(rate * seconds)
    source = readings(stations, offset + total, cross_share=cross_share, seed=seed)
    for _ in range(offset):
        next(source)
    started = time.monotonic()
    sent = 0
    pending = []
    while sent < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        chunk = [dict(next(source), produced_at=int(time.time() * 1000)) for _ in range(due - sent)]
        for record, payload in zip(chunk, codec.encode_many(chunk), strict=False):
            pending.append(await producer.send(topic, payload, key=record["station_id"].encode()))
        sent = due
        await asyncio.sleep(0.01)
    await asyncio.gather(*pending)


async def _collect(consumer, enriched, expected: int, timeout_s: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + timeout_s
    while len(latencies) < expected and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        now_ms = time.time() * 1000
        for messages in batch.values():
            for m in messages:
                produced = enriched.decode(m.value)["reading"]["produced_at"]
                if produced:
                    latencies.append(now_ms - produced)
    return latencies


def machine_facts() -> dict:
    import aiokafka
    import faust

    from streams import __version__
    from streams.platform.kafka_dist import kafka_version

    try:  # its version without importing it (its import pulls in authlib, which warns on import)
        quix = importlib.metadata.version("quixstreams")
    except importlib.metadata.PackageNotFoundError:
        quix = None
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": kafka_version(),
        "aiokafka": aiokafka.__version__,
        "faust": faust.__version__,
        "quixstreams": quix,
        "hub": __version__,
    }


def run(
    bootstrap: str,
    *,
    readings_count: int,
    cross_share: float,
    work: Path,
    progress: Progress,
    rates: list[int],
    latency_seconds: float,
    scaling_readings: int,
    skip_peer: bool = False,
    timeout_s: float = 1800,
    brokers: int = 1,
    quick: bool = False,
) -> dict:
    """Every run of the bench; ``quick``: each once on small sizes (a smoke test of the bench itself, e.g. on a
    fresh machine: its figures judge nothing)."""
    bench = Bench(bootstrap, work, progress)
    results: dict = {
        "machine": machine_facts(),
        "readings": readings_count,
        "cross_share": cross_share,
        "brokers": brokers,
        "quick": quick,
    }
    main_stations = 1_000 if quick else 10_000
    main_pack = bench.pack(main_stations, 100)
    n = f"{readings_count:,}"
    throughput = results.setdefault("throughput", {})
    progress(f"hub: backlog of {n} readings, {main_stations:,} stations, 100 zones, one worker …")
    throughput["hub"] = bench.hub("hub", main_pack, readings_count, cross_share, timeout_s)
    progress("hub: the same backlog, two workers …")
    throughput["hub_2_workers"] = bench.hub("hub2", main_pack, readings_count, cross_share, timeout_s, workers=2)
    progress(f"ceiling (aiokafka passthrough, at-least-once) on the same {n} readings …")
    throughput["ceiling"] = bench.ceiling(main_pack, readings_count, cross_share, timeout_s)
    progress(f"ceiling (aiokafka passthrough, transactional) on the same {n} readings …")
    throughput["ceiling_tx"] = bench.ceiling_tx(main_pack, readings_count, cross_share, timeout_s)
    progress(f"Faust floor (take_events, no work) on the same {n} readings …")
    throughput["faust_floor"] = bench.faust_floor(main_pack, readings_count, cross_share, timeout_s)
    progress(f"Faust exactly_once (same core in a Faust agent) on the same {n} readings …")
    throughput["faust_eos"] = bench.faust_eos(main_pack, readings_count, cross_share, timeout_s)
    if not skip_peer:
        for guarantee in ("exactly-once", "at-least-once"):
            progress(f"peer (Quix Streams {guarantee}, same core) on the same {n} readings …")
            throughput[f"peer_{guarantee}"] = bench.peer(main_pack, readings_count, cross_share, timeout_s, guarantee)
    progress("latency at fixed offered loads, one worker …")
    results["latency_ms"] = bench.latency(main_pack, rates, latency_seconds, cross_share)
    progress("latency at fixed offered loads, two workers …")
    results["latency_ms_2_workers"] = bench.latency(main_pack, rates, latency_seconds, cross_share, workers=2)
    scaling, zones_scaling = {}, {}
    for stations in (1_000,) if quick else (1_000, 10_000, 100_000):
        progress(f"scaling: {stations:,} stations, {scaling_readings:,} readings …")
        scaling[str(stations)] = bench.hub(
            f"s{stations}", bench.pack(stations, 100), scaling_readings, cross_share, timeout_s
        )["rps"]
    for zones in (100,) if quick else (100, 10_000):
        progress(f"scaling: {zones:,} hazard zones, {scaling_readings:,} readings …")
        zones_scaling[str(zones)] = bench.hub(
            f"z{zones}", bench.pack(10_000, zones), scaling_readings, cross_share, timeout_s
        )["rps"]
    results["scaling"] = scaling
    results["scaling_zones"] = zones_scaling
    return results


def _rps(results: dict, key: str) -> int | None:
    row = results["throughput"].get(key)
    return row["rps"] if row else None


ROWS = (
    ("hub", "hub (1 worker, exactly-once)"),
    ("hub_2_workers", "hub (2 workers, exactly-once)"),
    ("ceiling", "ceiling: passthrough, at-least-once"),
    ("ceiling_tx", "ceiling: passthrough, transactional"),
    ("faust_floor", "Faust floor (take_events, no work)"),
    ("faust_eos", "Faust exactly_once (same core)"),
    ("peer_exactly-once", "peer: Quix exactly-once (same core)"),
    ("peer_at-least-once", "peer: Quix at-least-once"),
)


def goals(results: dict) -> list[str]:
    """The runtime issue's goals, judged on this run's own figures."""
    hub, ceiling, peer = _rps(results, "hub") or 0, _rps(results, "ceiling"), _rps(results, "peer_exactly-once")
    p99 = results["latency_ms"].get("1000", {}).get("p99")
    scale = [v for v in results["scaling"].values() if v]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    lines = [
        f"goal  >= 2x the exactly-once peer: {hub / peer:.2f}x — {verdict(hub >= 2 * peer)}"
        if peer
        else "goal  >= 2x the exactly-once peer: n/a (peer skipped)",
        f"goal  >= 20,000 readings/s (1 worker): {hub:,} — {verdict(hub >= 20_000)}",
        f"goal  p99 <= 50 ms at 1,000 readings/s: {p99} ms — {verdict(p99 is not None and p99 <= 50)}",
        f"goal  1k -> 100k stations within 20 %: {min(scale) / max(scale):.0%} of the best — "
        f"{verdict(min(scale) >= 0.8 * max(scale))}"
        if scale
        else "goal  stations scaling: n/a",
        f"stretch >= 50 % of the passthrough ceiling: {hub / ceiling:.0%} — {verdict(hub >= ceiling / 2)}"
        if ceiling
        else "stretch: n/a",
    ]
    return lines


def table(results: dict) -> list[str]:
    machine = results["machine"]
    lines = [
        f"machine: {machine['cores']} cores, Python {machine['python']}, Kafka {machine['kafka']} "
        f"({results.get('brokers', 1)} broker(s)), faust {machine['faust']}, aiokafka {machine['aiokafka']}, "
        f"quixstreams {machine['quixstreams']}",
        f"backlog: {results['readings']:,} readings, {results['cross_share']:.0%} crossing thresholds",
        "",
        f"{'':<38}{'readings/s':>12}{'vs ceiling':>12}{'vs EOS peer':>13}",
    ]
    ceiling, peer = _rps(results, "ceiling"), _rps(results, "peer_exactly-once")
    for key, label in ROWS:
        rps = _rps(results, key)
        if rps is None:  # not run, or drained within one poll (a --quick backlog): no rate to give
            lines.append(f"{label:<38}{'untimed' if key in results['throughput'] else 'skipped':>12}")
            continue
        lines.append(
            f"{label:<38}{rps:>12,}{rps / ceiling if ceiling else 0:>12.0%}"
            + (f"{rps / peer:>12.2f}x" if peer else f"{'n/a':>13}")
        )
    for key, title in (("latency_ms", "one worker"), ("latency_ms_2_workers", "two workers")):
        lines += [
            "",
            f"{'offered load, ' + title + ' (readings/s)':<38}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'n':>9}",
        ]
        for rate, p in results[key].items():
            lines.append(f"{int(rate):<38,}{p['p50']:>10}{p['p95']:>10}{p['p99']:>10}{p['n']:>9,}")
    lines.append("")
    for label, key in (("stations", "scaling"), ("zones   ", "scaling_zones")):
        # a run drained within one poll (a --quick backlog) has no rate: untimed, as in the throughput table
        rates = ",  ".join(f"{int(k):,}: {'untimed' if v is None else format(v, ',')}" for k, v in results[key].items())
        lines.append(f"{label} -> readings/s:  {rates}")
    if results.get("quick"):
        return [*lines, "", "quick run (--quick): small sizes, every run once; the goals are not judged"]
    return [*lines, "", *goals(results)]


def save(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return path
