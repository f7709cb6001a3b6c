"""What the fault drills share: a steady stream of readings that keeps alerts flowing, a read_committed
watcher that timestamps every alert message it receives, worker processes with a supervisor, and the
exactly-once check against a run without faults (the same pure pipeline over the same readings).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from streams.hub.processes import WorkerProcess
from streams.hub.replay import wait_drained
from streams.hub.worker import WorkerSettings, app_id_for
from streams.kernel.messages import InMessage
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics, expand
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.platform import kafka
from streams.platform.avro import ALERT, READING, AvroCodec, default_store
from streams.platform.kafka_admin import apply_topics
from streams.platform.topic_catalog import load_default_catalog

START_MS = 1_704_034_800_000  # 2024-01-01T00:00+09:00
HOUR_MS = 3_600_000
# 1-hour rain cycling through every JMA band and back to none: each cycle raises, escalates three
# times and clears the rain_1h alert, and moves the windowed rules too.
CYCLE_MM = (0.0, 25.0, 35.0, 55.0, 85.0, 0.0, 0.0, 0.0)

# drill name -> each stall measured (seconds from the fault to the next alert delivered); the session's
# terminal summary prints them, so CI's output carries the figures
STALLS: dict[str, list[float]] = {}


def readings(pack: RegionPack, count: int) -> list[dict]:
    """count readings, round-robin over the pack's stations, each station one hour later than its last."""
    stations = sorted(pack.stations)
    out = []
    for i in range(count):
        step, k = divmod(i, len(stations))
        value = CYCLE_MM[(step + k) % len(CYCLE_MM)]
        out.append(
            {
                "station_id": stations[k],
                "sensor_kind": "RAIN_GAUGE",
                "observed_at": START_MS + step * HOUR_MS,
                "location": None,
                "measurements": [{"quantity": "precipitation_1h", "value": value, "unit": "mm"}],
                "quality": "OK",
                "source": "drill",
                "produced_at": None,
            }
        )
    return out


def namespace(bootstrap: str, pack: RegionPack, prefix: str) -> HubTopics:
    catalog = load_default_catalog(prefix)
    asyncio.run(apply_topics(bootstrap, expand(catalog, [pack.topics_input()])))
    return HubTopics.for_region(catalog, pack)


class Producer(threading.Thread):
    """Produces the readings at a steady rate (a sensor network does not stop for a drill)."""

    def __init__(self, bootstrap: str, topic: str, records: list[dict], rate: float):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.error: BaseException | None = None
        self.sent = 0
        self.sent_at: list[float] = []  # monotonic time each reading was handed to the producer
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _produce(self) -> None:
        codec = AvroCodec(default_store(), READING)
        payloads = codec.encode_many(self.records)
        async with kafka.started_producer(self.bootstrap, request_timeout_ms=60_000) as producer:
            started = time.monotonic()
            pending = []
            for i, (record, payload) in enumerate(zip(self.records, payloads, strict=True)):
                if self.stopping.is_set():
                    break
                delay = started + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.sent_at.append(time.monotonic())
                pending.append(await producer.send(self.topic, payload, key=record["station_id"].encode()))
                self.sent = i + 1
            await asyncio.gather(*pending)


