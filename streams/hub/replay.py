"""Replay real observations and official reports through the hub: produce, run the workers, wait until
drained, collect alerts.

A replay runs in its own topic namespace (``--topic-prefix``, default ``replay-<time>``) with fresh
workers, so it never mixes 2023's alerts into a live hub's streams and two replays of the same data
give the same alerts. Readings keep their original event times; ``speed`` only paces production.
Official reports (JMA's XML files, ``--jma``) go to each concerned region's official-reports topic in
ReportDateTime order, interleaved by time with the readings (:mod:`streams.hub.replay_input`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka.structs import RecordMetadata

from streams.hub.processes import Supervisor, WorkerProcess
from streams.hub.replay_input import OfficialInput, TimedMessage, official_messages, produce_timeline
from streams.hub.worker import WorkerSettings, app_id_for, group_for
from streams.kernel.alerts import alert_line
from streams.kernel.errors import BosaiError, SettingsError
from streams.kernel.messages import AvroRecord
from streams.kernel.region import RegionPack
from streams.kernel.times import jst_iso
from streams.kernel.topics import Catalog, HubTopics, expand
from streams.observed.amedas_csv import DAY_MS, is_narrow, read_amedas, windows_by_pack
from streams.platform import kafka
from streams.platform.avro import ALERT, OFFICIAL_REPORT, READING, AvroCodec, SchemaStore
from streams.platform.kafka_admin import apply_topics, delete_namespace

Progress = Callable[[str], None]
AlertLine = dict[str, Any]  # one line of --alerts-out, as JSON (see alert_line)
Offsets = Mapping[kafka.TopicPartition, int]


@dataclass
class ReplayResult:
    prefix: str
    readings: int
    skipped: int
    alerts: list[AlertLine] = field(default_factory=list)
    dead_letters: int = 0
    produce_s: float = 0.0
    drain_s: float = 0.0
    total_s: float = 0.0
    drained: bool = True
    records: list[AvroRecord] = field(default_factory=list)  # the alert events as decoded (once per alert id, sequence)
    reports: int = 0  # official reports produced
    reports_other_prefecture: int = 0  # official report files of no region's prefecture (not produced)

    def by_level(self) -> Counter[tuple[str, str, str]]:
        return Counter((a["rule"], a["level"], a["msg_type"]) for a in self.alerts)


async def produce(
    bootstrap: str,
    records: Sequence[AvroRecord],
    routes: dict[str, str],
    codec: AvroCodec,
    *,
    speed: float | None,
    progress: Progress,
    stamp_produced_at: bool = False,
) -> None:
    """Produce readings keyed by station id, pacing event time at `speed` x real time (None = max)."""
    await produce_windows(
        bootstrap, [records], routes, codec, speed=speed, progress=progress, stamp_produced_at=stamp_produced_at
    )


async def produce_windows(
    bootstrap: str,
    windows: Iterable[Sequence[AvroRecord]],
    routes: dict[str, str],
    codec: AvroCodec,
    *,
    speed: float | None,
    progress: Progress,
    stamp_produced_at: bool = False,
) -> int:
    """Produce readings window after window (each in event-time order, the windows in turn: only one is held
    at a time), keyed by station id, pacing event time at `speed` x real time (None = max); returns how many."""
    produced = 0
    async with kafka.started_producer(bootstrap) as producer:
        started = time.monotonic()
        first_event: int | None = None
        pending: list[asyncio.Future[RecordMetadata]] = []
        last_report = time.monotonic()
        for records in windows:
            if first_event is None and records:
                first_event = records[0]["observed_at"]
            for start in range(0, len(records), 2000):
                chunk = list(records[start : start + 2000])
                if speed is not None:
                    # pace each distinct event time
                    for record in chunk:
                        due = started + (record["observed_at"] - (first_event or 0)) / 1000 / speed
                        delay = due - time.monotonic()
                        if delay > 0:
                            await asyncio.gather(*pending)
                            pending.clear()
                            await asyncio.sleep(delay)
                        if stamp_produced_at:
                            record = dict(record, produced_at=int(time.time() * 1000))
                        pending.append(
                            await producer.send(
                                routes[record["station_id"]], codec.encode(record), key=record["station_id"].encode()
                            )
                        )
                else:
                    if stamp_produced_at:
                        now = int(time.time() * 1000)
                        chunk = [dict(r, produced_at=now) for r in chunk]
                    for record, payload in zip(chunk, codec.encode_many(chunk), strict=True):
                        station = record["station_id"]
                        pending.append(await producer.send(routes[station], payload, key=station.encode()))
                produced += len(chunk)
                if len(pending) >= 50_000:  # bounded: a window's futures, not a whole file's
                    await asyncio.gather(*pending)
                    pending.clear()
                if time.monotonic() - last_report > 2:
                    last_report = time.monotonic()
                    progress(f"produced {produced:,} readings (event time {jst_iso(chunk[-1]['observed_at'])})")
        await asyncio.gather(*pending)
    return produced


async def wait_drained(
    bootstrap: str,
    group_id: str,
    targets: Offsets,
    *,
    timeout_s: float,
    progress: Progress,
    workers: Sequence[WorkerProcess] = (),
    supervisor: Supervisor | None = None,
) -> bool:
    """Wait until the group's committed offsets reach `targets` (TopicPartition -> offset), keeping the workers
    running meanwhile (``supervisor``, or one made for ``workers``: each that exits is restarted; one past the
    restart limit ends the wait with :class:`WorkersGaveUp`). Kafka's outages are waited through, within the
    patience (:mod:`streams.platform.kafka_retry`)."""
    if supervisor is None:
        supervisor = Supervisor(workers, say=progress)
    deadline = time.monotonic() + timeout_s
    last_report = 0.0
    total = sum(targets.values())
    while time.monotonic() < deadline:
        supervisor.tend()
        remaining = await kafka.uncommitted(bootstrap, group_id, targets)
        if not remaining:
            return True
        done = max(0, total - sum(remaining.values()))
        if time.monotonic() - last_report > 2:
            last_report = time.monotonic()
            progress(f"{group_id}: processed {done:,}/{total:,} messages")
        await asyncio.sleep(0.25)
    return False


async def collect_alerts(
    bootstrap: str, store: SchemaStore, starts: Offsets, ends: Offsets, records: list[AvroRecord] | None = None
) -> list[AlertLine]:
    """Every alert event between the offsets, once per (alert id, sequence), with the topics it reached
    (and, into ``records`` when given, the decoded events themselves)."""
    codec = AvroCodec(store, ALERT)
    seen: dict[tuple[str, int], AvroRecord] = {}
    delivered: dict[tuple[str, int], set[str]] = defaultdict(set)
    try:
        messages = await kafka.read_range(bootstrap, starts, ends)
    except TimeoutError as exc:
        raise BosaiError(str(exc)) from None
    for message in messages:
        record = codec.decode(message.value)
        key = (record["alert_id"], record["sequence"])
        if key in seen and seen[key] != record:
            raise BosaiError(f"alert {key[0]}/{key[1]} was emitted twice with different content")
        seen[key] = record
        delivered[key].add(message.topic)
    if records is not None:
        records.extend(seen.values())
    lines = [alert_line(seen[k], delivered[k]) for k in seen]
    lines.sort(key=lambda a: (a["observed_at"], a["station_id"], a["rule"], a["sequence"]))
    return lines


@dataclass
class ReplayPlan:
    """What a replay produces, where, and who processes it."""

    packs: Sequence[RegionPack]
    catalog: Catalog
    topic_sets: list[HubTopics]
    readings: list[AvroRecord]
    routes: dict[str, str]  # station id -> raw topic
    official: OfficialInput | None = None
    groups: dict[str, str] = field(default_factory=dict)  # pack name -> the consumer group of its workers
    narrow: NarrowInput | None = None  # a narrow (national) CSV, read a window at a time while producing

    @property
    def output_topics(self) -> list[str]:
        return [t for ts in self.topic_sets for t in [*ts.alert_topics(), ts.deadletter]]

    @property
    def raw_topics(self) -> list[str]:
        return [t.raw for t in self.topic_sets]

    @property
    def input_topics(self) -> list[str]:
        """What the workers consume: each region's raw readings and official reports."""
        return [t for ts in self.topic_sets for t in (ts.raw, ts.official)]


