"""The hub worker of one region or many: a Faust process hosting the transactional batch loop.

Faust hosts the worker — the process, its lifecycle, signals, logging and timers (consumer lag) — and
the hot path is a batch consumer with one transactional producer per input partition
(:mod:`streams.hub.batch_loop`, :mod:`streams.hub.partition`): each batch's outputs, its changed
station states and its input offset commit in one Kafka transaction (exactly-once for read_committed
consumers). Faust's own per-event stream and tables are not used: measured in ``bosai bench``, Faust's
stream alone (taking batches and doing nothing) was slower than the whole hub needs to be.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faust
from faust.app.base import BootStrategy

from streams.hub.batch_loop import FENCED_EXIT, RESTART_EXIT, HubService
from streams.hub.partition import Stream
from streams.kernel.errors import BosaiError
from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, HubTopics, topic_name
from streams.observed.lifecycle import StationChange, StationState
from streams.observed.open_alerts import OpenAlerts
from streams.observed.pipeline import ObservedResult, Pipeline
from streams.observed.readings import REASONS
from streams.official.lifecycle import RULES, OfficialState
from streams.official.pipeline import OfficialChange, OfficialPipeline, OfficialResult
from streams.official.relay import RELAY_RULES
from streams.packs.region_pack import load_pack
from streams.platform import metrics
from streams.platform.avro import SchemaStore, default_store
from streams.platform.broker import resolve_bootstrap
from streams.platform.settings import cache_dir
from streams.platform.topic_catalog import load_default_catalog

log = logging.getLogger("bosai.hub")

__all__ = ["FENCED_EXIT", "RESTART_EXIT", "WorkerSettings", "group_for", "run_worker"]


def app_id_for(prefix: str, region: str) -> str:
    return f"{prefix}-{region}-hub"


def group_for(prefix: str, regions: Sequence[str]) -> str:
    """The consumer group of a worker serving ``regions``: one region's own group (``<prefix>-<region>-hub``), or
    for several one group named by how many they are and a digest of their names (``<prefix>-regions-45-<hash>-hub``),
    the same for every replica and every restart of workers serving the same regions."""
    names = sorted(set(regions))
    if len(names) == 1:
        return app_id_for(prefix, names[0])
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
    return f"{prefix}-regions-{len(names)}-{digest}-hub"


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


class NoKafkaBoot(BootStrategy):
    """Faust without its own Kafka consumer and producer: the batch loop brings its own clients."""

    enable_kafka = False


class HostApp(faust.App):
    BootStrategy = NoKafkaBoot


def readings_stream(pack: RegionPack, catalog: Catalog, store: SchemaStore) -> Stream[StationState, StationChange]:
    """The raw readings of a region, processed by the readings pipeline, states on state.readings."""
    topics = HubTopics.for_region(catalog, pack)
    changelog = topic_name(catalog, "state.readings", pack.name, prefecture_code=pack.prefecture_code)
    clock = metrics.StationClock(pack.name, pack.stations)
    open_alerts = OpenAlerts(pack)

    def on_batch(result: ObservedResult, started_s: float, finished_s: float, written: int) -> None:
        open_alerts.update(result.states)
        metrics.observe_batch(
            pack.name, result, started_s=started_s, finished_s=finished_s, bytes_written=written, records=result.records
        )
        clock.update(result.station_times)

    return Stream(
        name="readings",
        topic=topics.raw,
        changelog=changelog,
        processor=Pipeline(pack, topics, store),
        decode_state=StationState.from_json,
        on_batch=on_batch,
        on_restore=open_alerts.update,
    )


def official_stream(pack: RegionPack, catalog: Catalog, store: SchemaStore) -> Stream[OfficialState, OfficialChange]:
    """JMA's official reports of a region, processed by the official pipeline, states on state.official."""
    topics = HubTopics.for_region(catalog, pack)
    changelog = topic_name(catalog, "state.official", pack.name, prefecture_code=pack.prefecture_code)

    def on_batch(result: OfficialResult, started_s: float, finished_s: float, written: int) -> None:
        metrics.observe_official_batch(
            pack.name, result, started_s=started_s, finished_s=finished_s, bytes_written=written, records=result.records
        )

    return Stream(
        name="official",
        topic=topics.official,
        changelog=changelog,
        processor=OfficialPipeline(pack, topics, store),
        decode_state=OfficialState.from_json,
        on_batch=on_batch,
    )


