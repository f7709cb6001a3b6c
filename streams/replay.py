"""Replay real observations through the hub: produce, run the workers, wait until drained, collect alerts.

A replay runs in its own topic namespace (``--topic-prefix``, default ``replay-<time>``) with fresh
workers, so it never mixes 2023's alerts into a live hub's streams and two replays of the same data
give the same alerts. Readings keep their original event times; ``speed`` only paces production.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from streams.catalog import Catalog, expand
from streams.codec import ALERT, READING, AvroCodec, SchemaStore
from streams.errors import BosaiError, ConfigError
from streams.lifecycle import JST
from streams.pipeline import HubTopics
from streams.regions import RegionPack

Progress = Callable[[str], None]
AMEDAS_COLUMNS = {"observed_at", "station_id", "lat", "lon", "precip_1h_mm", "precip_24h_mm"}


def parse_jst(text: str, *, option: str) -> int:
    """'2023-09-04', '2023-09-04T15:00' or with an offset -> epoch ms (JST when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(option, f"{text!r} is not a timestamp", expected="YYYY-MM-DD[THH:MM] (JST)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)
    return int(moment.timestamp() * 1000)


def jst_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, JST).isoformat()


def _value(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def read_amedas(path: Path, *, since_ms: int | None = None, until_ms: int | None = None) -> list[dict]:
    """SensorReading records from an AMeDAS-format CSV (or .csv.gz), in event-time order."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = AMEDAS_COLUMNS - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(path, f"missing columns {sorted(missing)}", where="header",
                                  expected="the AMeDAS format: " + ", ".join(sorted(AMEDAS_COLUMNS)))
            records = []
            for row_number, row in enumerate(reader, start=2):
                try:
                    observed_at = int(datetime.fromisoformat(row["observed_at"]).timestamp() * 1000)
                    lat, lon = float(row["lat"]), float(row["lon"])
                    alt = _value(row.get("alt_m", ""))
                    p1, p24 = _value(row["precip_1h_mm"]), _value(row["precip_24h_mm"])
                except ValueError as exc:
                    raise ConfigError(path, f"unreadable value: {exc}", where=f"row {row_number}",
                                      expected="ISO timestamps and numbers") from None
                if since_ms is not None and observed_at < since_ms or until_ms is not None and observed_at >= until_ms:
                    continue
                records.append({
                    "station_id": row["station_id"], "sensor_kind": "RAIN_GAUGE", "observed_at": observed_at,
                    "location": {"lat": lat, "lon": lon, "alt_m": alt},
                    "measurements": [{"quantity": "precipitation_1h", "value": p1, "unit": "mm"},
                                     {"quantity": "precipitation_24h", "value": p24, "unit": "mm"}],
                    "quality": "OK" if p1 is not None else "MISSING", "source": "jma-amedas", "produced_at": None,
                })
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror}") from exc
    records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
    return records


@dataclass
class ReplayResult:
    prefix: str
    readings: int
    skipped: int
    alerts: list[dict] = field(default_factory=list)
    dead_letters: int = 0
    produce_s: float = 0.0
    drain_s: float = 0.0
    total_s: float = 0.0
    drained: bool = True

    def by_level(self) -> Counter:
        return Counter((a["rule"], a["level"], a["msg_type"]) for a in self.alerts)


class WorkerProcess:
    """One `bosai worker` subprocess for one region; stopped by its pid."""

    def __init__(self, pack_dir: Path, prefix: str, bootstrap: str, log_file: Path, extra: Sequence[str] = ()):
        self.cmd = [sys.executable, "-m", "streams.cli", "worker", "--region", str(pack_dir), "--topic-prefix",
                    prefix, *extra]
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONUNBUFFERED="1")
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart_if_stalled(self) -> bool:
        """A worker that exited because it stopped making progress is started again (crash-only)."""
        from streams.app import STALLED_EXIT

        if self.proc is not None and self.proc.poll() == STALLED_EXIT:
            self.start()
            return True
        return False

    def kill(self) -> None:
        """SIGKILL: a crash, for tests."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def produce(bootstrap: str, records: Sequence[dict], routes: dict[str, str], codec: AvroCodec, *,
                  speed: float | None, progress: Progress, stamp_produced_at: bool = False) -> None:
    """Produce readings keyed by station id, pacing event time at `speed` x real time (None = max)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=1 << 20)
    await producer.start()
    try:
        started = time.monotonic()
        first_event = records[0]["observed_at"] if records else 0
        pending = []
        last_report = time.monotonic()
        for start in range(0, len(records), 2000):
            chunk = list(records[start:start + 2000])
            if speed is not None:
                # pace each distinct event time
                for i, record in enumerate(chunk):
                    due = started + (record["observed_at"] - first_event) / 1000 / speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.gather(*pending)
                        pending.clear()
                        await asyncio.sleep(delay)
                    if stamp_produced_at:
                        record = dict(record, produced_at=int(time.time() * 1000))
                    pending.append(await producer.send(routes[record["station_id"]], codec.encode(record),
                                                       key=record["station_id"].encode()))
            else:
                if stamp_produced_at:
                    now = int(time.time() * 1000)
                    chunk = [dict(r, produced_at=now) for r in chunk]
                for record, payload in zip(chunk, codec.encode_many(chunk)):
                    pending.append(await producer.send(routes[record["station_id"]], payload,
                                                       key=record["station_id"].encode()))
            if time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                progress(f"produced {start + len(chunk):,}/{len(records):,} readings "
                         f"(event time {jst_iso(chunk[-1]['observed_at'])})")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            for p in consumer.partitions_for_topic(topic) or (await _partitions(consumer, topic)):
                partitions.append(TopicPartition(topic, p))
        return await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()


async def _partitions(consumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def wait_drained(bootstrap: str, group_id: str, targets: dict, *, timeout_s: float, progress: Progress,
                       workers: Sequence[WorkerProcess] = ()) -> bool:
    """Wait until the group's committed offsets reach `targets` (TopicPartition -> offset)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import (CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError,
                                 NotCoordinatorError)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        last_report = 0.0
        while time.monotonic() < deadline:
            for worker in workers:
                if worker.restart_if_stalled():
                    progress(f"worker stalled and exited; restarted it (pid {worker.pid})")
                if not worker.alive():
                    raise BosaiError(f"worker (pid {worker.pid}) exited; last lines of {worker.log_file}:\n"
                                     f"{worker.log_tail()}")
            try:
                committed = await admin.list_consumer_group_offsets(group_id)
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
                committed = {}  # the group's coordinator is still being set up
            done = sum(min(committed[tp].offset if tp in committed else 0, end) for tp, end in targets.items())
            total = sum(targets.values())
            if done >= total:
                return True
            if time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                progress(f"{group_id}: processed {done:,}/{total:,} readings")
            await asyncio.sleep(0.25)
        return False
    finally:
        await admin.close()