@dataclass
class NarrowInput:
    """A narrow-layout CSV (the national file), streamed a window at a time (:func:`windows_by_pack`), never
    held whole; what it gave is counted while it is read."""

    path: Path
    packs: Sequence[RegionPack]
    since_ms: int | None
    until_ms: int | None
    window_ms: int = DAY_MS
    readings: int = 0
    skipped: int = 0  # rows of stations no pack holds

    def windows(self) -> Iterator[list[AvroRecord]]:
        """Each window's readings of every pack, in event-time order."""
        for window in windows_by_pack(
            self.path, self.packs, since_ms=self.since_ms, until_ms=self.until_ms, window_ms=self.window_ms
        ):
            records = [r for rs in window.by_pack.values() for r in rs]
            records.sort(key=lambda r: (r["observed_at"], r["station_id"]))
            self.readings += len(records)
            self.skipped += sum(window.unknown.values())
            yield records


def _readings(
    routes: dict[str, str], csv_path: Path | None, since_ms: int | None, until_ms: int | None, progress: Progress
) -> tuple[list[AvroRecord], int]:
    if csv_path is None:
        return [], 0
    records = read_amedas(csv_path, since_ms=since_ms, until_ms=until_ms)
    wanted = [r for r in records if r["station_id"] in routes]
    if not wanted:
        raise BosaiError(f"{csv_path}: no readings of the regions' stations in the chosen time range")
    skipped = len(records) - len(wanted)
    progress(
        f"{len(wanted):,} readings of {len({r['station_id'] for r in wanted})} stations from "
        f"{jst_iso(wanted[0]['observed_at'])} to {jst_iso(wanted[-1]['observed_at'])}"
        + (f" ({skipped:,} rows of stations outside the regions skipped)" if skipped else "")
    )
    return wanted, skipped


