"""Gateway benchmark (`bosai bench gateway`): a burst of readings in batches through `bosai gateway`.

A real ``bosai gateway`` process (started and stopped by its pid) on its own topic namespace takes
``readings`` river/rain readings of the Tochigi pack's stations, sent as POST /v1/readings batches
of ``batch`` readings by ``concurrency`` clients at once, as fast as it answers. Measured: readings/s
from the first request to the last 202, and the time to 202 per request (p50/p95/p99). Then it checks
that nothing was lost: every answer a 202, exactly ``readings`` records on the raw topic, nothing in
the dead letters. The baseline, in the same run: the same readings, Avro-encoded, written in the same
batches straight to Kafka (idempotent, acks=all) with the same concurrency — what the HTTP door costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import yaml

START_MS = 1_782_864_000_000  # 2026-07-01T09:00+09:00


def _readings(stations: list[str], count: int) -> list[dict]:
    out = []
    for i in range(count):
        station = stations[i % len(stations)]
        minute = i // len(stations)
        out.append(
            {
                "station_id": station,
                "observed_at": START_MS + minute * 60_000,
                "measurements": [{"quantity": "precipitation_1h", "value": float(i % 40), "unit": "mm"}],
            }
        )
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def _burst(
    url: str, token: str, batches: list[list[dict]], concurrency: int
) -> tuple[float, list[float], list[int], int]:
    queue: asyncio.Queue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    latencies: list[float] = []
    statuses: list[int] = []
    accepted = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not queue.empty():
            body = json.dumps({"readings": queue.get_nowait()})
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as answer:
                result = await answer.json()
            latencies.append(time.perf_counter() - started)
            statuses.append(answer.status)
            accepted += result.get("accepted", 0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, statuses, accepted


async def _baseline(
    bootstrap: str, topic: str, batches: list[list[dict]], concurrency: int
) -> tuple[float, list[float]]:
    """The same batches written straight to Kafka (no HTTP, no validation), with the same concurrency."""
    from streams.kernel.messages import OutRecord
    from streams.platform.avro import READING, AvroCodec, default_store
    from streams.platform.kafka import BatchSender

    codec = AvroCodec(default_store(), READING)
    sender = BatchSender(bootstrap)
    await sender.start()
    queue: asyncio.Queue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    latencies: list[float] = []

    async def client() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            started = time.perf_counter()
            records = [
                {
                    **r,
                    "sensor_kind": "RAIN_GAUGE",
                    "location": None,
                    "quality": "OK",
                    "source": "bench",
                    "produced_at": None,
                }
                for r in batch
            ]
            await sender.send(
                [
                    OutRecord(topic, r["station_id"].encode(), v)
                    for r, v in zip(records, codec.encode_many(records), strict=True)
                ]
            )
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies
    finally:
        await sender.stop()


async def _wait_up(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"bosai gateway exited with {proc.returncode}")
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"bosai gateway did not answer {url} within {timeout_s:.0f} s")


def run(
    bootstrap: str, *, readings: int, batch: int, concurrency: int, work: Path, progress: Callable[[str], None]
) -> dict:
    from streams.cli.common import free_ports
    from streams.kernel.topics import HubTopics, expand
    from streams.packs.region_pack import load_pack
    from streams.platform.kafka import end_offsets
    from streams.platform.kafka_admin import apply_topics
    from streams.platform.settings import project_root
    from streams.platform.topic_catalog import default_catalog_path, load_catalog
    from streams.security.token_store import TokenStore

    pack = load_pack(project_root() / "regions" / "tochigi")
    prefix = f"benchgw{int(time.time())}"
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    asyncio.run(apply_topics(bootstrap, expand(catalog, [pack.topics_input()])))
    topics = HubTopics.for_region(catalog, pack)
    baseline_topic = f"{prefix}.baseline.readings"
    baseline_catalog = replace(catalog, prefix=f"{prefix}b")
    asyncio.run(apply_topics(bootstrap, expand(baseline_catalog, [pack.topics_input()])))
    baseline_topic = HubTopics.for_region(baseline_catalog, pack).raw

    stations = sorted(pack.stations)
    owners = work / "owners.yaml"
    owners.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "owners": [{"id": "bench", "region": "tochigi", "stations": stations, "rate_per_s": 1e6, "burst": 1e6}],
            }
        )
    )
    tokens = TokenStore(work / "tokens.json")
    token = tokens.issue("owner:bench")
    port = free_ports(18089, 1)[0]
    log = work / "gateway.log"
    env = dict(
        os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, BOSAI_GATEWAY_TOKENS=str(tokens.path), PYTHONUNBUFFERED="1"
    )
    cmd = [
        sys.executable,
        "-m",
        "streams.cli",
        "gateway",
        "--owners",
        str(owners),
        "--port",
        str(port),
        "--topic-prefix",
        prefix,
        "--region",
        str(pack.path),
    ]
    data = _readings(stations, readings)
    batches = [data[i : i + batch] for i in range(0, readings, batch)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        asyncio.run(_wait_up(f"http://127.0.0.1:{port}/healthz", proc))
        progress(
            f"gateway up (pid {proc.pid}); warming up, then {readings:,} readings "
            f"in {len(batches)} batches of {batch}, {concurrency} clients"
        )
        warm = [
            [{**r, "observed_at": r["observed_at"] - 86_400_000} for r in b]
            for b in batches[: max(1, len(batches) // 10)]
        ]
        asyncio.run(_burst(f"http://127.0.0.1:{port}/v1/readings", token, warm, concurrency))
        before = sum(asyncio.run(end_offsets(bootstrap, [topics.raw])).values())
        elapsed, latencies, statuses, accepted = asyncio.run(
            _burst(f"http://127.0.0.1:{port}/v1/readings", token, batches, concurrency)
        )
        after = sum(asyncio.run(end_offsets(bootstrap, [topics.raw])).values())
        dead = sum(asyncio.run(end_offsets(bootstrap, [topics.deadletter])).values())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    progress("baseline: the same batches straight to Kafka …")
    base_elapsed, base_latencies = asyncio.run(_baseline(bootstrap, baseline_topic, batches, concurrency))
    return {
        "readings": readings,
        "batch": batch,
        "concurrency": concurrency,
        "gateway_rps": readings / elapsed,
        "gateway_latency_ms": {q: _percentile(latencies, q) * 1000 for q in (50, 95, 99)},
        "gateway_latency_max_ms": max(latencies) * 1000,
        "answers": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "accepted": accepted,
        "on_kafka": after - before,
        "dead_letters": dead,
        "lost": readings - (after - before),
        "baseline_rps": readings / base_elapsed,
        "baseline_latency_ms": {q: _percentile(base_latencies, q) * 1000 for q in (50, 95, 99)},
        "mean_batch_ms": statistics.mean(latencies) * 1000,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "log": str(log),
    }


def table(results: dict) -> list[str]:
    g, b = results["gateway_latency_ms"], results["baseline_latency_ms"]

    def row(name: str, rps: float, ms: dict) -> str:
        return f"{name:34}{rps:>12,.0f}{ms[50]:>10.1f}{ms[95]:>10.1f}{ms[99]:>10.1f}"

    return [
        f"{results['readings']:,} readings in batches of {results['batch']}, {results['concurrency']} clients at once",
        f"{'':34}{'readings/s':>12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
        row("gateway (HTTP -> 202, acks=all)", results["gateway_rps"], g),
        row("baseline (same batches to Kafka)", results["baseline_rps"], b),
        f"answers {results['answers']}; accepted {results['accepted']:,}; on the raw topic {results['on_kafka']:,}; "
        f"dead letters {results['dead_letters']}; lost {results['lost']}",
    ]
