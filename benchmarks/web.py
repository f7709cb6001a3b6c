"""`bosai bench web`: how many live clients one `bosai web` process holds with alerts flowing, and how long an
alert takes from Kafka to the pages' streams.

One `bosai web` process (the Tochigi pack, topics under a prefix of their own) and, per step, a fleet of N
live clients in another process (``benchmarks.web_clients``: N-20 clients that hold their stream and read
it, 20 probes that decode every event). While the fleet is connected, public alerts are raised in
``alerts.public`` at ``rate`` per second for ``seconds``, each cancelled 2 s later (so twice ``rate``
alert events per second); each carries the wall-clock time it was produced in ``observed_at``, so a
probe's latency is *produced into Kafka → event read from the stream*. The first step (the probes alone)
is the baseline of the same run.

A step *holds* when every client is still connected at the end, the server dropped none, every probe
received every alert, and the probes' p99 is under 2 s (the page's promise).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from streams.kernel.topics import HubTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform import kafka
from streams.platform.avro import ALERT, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics, delete_namespace
from streams.platform.settings import project_root
from streams.platform.topic_catalog import load_default_catalog
from streams.publicmap.process import WebProcess
from streams.publicmap.server import WebSettings

Progress = Callable[[str], None]
PROBES = 20


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alert(alert_id: str, sequence: int, code: str, name: str, now_ms: int, cancel: bool) -> dict:
    return {
        "alert_id": alert_id,
        "sequence": sequence,
        "msg_type": "CANCEL" if cancel else "ALERT",
        "transition": "CLEARED" if cancel else "RAISED",
        "references": f"{alert_id}/0" if cancel else None,
        "references_observed_at": None,
        "region": "tochigi",
        "prefecture_code": "09",
        "rule": "rain_1h",
        "level": "intense",
        "level_rank": 0 if cancel else 2,
        "warning_level": None,
        "event": "激しい雨",
        "headline": f"ベンチマーク（{name}）激しい雨: 35 mm",
        "severity": "Minor" if cancel else "Severe",
        "urgency": "Past" if cancel else "Immediate",
        "certainty": "Observed",
        "sharing_level": "PUBLIC",
        "station_id": "41277",
        "observed_at": now_ms,
        "value": 35.0,
        "unit": "mm",
        "threshold": 30.0,
        "area": {"description": name, "point": None, "hazard_zone_ids": []},
        "municipality_codes": [code],
        "source_readings": [],
        "source": "hub",
        "status": "Actual",
        "expires": None,
        "official": None,
    }


async def _produce_alerts(bootstrap: str, topic: str, step: int, rate: float, seconds: float, places) -> int:
    """Raise `rate` alerts per second, each cancelled 2 s later; each raise is timed from its send."""
    codec = AvroCodec(default_store(), ALERT)
    lag = max(1, int(rate * 2))
    total = int(rate * seconds)
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:

        async def send(n: int, cancel: bool) -> None:
            code, name = places[n % len(places)]
            alert_id = f"bench-{step}-{n}"
            record = _alert(alert_id, int(cancel), code, name, int(time.time() * 1000), cancel=cancel)
            await producer.send_and_wait(topic, codec.encode(record), key=alert_id.encode())

        started = time.monotonic()
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            await send(n, cancel=False)
            if n >= lag:
                await send(n - lag, cancel=True)
        await asyncio.sleep(2.0)  # the last raises live 2 s too (a raise and its cancel in one batch cancel out)
        for n in range(max(0, total - lag), total):
            await send(n, cancel=True)
    return total


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    dropped = sum(
        float(v)
        for v in re.findall(r'^bosai_web_dropped_clients_total\{reason="(?:slow|write_timeout)"\} (\S+)$', text, re.M)
    )
    live = re.search(r"^bosai_web_live_clients (\S+)$", text, re.M)
    return {"dropped": dropped, "live": float(live.group(1)) if live else 0.0}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.array(values)
    return {k: round(float(np.percentile(a, q)), 1) for k, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}


def _wait_for_no_clients(metrics_port: int, timeout_s: float = 40.0) -> None:
    """The previous step's clients are gone (the server notices at its next write or heartbeat)."""
    deadline = time.monotonic() + timeout_s
    while _scrape(metrics_port)["live"] > 0 and time.monotonic() < deadline:
        time.sleep(0.5)