def _plan(settings: ReplaySettings, store: SchemaStore, progress: Progress) -> tuple[ReplayPlan, int]:
    packs, catalog, jma_paths = settings.packs, replace(settings.catalog, prefix=settings.prefix), settings.jma_paths
    topic_sets = [HubTopics.for_region(catalog, p) for p in packs]
    routes = {sid: t.raw for p, t in zip(packs, topic_sets, strict=True) for sid in p.stations}
    narrow = None
    if settings.csv_path is not None and is_narrow(settings.csv_path):
        narrow = NarrowInput(settings.csv_path, packs, settings.since_ms, settings.until_ms)
        wanted: list[AvroRecord] = []
        skipped = 0
        progress(f"{settings.csv_path}: the narrow layout, read a day at a time while it is produced")
    else:
        wanted, skipped = _readings(routes, settings.csv_path, settings.since_ms, settings.until_ms, progress)
    official = None
    if jma_paths:
        by_prefecture: dict[str, list[str]] = {}
        for pack, topics in zip(packs, topic_sets, strict=True):
            by_prefecture.setdefault(pack.prefecture_code, []).append(topics.official)
        official = official_messages(
            jma_paths, by_prefecture, AvroCodec(store, OFFICIAL_REPORT), fetched_at=int(time.time() * 1000)
        )
        progress(
            f"{official.reports} official report(s) for the regions"
            + (f", {official.other_prefecture} of other prefectures skipped" if official.other_prefecture else "")
            + (f", {len(official.unreadable)} unreadable (to be dead-lettered)" if official.unreadable else "")
        )
        if not official.messages and not wanted:
            raise BosaiError("no official report concerns the regions' prefectures, and no readings were given")
    groups = _groups(packs, catalog.prefix, settings.workers)
    return ReplayPlan(packs, catalog, topic_sets, wanted, routes, official, groups, narrow), skipped