def create_app(packs: Sequence[RegionPack], *, bootstrap: str, app_id: str) -> faust.App:
    """The Faust app hosting the worker of these regions: no agents, no Kafka of its own (the hub service has it)."""
    datadir = cache_dir() / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = HostApp(app_id, broker=f"kafka://{bootstrap}", web_enabled=False, datadir=str(datadir))
    for pack in packs:
        metrics.worker_info(pack.name, app_id)
        metrics.station_info(pack)
        metrics.initialise(pack, dead_letter_reasons=REASONS, official_rules=(*RULES.values(), *RELAY_RULES))

    return app


def sample_lag(app: faust.App, service: HubService, region_of: Mapping[str, str]) -> None:
    """Every 5 s, the consumer lag of this worker's partitions (``HubService.lag``: no Kafka request), labelled
    with the region of each input topic (``region_of``)."""

    async def _sample_lag() -> None:
        for topic, lag in (await service.lag()).items():
            metrics.CONSUMER_LAG.labels(region_of[topic], topic).set(lag)

    app.timer(5.0)(_sample_lag)  # registers the timer (Faust's decorator is untyped: called, not applied)


@dataclass(frozen=True)
class WorkerSettings:
    """What one worker process runs: passed as JSON to ``python -m streams.hub.worker``.

    The worker serves ``pack_dirs`` when given (many regions in one process, one consumer group), else the one
    region of ``pack_dir``."""

    pack_dir: str
    pack_dirs: tuple[str, ...] = ()
    topic_prefix: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    batch_max: int = 10_000  # most records one poll fetches, and one partition's transaction holds
    loglevel: str = "warning"  # Python's level names (mode, under Faust, takes them)
    instance: int = 0  # which replica of the region this is (its static group membership)
    session_timeout_ms: int = 6000

    @property
    def regions(self) -> tuple[str, ...]:
        """The pack folders this worker serves."""
        return tuple(self.pack_dirs) if self.pack_dirs else (self.pack_dir,)

    def command(self) -> list[str]:
        """The command line that starts a worker process with these settings."""
        return [sys.executable, "-m", "streams.hub.worker", json.dumps(asdict(self))]


def run_worker(settings: WorkerSettings, say: Callable[[str], None] = print) -> None:
    """Run the hub for the settings' regions until stopped (SIGTERM/SIGINT): one consumer group over every
    region's input topics, each partition's batches through its own region's pipeline (loaded once)."""
    packs = [load_pack(Path(d)) for d in settings.regions]
    catalog = load_default_catalog(settings.topic_prefix)
    bootstrap = resolve_bootstrap()
    store = default_store()
    group_id = group_for(catalog.prefix, [p.name for p in packs])
    app = create_app(packs, bootstrap=bootstrap, app_id=group_id)
    streams = [s for p in packs for s in (readings_stream(p, catalog, store), official_stream(p, catalog, store))]
    region_of: dict[str, str] = {}
    for pack in packs:
        topics = HubTopics.for_region(catalog, pack)
        region_of[topics.raw] = region_of[topics.official] = pack.name
    service = HubService(
        streams,
        bootstrap=bootstrap,
        group_id=group_id,
        instance_id=f"{group_id}-{settings.instance}",
        session_timeout_ms=settings.session_timeout_ms,
        max_records=settings.batch_max,
    )
    sample_lag(app, service, region_of)
    if settings.metrics_port is not None:
        port = metrics.serve(settings.metrics_port, settings.metrics_host)
        say(f"metrics on http://{settings.metrics_host}:{port}/metrics")
    served = packs[0].name if len(packs) == 1 else f"{len(packs)} regions ({', '.join(p.name for p in packs)})"
    say(f"hub worker for {served}: group {group_id}, instance {settings.instance}, broker {bootstrap}")
    settle_heap()
    HubWorker(app, service, loglevel=settings.loglevel, quiet=True).execute_from_commandline()


def main(argv: list[str] | None = None) -> None:
    """Entry point of a worker process started by replay, demo or a supervisor (see WorkerSettings)."""
    args = sys.argv[1:] if argv is None else argv
    settings = WorkerSettings(**json.loads(args[0]))
    try:
        run_worker(settings, say=lambda line: print(line, file=sys.stderr, flush=True))
    except BosaiError as exc:
        print(f"bosai worker: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