def _step(
    web: WebProcess,
    metrics_port: int,
    bootstrap: str,
    topic: str,
    clients: int,
    rate: float,
    seconds: float,
    places,
    progress: Progress,
) -> dict:
    _wait_for_no_clients(metrics_port)
    fleet = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.web_clients",
            "--url",
            f"{web.url}api/v1/events",
            "--clients",
            str(clients),
            "--probes",
            str(PROBES),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=project_root(),
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _scrape(metrics_port)["live"] < clients and time.monotonic() < deadline:
            time.sleep(0.5)
        connected = _scrape(metrics_port)["live"]
        progress(f"web bench: {connected:.0f}/{clients} live clients connected; alerts at {rate:g}/s for {seconds:g} s")
        before, cpu_before, wall_before = _scrape(metrics_port), _cpu_seconds(web.pid), time.monotonic()
        raised = asyncio.run(_produce_alerts(bootstrap, topic, clients, rate, seconds, places))
        time.sleep(3.0)  # the last events reach every client
        cpu = (_cpu_seconds(web.pid) - cpu_before) / (time.monotonic() - wall_before)
        after = _scrape(metrics_port)
        rss = _rss_mb(web.pid)
        out, _ = fleet.communicate("stop\n", timeout=120)
    finally:
        if fleet.poll() is None:
            fleet.kill()
            fleet.wait()
    result = json.loads(out)
    latency = _percentiles(result["latencies_ms"])
    dropped = after["dropped"] - before["dropped"]
    complete = min(result["alerts_seen_per_probe"] or [0]) >= raised
    holds = result["still_connected"] == clients and dropped == 0 and complete and (latency["p99"] or 1e9) < 2000
    return {
        "clients": clients,
        "connected_at_start": int(connected),
        "still_connected": result["still_connected"],
        "dropped_by_server": int(dropped),
        "failed": result["failed"],
        "alerts_raised": raised,
        "every_probe_got_every_alert": complete,
        "latency_ms": latency,
        "latency_samples": len(result["latencies_ms"]),
        "server_cpu_share": round(cpu, 2),
        "server_rss_mb": round(rss, 1),
        "holds": holds,
    }


def run(bootstrap: str, *, steps: list[int], rate: float, seconds: float, work: Path, progress: Progress) -> dict:
    pack_dir = project_root() / "regions" / "tochigi"
    pack = load_pack(pack_dir)
    catalog = replace(load_default_catalog(), prefix=time.strftime("benchweb%Y%m%d%H%M%S"))
    topics = HubTopics.for_region(catalog, pack)
    asyncio.run(apply_topics(bootstrap, expand(catalog, [pack.topics_input()])))
    metrics_port = _free_port()
    settings = WebSettings(
        pack_dirs=[str(pack_dir)],
        topic_prefix=catalog.prefix,
        port=_free_port(),
        max_clients=max(steps) + 100,
        metrics_port=metrics_port,
    )
    web = WebProcess(settings, bootstrap, work / "web.log")
    places = [(m.code, m.name) for m in pack.municipalities]
    web.start()
    progress(f"web bench: bosai web (pid {web.pid}) at {web.url}")
    rows = []
    try:
        for clients in sorted(set([PROBES, *steps])):
            rows.append(_step(web, metrics_port, bootstrap, topics.public, clients, rate, seconds, places, progress))
            progress(f"web bench: {clients} clients -> {rows[-1]['latency_ms']} holds={rows[-1]['holds']}")
    finally:
        web.stop()
        asyncio.run(delete_namespace(bootstrap, catalog.prefix, [pack.name]))
    held = [r["clients"] for r in rows if r["holds"]]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "steps": rows,
        "max_clients_held": max(held) if held else 0,
        "p99_ms_at_max_held": next((r["latency_ms"]["p99"] for r in rows if held and r["clients"] == max(held)), None),
        "baseline_p99_ms": rows[0]["latency_ms"]["p99"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def table(results: dict) -> list[str]:
    lines = [
        f"bosai web, one process; public alerts raised at {results['rate_per_s']:g}/s (cancelled 2 s later) "
        f"for {results['seconds']:g} s per step "
        f"(latency: produced into Kafka -> event read by a client)",
        f"{'clients':>8} {'held':>6} {'dropped':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'cpu':>5} {'rss MB':>7}  holds",
    ]
    for r in results["steps"]:
        lat = r["latency_ms"]
        lines.append(
            f"{r['clients']:>8,} {r['still_connected']:>6,} {r['dropped_by_server']:>8} "
            f"{lat['p50']!s:>8} {lat['p95']!s:>8} {lat['p99']!s:>8} {lat['max']!s:>8} "
            f"{r['server_cpu_share']:>5} {r['server_rss_mb']:>7}  "
            f"{'yes' if r['holds'] else 'NO'}"
        )
    lines.append(
        f"holds {results['max_clients_held']:,} live clients (p99 {results['p99_ms_at_max_held']} ms); "
        f"baseline ({PROBES} clients) p99 {results['baseline_p99_ms']} ms"
    )
    return lines


def save(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return path