def _groups(packs: Sequence[RegionPack], prefix: str, workers: int) -> dict[str, str]:
    """Each pack's consumer group: its own (a worker per region), or the one group of the multi-region workers."""
    if workers:
        shared = group_for(prefix, [p.name for p in packs])
        return {p.name: shared for p in packs}
    return {p.name: app_id_for(prefix, p.name) for p in packs}


def _workers(plan: ReplayPlan, settings: ReplaySettings) -> list[WorkerProcess]:
    """``replicas`` worker processes per region, or ``workers`` processes each serving every region; the metrics
    ports go to each region's first replica (to the multi-region workers in turn)."""
    base = settings.worker_settings or WorkerSettings(pack_dir="")
    metrics_ports, replicas = settings.metrics_ports, settings.replicas
    if settings.workers:
        dirs = tuple(str(p.path) for p in plan.packs)
        return [
            WorkerProcess(
                Path(dirs[0]),
                plan.catalog.prefix,
                settings.bootstrap,
                settings.log_dir / f"{plan.catalog.prefix}-regions-{w}.log",
                settings=replace(
                    base, pack_dirs=dirs, instance=w, metrics_port=metrics_ports[w] if w < len(metrics_ports) else None
                ),
            )
            for w in range(settings.workers)
        ]
    return [
        WorkerProcess(
            Path(p.path),
            plan.catalog.prefix,
            settings.bootstrap,
            settings.log_dir / f"{plan.catalog.prefix}-{p.name}{f'-{r}' if r else ''}.log",
            settings=replace(
                base, instance=r, metrics_port=metrics_ports[i] if r == 0 and i < len(metrics_ports) else None
            ),
        )
        for i, p in enumerate(plan.packs)
        for r in range(replicas)
    ]


async def _drain(
    plan: ReplayPlan, bootstrap: str, *, timeout_s: float, progress: Progress, supervisor: Supervisor
) -> bool:
    """Wait until every consumer group (a region's, or the multi-region workers') has committed the end of its
    regions' raw and official topics.

    Processing official reports may write readings (a flood forecast's observed levels) to the raw
    topic, so the ends are read again after each pass until they stop moving.
    """
    ends = await kafka.end_offsets(bootstrap, plan.input_topics)
    while True:
        inputs: dict[str, set[str]] = defaultdict(set)  # group -> its input topics
        for pack, topics in zip(plan.packs, plan.topic_sets, strict=True):
            inputs[plan.groups[pack.name]].update((topics.raw, topics.official))
        for group, topics_of_group in inputs.items():
            targets = {tp: end for tp, end in ends.items() if tp.topic in topics_of_group}
            drained = await wait_drained(
                bootstrap, group, targets, timeout_s=timeout_s, progress=progress, supervisor=supervisor
            )
            if not drained:
                return False
        again = await kafka.end_offsets(bootstrap, plan.input_topics)
        if again == ends:
            return True
        ends = again