class Watcher(threading.Thread):
    """Follows the prefecture's alert topic read_committed: when each alert arrived, and from which reading."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.arrivals: list[tuple[float, str, int]] = []  # (arrival, station id, observed_at)
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        codec = AvroCodec(default_store(), ALERT)
        async with kafka.started_consumer(self.bootstrap) as consumer:
            partitions = [kafka.TopicPartition(self.topic, p) for p in await kafka.partitions_of(consumer, self.topic)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self.ready.set()
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=50)
                now = time.monotonic()
                for messages in batch.values():
                    for message in messages:
                        alert = codec.decode(message.value)
                        self.arrivals.append((now, alert["station_id"], alert["observed_at"]))


@dataclass
class Drill:
    """One drill's namespace, workers and measurements."""

    bootstrap: str
    pack: RegionPack
    prefix: str
    log_dir: Path
    records: list[dict]
    rate: float = 100.0
    topics: HubTopics = field(init=False)
    workers: list[WorkerProcess] = field(default_factory=list)
    supervised: set[int] = field(default_factory=set)
    stalls: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = {(r["station_id"], r["observed_at"]): i for i, r in enumerate(self.records)}
        self.topics = namespace(self.bootstrap, self.pack, self.prefix)
        self.watcher = Watcher(self.bootstrap, self.topics.alerts)
        self.producer = Producer(self.bootstrap, self.topics.raw, self.records, self.rate)
        self._supervising = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def worker(self, instance: int, *, supervised: bool = True) -> WorkerProcess:
        settings = WorkerSettings(pack_dir="", instance=instance, session_timeout_ms=6000)
        process = WorkerProcess(
            self.pack.path,
            self.prefix,
            self.bootstrap,
            self.log_dir / f"{self.prefix}-{instance}-{len(self.workers)}.log",
            settings=settings,
        )
        process.start()
        self.workers.append(process)
        if supervised:
            self.supervised.add(id(process))
        return process

    def replace_worker(self, old: WorkerProcess) -> WorkerProcess:
        """A restarted worker: same replica, so the same static group membership."""
        self.supervised.discard(id(old))
        return self.worker(old.settings.instance)

    def start(self) -> None:
        self.watcher.start()
        self.watcher.ready.wait(30)
        self.producer.start()
        self._supervisor.start()

    def _supervise(self) -> None:
        """Like the replay's supervisor: a worker that exits crash-only is started again."""
        while not self._supervising.is_set():
            for worker in list(self.workers):
                if id(worker) in self.supervised and worker.restart_if_asked():
                    print(f"[drill] worker {worker.settings.instance} exited crash-only; restarted (pid {worker.pid})")
            time.sleep(0.3)

    def flowing(self, timeout_s: float = 60.0) -> None:
        """Wait until alerts are being delivered (the workers have started and caught up)."""
        self.stall_after(time.monotonic(), timeout_s, record=False)

    def stall_after(self, fault_at: float, timeout_s: float = 90.0, *, record: bool = True) -> float:
        """How long the alert stream stood still after a fault: for every station, the time from the fault
        until an alert computed from one of its readings produced after the fault reaches a read_committed
        consumer; the slowest station's (a dead worker's partitions wait for its session to expire)."""
        deadline = time.monotonic() + timeout_s
        pending = set(self.pack.stations)
        stall = 0.0
        seen = 0
        while pending and time.monotonic() < deadline:
            if not self.producer.is_alive():
                raise AssertionError("the producer finished before the hub recovered: nothing left to measure")
            arrivals = self.watcher.arrivals[seen:]
            seen += len(arrivals)
            sent_at = self.producer.sent_at
            for arrival, station_id, observed_at in arrivals:
                i = self.index.get((station_id, observed_at))
                if station_id in pending and i is not None and i < len(sent_at) and sent_at[i] > fault_at:
                    pending.discard(station_id)
                    stall = max(stall, arrival - fault_at)
            time.sleep(0.05)
        if pending:
            raise AssertionError(
                f"no alert from readings produced after the fault within {timeout_s:.0f} s for "
                f"stations {sorted(pending)}"
            )
        if record:
            self.stalls.append(stall)
        return stall

    def random_pause(self, rng: random.Random, low: float, high: float) -> None:
        time.sleep(rng.uniform(low, high))

    def finish(self, timeout_s: float = 180.0) -> None:
        """Stop producing, wait until every reading produced is processed; stop the workers by pid."""
        self.producer.stopping.set()
        self.producer.join(timeout_s)
        self.records = self.records[: self.producer.sent]
        assert self.producer.error is None, self.producer.error
        assert not self.producer.is_alive(), "the producer did not finish"
        ends = asyncio.run(kafka.end_offsets(self.bootstrap, [self.topics.raw]))
        live = [w for w in self.workers if id(w) in self.supervised]
        self._stop_supervising()  # wait_drained supervises them now: one supervisor at a time
        try:
            assert asyncio.run(
                wait_drained(
                    self.bootstrap,
                    app_id_for(self.prefix, self.pack.name),
                    ends,
                    timeout_s=timeout_s,
                    progress=print,
                    workers=live,
                )
            )
        finally:
            self._stop_supervising()
            self.watcher.stopping.set()
            for worker in self.workers:
                worker.stop()

    def _stop_supervising(self) -> None:
        """Before the workers are stopped: a supervisor still looping could restart one being stopped
        (it exits 75 when its last transaction fails on shutdown) and leave it running after the drill."""
        self._supervising.set()
        if self._supervisor.is_alive():
            self._supervisor.join(10)

    def cleanup(self) -> None:
        """Whatever happened, nothing of the drill keeps running."""
        self._stop_supervising()
        self.watcher.stopping.set()
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)  # a frozen zombie cannot even die of SIGTERM otherwise
            worker.kill()

    def check_exactly_once(self) -> None:
        """Same alert events as a run without faults; every output message exactly once (read_committed)."""
        store = default_store()
        payloads = AvroCodec(store, READING).encode_many(self.records)
        reference = Pipeline(self.pack, self.topics, store).process(
            [InMessage(self.topics.raw, 0, i, None, p) for i, p in enumerate(payloads)], lambda _sid: StationState()
        )
        expected = {(a.record["alert_id"], a.record["sequence"]): a for a in reference.alerts}
        outputs = [*self.topics.alert_topics(), self.topics.enriched]
        delivered = asyncio.run(
            kafka.read_range(self.bootstrap, {}, asyncio.run(kafka.end_offsets(self.bootstrap, outputs)), timeout_s=60)
        )
        copies = Counter((m.topic, m.key, m.value) for m in delivered)
        duplicated = [(topic, key) for (topic, key, _), n in copies.items() if n > 1]
        codec = AvroCodec(store, ALERT)
        alerts = [codec.decode(m.value) for m in delivered if m.topic == self.topics.alerts]
        got = {(a["alert_id"], a["sequence"]): a for a in alerts}
        assert duplicated == [], f"delivered twice: {duplicated[:5]}"
        assert set(got) == set(expected), (
            f"missing {sorted(set(expected) - set(got))[:5]}, unexpected {sorted(set(got) - set(expected))[:5]}"
        )
        assert all(got[k] == replace_none(expected[k].record) for k in got), "an alert's content changed"
        assert sum(1 for m in delivered if m.topic == self.topics.enriched) == len(self.records)
        assert len(expected) > 100


@functools.cache
def _alert_codec() -> AvroCodec:
    return AvroCodec(default_store(), ALERT)


def replace_none(record: dict) -> dict:
    """The reference record as a consumer decodes it (Avro fills the defaults).

    One codec for the drill: building one loads every schema of avro/, and a drill checks thousands of alerts."""
    return _alert_codec().decode(_alert_codec().encode(record))
