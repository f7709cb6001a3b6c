"""The Faust app of one region: topics, the state tables, and two agents (readings, official reports) — wiring only.

The agent takes batches of raw readings (``take_events``), hands them to :class:`Pipeline`, writes
every output record in per-partition batches through one idempotent producer and waits for the
broker's acknowledgements, and only then writes the new station states into the table, whose
changelog lets a restarted worker resume where it was. Faust commits an offset only after the batch holding it
has been fully processed, and flushes its own producer (the changelog) before committing: offsets
are never ahead of what their messages produced. A crash in between makes Faust redeliver; the
lifecycle then produces the same alert ids and content again (or nothing, if the state was saved),
so consumers de-duplicate on (alert_id, sequence).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faust

from streams.adapters import metrics
from streams.adapters.avro import SchemaStore, default_store
from streams.adapters.broker import probe, resolve_bootstrap
from streams.adapters.kafka import BatchSender, consumer_lag
from streams.config.region_pack import load_pack
from streams.config.settings import cache_dir
from streams.config.topic_catalog import load_default_catalog
from streams.core.errors import BosaiError
from streams.core.lifecycle import StationState
from streams.core.messages import InMessage
from streams.core.official import OfficialState
from streams.core.region import RegionPack
from streams.core.topics import Catalog, HubTopics
from streams.pipeline import Pipeline
from streams.pipeline.official import OfficialPipeline

log = logging.getLogger("bosai.hub")

STATE_TABLE = "station-state"
OFFICIAL_TABLE = "official-state"  # one event's state per official-report key
RESTART_EXIT = 75  # EX_TEMPFAIL: the worker stopped itself and asks its supervisor for a restart
STALLED_EXIT = RESTART_EXIT  # kept: the name replay and tests use


def app_id_for(prefix: str, region: str) -> str:
    return f"{prefix}-{region}-hub"


def settle_heap() -> None:
    """Garbage-collector settings for a long-running worker; call once the region pack is loaded.

    Freezing moves everything loaded at start (pack, geometries, stations, compiled rules) out of
    the collector's sight, and a first-generation threshold of one batch's allocations (about 50
    objects per reading) stops the batch in flight from being promoted and rescanned by full
    collections. Measured on the pure core, 10,000 stations: 7,900 -> 14,700 readings/s.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