@dataclass(frozen=True)
class ReplaySettings:
    """What one replay does: the regions, the input (readings and/or official reports), the topic namespace,
    the workers and how long to wait for them. Checked once, when made (SettingsError says which setting)."""

    packs: Sequence[RegionPack]
    catalog: Catalog
    bootstrap: str
    prefix: str  # the topic namespace of the replay ("bosai" = the live topics, never deleted)
    log_dir: Path  # the workers' logs
    csv_path: Path | None = None  # AMeDAS readings
    jma_paths: Sequence[Path] = ()  # JMA's XML reports
    since_ms: int | None = None  # the readings' event-time range
    until_ms: int | None = None
    speed: float | None = None  # x real time; None = as fast as the broker takes them
    timeout_s: float = 600.0  # for the workers to drain their input
    keep_topics: bool = False
    worker_settings: WorkerSettings | None = None
    replicas: int = 1  # worker processes per region
    workers: int = 0  # > 0: this many worker processes, each serving every region (one consumer group); replicas unused
    metrics_ports: Sequence[int] = ()  # one per region's first replica
    live: bool = False  # the demo's terminal view
    start_workers: bool = True  # False: workers already run on ``prefix``

    def __post_init__(self) -> None:
        def refuse(setting: str, value: object, expected: str) -> SettingsError:
            return SettingsError("replay", setting, value, expected)

        if not self.packs:
            raise refuse("packs", list(self.packs), "at least one region pack")
        if self.csv_path is None and not self.jma_paths:
            raise refuse("input", None, "readings (a CSV), official reports (JMA XML files), or both")
        if not self.prefix:
            raise refuse("prefix", self.prefix, "a topic prefix")
        if self.since_ms is not None and self.until_ms is not None and self.since_ms > self.until_ms:
            raise refuse("range", (self.since_ms, self.until_ms), "a start at or before the end")
        if self.speed is not None and not self.speed > 0:
            raise refuse("speed", self.speed, "a positive factor, or None for as fast as possible")
        if not self.timeout_s > 0:
            raise refuse("timeout_s", self.timeout_s, "a positive number of seconds")
        if self.replicas < 1:
            raise refuse("replicas", self.replicas, "at least 1")
        if self.workers < 0:
            raise refuse("workers", self.workers, "0 (a worker per region) or more")


def run_replay(settings: ReplaySettings, store: SchemaStore, progress: Progress) -> ReplayResult:
    """Produce the CSV's readings into each region's raw topic and the official reports (``jma_paths``)
    into its official-reports topic, run the workers of each region, collect alerts."""
    started, bootstrap, prefix = time.monotonic(), settings.bootstrap, settings.prefix
    plan, skipped = _plan(settings, store, progress)
    result = ReplayResult(prefix=prefix, readings=len(plan.readings), skipped=skipped)
    if plan.official is not None:
        result.reports, result.reports_other_prefecture = plan.official.reports, plan.official.other_prefecture
    before, _ = asyncio.run(apply_topics(bootstrap, expand(plan.catalog, [p.topics_input() for p in plan.packs])))
    progress(f"topics under prefix '{prefix}': {len(before.changes)} created or updated")
    starts = asyncio.run(kafka.end_offsets(bootstrap, plan.output_topics + plan.input_topics))
    supervisor = Supervisor(_workers(plan, settings) if settings.start_workers else [], say=progress)
    with (
        _running(supervisor, settings.metrics_ports, progress),
        _live(settings.live, plan, bootstrap, starts, store, settings.metrics_ports) as shown,
    ):
        progress = (lambda _message: None) if shown else progress  # the live view shows progress itself
        produce_started = time.monotonic()
        asyncio.run(_produce(plan, bootstrap, store, speed=settings.speed, progress=progress))
        result.produce_s = time.monotonic() - produce_started
        if plan.narrow is not None:
            result.readings, result.skipped = plan.narrow.readings, plan.narrow.skipped
            progress(
                f"{result.readings:,} readings produced in {result.produce_s:.1f}s"
                + (f" ({result.skipped:,} rows of stations outside the regions skipped)" if result.skipped else "")
            )
            if not result.readings and plan.official is None:
                raise BosaiError(f"{plan.narrow.path}: no readings of the regions' stations in the chosen time range")
        result.drained = asyncio.run(
            _drain(plan, bootstrap, timeout_s=settings.timeout_s, progress=progress, supervisor=supervisor)
        )
        result.drain_s = time.monotonic() - produce_started - result.produce_s
    _collect(result, plan, bootstrap, store, starts)
    if not settings.keep_topics and prefix != "bosai":  # never delete the live topics
        asyncio.run(delete_namespace(bootstrap, prefix, [p.name for p in plan.packs]))
    result.total_s = time.monotonic() - started
    return result