async def read_range(bootstrap: str, starts: dict, ends: dict) -> list:
    """Every message between start and end offsets of the given partitions."""
    from aiokafka import AIOKafkaConsumer

    wanted = {tp: end for tp, end in ends.items() if end > starts.get(tp, 0)}
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, starts.get(tp, 0))
        messages = []
        remaining = dict(wanted)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=10_000)
            if not batch:
                raise BosaiError(f"could not read {sum(remaining.values())} expected messages within 10 s")
            for tp, items in batch.items():
                for message in items:
                    if message.offset < wanted[tp]:
                        messages.append(message)
                if items and items[-1].offset + 1 >= wanted[tp]:
                    remaining.pop(tp, None)
        return messages
    finally:
        await consumer.stop()


def alert_line(record: dict, topics: Sequence[str]) -> dict:
    """One line of --alerts-out: the alert event as the hub emitted it, with where it was delivered."""
    return {
        "alert_id": record["alert_id"], "sequence": record["sequence"], "msg_type": record["msg_type"],
        "transition": record["transition"], "references": record["references"], "station_id": record["station_id"],
        "rule": record["rule"], "level": record["level"], "level_rank": record["level_rank"],
        "severity": record["severity"], "urgency": record["urgency"], "certainty": record["certainty"],
        "sharing_level": record["sharing_level"], "observed_at": jst_iso(record["observed_at"]),
        "value": record["value"], "unit": record["unit"], "threshold": record["threshold"],
        "municipalities": record["municipality_codes"], "headline": record["headline"], "topics": sorted(topics),
    }


async def collect_alerts(bootstrap: str, store: SchemaStore, topic_sets: Sequence[HubTopics], starts: dict,
                         ends: dict) -> list[dict]:
    codec = AvroCodec(store, ALERT)
    seen: dict[tuple[str, int], dict] = {}
    delivered: dict[tuple[str, int], set[str]] = defaultdict(set)
    for message in await read_range(bootstrap, starts, ends):
        record = codec.decode(message.value)
        key = (record["alert_id"], record["sequence"])
        if key in seen and seen[key] != record:
            raise BosaiError(f"alert {key[0]}/{key[1]} was emitted twice with different content")
        seen[key] = record
        delivered[key].add(message.topic)
    lines = [alert_line(seen[k], delivered[k]) for k in seen]
    lines.sort(key=lambda a: (a["observed_at"], a["station_id"], a["rule"], a["sequence"]))
    return lines


def alert_topics(topics: HubTopics) -> list[str]:
    return [topics.alerts, topics.public, *topics.municipal.values()]