class HubWorker(faust.Worker):
    """The Faust worker, with the root logger left at the chosen level.

    Faust's progress spinner lowers the root logger to DEBUG so that it can spin on every record;
    then every per-message ``log.debug`` in Faust and aiokafka builds a LogRecord that is thrown
    away — 7 % of the hub's time under load (py-spy). The hub runs without the spinner.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


def create_app(
    pack: RegionPack,
    catalog: Catalog,
    store: SchemaStore,
    *,
    bootstrap: str,
    prefix: str,
    replication_factor: int = 1,
    batch_max: int = 2000,
    batch_within_s: float = 0.01,
    commit_interval_s: float = 1.0,
    stall_s: float = 30.0,
) -> faust.App:
    """A Faust app processing one region's raw readings."""
    topics = HubTopics.for_region(catalog, pack)
    raw_partitions = catalog.template("readings.raw").partitions
    datadir = cache_dir() / "faust" / app_id_for(prefix, pack.name)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id_for(prefix, pack.name),
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),  # Faust's local state: under the cache, never in the checkout
        web_enabled=False,
        topic_replication_factor=replication_factor,
        topic_partitions=raw_partitions,
        broker_commit_interval=commit_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        # A crashed worker's partitions move to the others after 10 s instead of a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
    )
    raw = app.topic(topics.raw, key_serializer="raw", value_serializer="raw", partitions=raw_partitions)
    # Keyed by station id bytes; use_partitioner makes the changelog partition the producer's
    # murmur2 partition of the key, the same partition the station's readings have on the raw topic.
    states = app.Table(
        STATE_TABLE,
        default=None,
        partitions=raw_partitions,
        use_partitioner=True,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
    )  # JSON bytes
    pipeline = Pipeline(pack, topics, store)
    sender = BatchSender(bootstrap)
    metrics.worker_info(pack.name, app.conf.id)
    clock = metrics.StationClock(pack.name, pack.stations)
    metrics.station_info(pack)
    metrics.initialise(pack)

    open_alerts = metrics.OpenAlerts(pack)
    progress = {"last_batch": time.monotonic()}

    # The decoded state of each station seen, with the very table value it was decoded from or
    # written as. It is reused only while the table still holds that object: a value Faust restored
    # from the changelog (after a restart or a rebalance) is a new object, so it is decoded afresh.
    decoded: dict[str, tuple[object, StationState]] = {}

    def state_of(station_id: str) -> StationState:
        document = states.get(station_id.encode())
        known = decoded.get(station_id)
        if known is not None and known[0] is document:
            return known[1]
        state = StationState.from_json(document)
        decoded[station_id] = (document, state)
        open_alerts.update({station_id: state})  # alerts recovered from the changelog
        return state

    async def changelog_written() -> None:
        """Wait until every table write so far is on the broker.

        Faust flushes its producer before it commits offsets, but its buffer's flush gives up as soon
        as one message takes longer than 0.1 s to go out (``ProducerBuffer.flush_atmost``), so under
        load it could commit a batch whose new states were still queued; a crash then would restore
        older states after the batch's readings were consumed (an open alert forgotten, its Cancel
        never sent). So the batch ends only once the changelog holds its states.
        """
        producer = app.producer
        await producer.flush()
        while producer.buffer.size:
            await producer.flush()

    @app.agent(raw, name="hub")
    async def hub(stream) -> None:  # noqa: ANN001 - Faust stream
        await sender.start()
        async for events in stream.take_events(batch_max, within=batch_within_s):
            try:
                started = time.time()
                progress["last_batch"] = time.monotonic()
                messages = [
                    InMessage(
                        e.message.topic,
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                        int(e.message.timestamp * 1000),
                    )
                    for e in events
                ]
                result = pipeline.process(messages, state_of)
                log.debug("batch of %d readings: %d records out", len(messages), len(result.records))
                written = await sender.send(result.records)
                # only once every output is acknowledged: the new states, into the table and its changelog
                for station_id, state in result.states.items():
                    document = state.to_bytes()
                    states[station_id.encode()] = document
                    decoded[station_id] = (document, state)
                await changelog_written()
                open_alerts.update(result.states)
                metrics.observe_batch(
                    pack.name,
                    result,
                    started_s=started,
                    finished_s=time.time(),
                    bytes_written=written,
                    records=result.records,
                )
                clock.update(result.station_times)
            except BaseException as exc:  # noqa: BLE001 - includes cancellation mid-batch
                # take_events acknowledges a batch's events when its body ends, however it ends: a batch
                # that failed or was cancelled half-way must not be acknowledged, so exit at once and let
                # the supervisor restart the worker, which reads the batch again (crash-only).
                log.error(
                    "batch of %d readings not completed (%r): exiting (status %d) without acknowledging it",
                    len(events),
                    exc,
                    RESTART_EXIT,
                )
                logging.shutdown()
                os._exit(RESTART_EXIT)

    # Official reports (JMA's XML): the same batch shape as the readings agent, its own table keyed by
    # the report key (<InfoKind>|<EventID>), co-partitioned with the official-reports topic.
    official_partitions = catalog.template("official.raw").partitions
    official_raw = app.topic(
        topics.official, key_serializer="raw", value_serializer="raw", partitions=official_partitions
    )
    official_states = app.Table(
        OFFICIAL_TABLE,
        default=None,
        partitions=official_partitions,
        use_partitioner=True,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
    )
    official = OfficialPipeline(pack, topics, store)

    def official_state_of(key: str) -> OfficialState:
        return OfficialState.from_json(official_states.get(key.encode()))

    @app.agent(official_raw, name="official")
    async def official_reports(stream) -> None:  # noqa: ANN001 - Faust stream
        await sender.start()
        async for events in stream.take_events(batch_max, within=batch_within_s):
            try:
                started = time.time()
                progress["last_batch"] = time.monotonic()
                messages = [
                    InMessage(
                        e.message.topic,
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                        int(e.message.timestamp * 1000),
                    )
                    for e in events
                ]
                result = official.process(messages, official_state_of)
                written = await sender.send(result.records)
                for key, state in result.states.items():
                    official_states[key.encode()] = state.to_bytes()
                await changelog_written()
                metrics.observe_official_batch(
                    pack.name,
                    result,
                    started_s=started,
                    finished_s=time.time(),
                    bytes_written=written,
                    records=result.records,
                )
            except BaseException as exc:  # noqa: BLE001 - as the readings agent: never acknowledge half a batch
                log.error(
                    "batch of %d official reports not completed (%r): exiting (status %d) without acknowledging it",
                    len(events),
                    exc,
                    RESTART_EXIT,
                )
                logging.shutdown()
                os._exit(RESTART_EXIT)

    @app.timer(5.0)
    async def _sample_lag() -> None:
        """Consumer lag of the raw and official topics: end offsets minus this group's committed offsets."""
        try:
            lag = await consumer_lag(bootstrap, app.conf.id, topics.raw)
            official_lag = await consumer_lag(bootstrap, app.conf.id, topics.official)
        except Exception as exc:  # a sampling hiccup must never stop the hub
            log.warning("consumer lag not sampled: %s", exc)
            return
        metrics.CONSUMER_LAG.labels(pack.name, topics.raw).set(lag)
        metrics.CONSUMER_LAG.labels(pack.name, topics.official).set(official_lag)
        lag += official_lag
        idle = time.monotonic() - progress["last_batch"]
        if lag > 0 and idle > stall_s:
            # Crash-only: after a kill -9 faust-streaming occasionally resumes a restarted worker with
            # its partitions never delivered to the agent. Nothing is lost (offsets are not committed
            # past acknowledged outputs), so exit and let the supervisor start a fresh worker.
            log.error(
                "no batch for %.0f s with %d messages waiting: exiting (status %d) to be restarted",
                idle,
                lag,
                STALLED_EXIT,
            )
            logging.shutdown()
            os._exit(STALLED_EXIT)

    @app.task
    async def _announce() -> None:
        log.info(
            "hub for %s: consuming %s, %d stations, %d municipalities",
            pack.name,
            topics.raw,
            len(pack.stations),
            len(pack.municipalities),
        )

    @app.on_before_shutdown.connect
    async def _close_sender(sender_app, **kwargs: object) -> None:  # noqa: ANN001, ARG001 - Faust signal
        await sender.stop()

    return app