async def _produce(
    plan: ReplayPlan, bootstrap: str, store: SchemaStore, *, speed: float | None, progress: Progress
) -> None:
    """The readings alone as before; with official reports, one timeline of both (a narrow CSV: a window at a
    time, each window's reports with its readings)."""
    codec = AvroCodec(store, READING)
    if plan.narrow is not None:
        if plan.official is None:
            await produce_windows(bootstrap, plan.narrow.windows(), plan.routes, codec, speed=speed, progress=progress)
            return
        reports = sorted(plan.official.messages, key=lambda m: (m.event_ms, m.order))
        for records in plan.narrow.windows():
            if not records:
                continue
            end = records[-1]["observed_at"]
            due = [m for m in reports if m.event_ms <= end]
            reports = reports[len(due) :]
            await produce_timeline(bootstrap, _timed(plan, codec, records) + due, speed=speed, progress=progress)
        if reports:
            await produce_timeline(bootstrap, reports, speed=speed, progress=progress)
        return
    if plan.official is None:
        await produce(bootstrap, plan.readings, plan.routes, codec, speed=speed, progress=progress)
        return
    await produce_timeline(
        bootstrap, _timed(plan, codec, plan.readings) + plan.official.messages, speed=speed, progress=progress
    )


def _timed(plan: ReplayPlan, codec: AvroCodec, records: Sequence[AvroRecord]) -> list[TimedMessage]:
    return [
        TimedMessage(r["observed_at"], 0, plan.routes[r["station_id"]], r["station_id"].encode(), payload)
        for r, payload in zip(records, codec.encode_many(records), strict=True)
    ]


@contextmanager
def _running(supervisor: Supervisor, metrics_ports: Sequence[int], progress: Progress) -> Iterator[None]:
    """The workers, started, kept running (each that exits is restarted), and stopped (by pid) however the block
    ends."""
    workers = supervisor.workers
    try:
        supervisor.start()
        urls = ", ".join(f"http://127.0.0.1:{port}/metrics" for port in metrics_ports)
        progress(
            f"started {len(workers)} worker(s): "
            + ", ".join(f"pid {w.pid}" for w in workers)
            + (f" — metrics on {urls}" if urls else "")
        )
        with supervisor.tending():
            yield
    finally:
        supervisor.stop()


@contextmanager
def _live(
    live: bool, plan: ReplayPlan, bootstrap: str, starts: Offsets, store: SchemaStore, metrics_ports: Sequence[int]
) -> Iterator[bool]:
    """The demo's terminal view while the block runs (when live); yields whether it is shown."""
    if not live:
        yield False
        return
    from streams.hub.live_view import AlertFollower, LiveView

    view = LiveView(len(plan.readings), [f"http://127.0.0.1:{port}/metrics" for port in metrics_ports])
    follower = AlertFollower(bootstrap, [t.alerts for t in plan.topic_sets], starts, view, store)
    follower.start()
    try:
        yield True
    finally:
        follower.stop()
        view.close()


def _collect(result: ReplayResult, plan: ReplayPlan, bootstrap: str, store: SchemaStore, starts: Offsets) -> None:
    ends = asyncio.run(kafka.end_offsets(bootstrap, plan.output_topics))
    alert_ends = {tp: e for tp, e in ends.items() if not tp.topic.endswith(".deadletter")}
    dead_ends = {tp: e for tp, e in ends.items() if tp.topic.endswith(".deadletter")}
    result.dead_letters = asyncio.run(kafka.count_messages(bootstrap, starts, dead_ends))
    result.alerts = asyncio.run(collect_alerts(bootstrap, store, starts, alert_ends, result.records))


def write_alerts(path: Path, alerts: Sequence[AlertLine]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for alert in alerts:
            handle.write(json.dumps(alert, ensure_ascii=False) + "\n")


def iter_lines(alerts: Sequence[AlertLine]) -> Iterator[str]:
    for alert in alerts:
        yield (
            f"{alert['observed_at']}  {alert['msg_type']:<6} {alert['rule']:<8} {alert['level']:<10} "
            f"{alert['station_id']}  {alert['headline']}"
        )