def run_replay(packs: Sequence[RegionPack], catalog: Catalog, store: SchemaStore, csv_path: Path, *,
               bootstrap: str, prefix: str, since_ms: int | None, until_ms: int | None, speed: float | None,
               timeout_s: float, log_dir: Path, progress: Progress, keep_topics: bool = False,
               worker_args: Sequence[str] = (), metrics_ports: Sequence[int] | None = None,
               live: bool = False, start_workers: bool = True) -> ReplayResult:
    """Produce the CSV's readings into each region's raw topic, run one worker per region, collect alerts."""
    from streams.catalog import apply_topics

    started = time.monotonic()
    catalog = replace(catalog, prefix=prefix)
    records = read_amedas(csv_path, since_ms=since_ms, until_ms=until_ms)
    topic_sets = [HubTopics.for_region(catalog, p) for p in packs]
    routes = {sid: t.raw for p, t in zip(packs, topic_sets) for sid in p.stations}
    wanted = [r for r in records if r["station_id"] in routes]
    result = ReplayResult(prefix=prefix, readings=len(wanted), skipped=len(records) - len(wanted))
    if not wanted:
        raise BosaiError(f"{csv_path}: no readings of the regions' stations in the chosen time range")
    progress(f"{len(wanted):,} readings of {len({r['station_id'] for r in wanted})} stations from "
             f"{jst_iso(wanted[0]['observed_at'])} to {jst_iso(wanted[-1]['observed_at'])}"
             + (f" ({result.skipped:,} rows of stations outside the regions skipped)" if result.skipped else ""))
    specs = expand(catalog, [p.topics_input() for p in packs])
    before, _ = asyncio.run(apply_topics(bootstrap, specs))
    progress(f"topics under prefix '{prefix}': {len(before.changes)} created or updated")
    output_topics = [t for ts in topic_sets for t in [*alert_topics(ts), ts.deadletter]]
    raw_topics = [t.raw for t in topic_sets]
    starts = asyncio.run(end_offsets(bootstrap, output_topics + raw_topics))
    ports = list(metrics_ports or [])
    workers = [WorkerProcess(p.path, prefix, bootstrap, log_dir / f"{prefix}-{p.name}.log",
                             [*worker_args, *(["--metrics-port", str(ports[i])] if i < len(ports) else [])])
               for i, p in enumerate(packs)] if start_workers else []
    follower = view = None
    try:
        for worker in workers:
            worker.start()
        progress(f"started {len(workers)} worker(s): " + ", ".join(f"pid {w.pid}" for w in workers)
                 + (" — metrics on " + ", ".join(f"http://127.0.0.1:{port}/metrics" for port in ports) if ports else ""))
        if live:
            from streams.live import AlertFollower, LiveView

            view = LiveView(len(wanted), [f"http://127.0.0.1:{port}/metrics" for port in ports])
            follower = AlertFollower(bootstrap, [t.alerts for t in topic_sets], starts, view, store)
            follower.start()
            progress = lambda _message: None  # noqa: E731 - the live view shows progress now
        produce_started = time.monotonic()
        asyncio.run(produce(bootstrap, wanted, routes, AvroCodec(store, READING), speed=speed, progress=progress))
        result.produce_s = time.monotonic() - produce_started
        raw_ends = asyncio.run(end_offsets(bootstrap, raw_topics))
        drain_started = time.monotonic()
        from streams.app import app_id_for

        for pack, topics in zip(packs, topic_sets):
            targets = {tp: end for tp, end in raw_ends.items() if tp.topic == topics.raw}
            drained = asyncio.run(wait_drained(bootstrap, app_id_for(prefix, pack.name), targets,
                                               timeout_s=timeout_s, progress=progress, workers=workers))
            result.drained = result.drained and drained
        result.drain_s = time.monotonic() - drain_started
    finally:
        if follower is not None:
            follower.stop()
            view.close()
        for worker in workers:
            worker.stop()
    ends = asyncio.run(end_offsets(bootstrap, output_topics))
    alert_ends = {tp: e for tp, e in ends.items() if not tp.topic.endswith(".deadletter")}
    result.dead_letters = sum(e - starts.get(tp, 0) for tp, e in ends.items() if tp.topic.endswith(".deadletter"))
    result.alerts = asyncio.run(collect_alerts(bootstrap, store, topic_sets, starts, alert_ends))
    if not keep_topics and prefix != "bosai":  # never delete the live topics
        asyncio.run(delete_namespace(bootstrap, prefix, [p.name for p in packs]))
    result.total_s = time.monotonic() - started
    return result


async def delete_namespace(bootstrap: str, prefix: str, regions: Sequence[str]) -> int:
    """Delete every topic of a replay namespace (catalog topics and the workers' internal topics)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics()
                 if any(t.startswith(f"{prefix}.{r}.") or t.startswith(f"{prefix}-{r}-hub") for r in regions)]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


def write_alerts(path: Path, alerts: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for alert in alerts:
            handle.write(json.dumps(alert, ensure_ascii=False) + "\n")


def iter_lines(alerts: Sequence[dict]) -> Iterator[str]:
    for alert in alerts:
        yield (f"{alert['observed_at']}  {alert['msg_type']:<6} {alert['rule']:<8} {alert['level']:<10} "
               f"{alert['station_id']}  {alert['headline']}")