@dataclass(frozen=True)
class WorkerSettings:
    """What one worker process runs: passed as JSON to ``python -m streams.runtime.worker``."""

    pack_dir: str
    topic_prefix: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    batch_max: int = 2000
    loglevel: str = "warn"

    def command(self) -> list[str]:
        """The command line that starts a worker process with these settings."""
        return [sys.executable, "-m", "streams.runtime.worker", json.dumps(asdict(self))]


def run_worker(settings: WorkerSettings, say=print) -> None:  # noqa: ANN001 - a print-like callable
    """Run the hub for one region until stopped (SIGTERM/SIGINT)."""
    pack = load_pack(Path(settings.pack_dir))
    catalog = load_default_catalog(settings.topic_prefix)
    bootstrap = resolve_bootstrap()
    brokers = probe(bootstrap) or 1
    app = create_app(
        pack,
        catalog,
        default_store(),
        bootstrap=bootstrap,
        prefix=catalog.prefix,
        replication_factor=min(catalog.replication_factor, brokers),
        batch_max=settings.batch_max,
    )
    if settings.metrics_port is not None:
        port = metrics.serve(settings.metrics_port, settings.metrics_host)
        say(f"metrics on http://{settings.metrics_host}:{port}/metrics")
    say(f"hub worker for {pack.name}: app {app.conf.id}, broker {bootstrap}")
    settle_heap()
    HubWorker(app, loglevel=settings.loglevel, quiet=True).execute_from_commandline()


def main(argv: list[str] | None = None) -> None:
    """Entry point of a worker process started by replay, demo or a supervisor (see WorkerSettings)."""
    args = sys.argv[1:] if argv is None else argv
    settings = WorkerSettings(**json.loads(args[0]))
    try:
        run_worker(settings, say=lambda line: print(line, file=sys.stderr, flush=True))
    except BosaiError as exc:
        print(f"bosai worker: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
