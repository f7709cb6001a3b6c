"""`bosai worker`, `bosai replay` and `bosai tail`: running the hub, replaying history through it, watching it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.cli.common import (
    Speed,
    catalog,
    current_log_level,
    log_level_option,
    metrics_options,
    replicas_option,
    say,
    topic_prefix_option,
)
from streams.kernel.errors import BosaiError

if TYPE_CHECKING:  # types only: the CLI imports what a command needs when it runs
    from streams.hub.replay import ReplayResult


regions_folder_option = click.option(
    "--regions",
    "regions_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of region packs (e.g. what `bosai region init-all` wrote): every pack in it, served together.",
)


def _pack_dirs(pack_dirs: tuple[Path, ...], regions_dir: Path | None) -> list[Path]:
    """The pack folders of --region (repeatable) and --regions (a folder of packs), in that order."""
    from streams.packs.region_pack import pack_dirs_under

    dirs = list(pack_dirs) + (pack_dirs_under(regions_dir) if regions_dir is not None else [])
    if not dirs:
        raise click.UsageError("give --region (a pack) or --regions (a folder of packs)")
    return dirs


@click.command()
@click.option(
    "--region",
    "pack_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack folder of a region this worker serves (repeatable).",
)
@regions_folder_option
@topic_prefix_option
@metrics_options
@click.option(
    "--batch-max",
    default=10_000,
    show_default=True,
    help="Most records one poll fetches, and one partition's transaction holds.",
)
@log_level_option
@click.option(
    "--replicas",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes for the region(s), sharing their partitions, supervised: each that exits, for any reason, "
    "is restarted (at most 5 times within 10 minutes, then exit 4); their metrics on --metrics-port and the "
    "following ports.",
)
@click.option(
    "--instance",
    default=0,
    show_default=True,
    type=int,
    envvar="BOSAI_WORKER_INSTANCE",
    help="This worker's replica number (its static group membership), when a supervisor starts each; on "
    "Kubernetes the StatefulSet pod's ordinal [env BOSAI_WORKER_INSTANCE].",
)
def worker(
    pack_dirs: tuple[Path, ...],
    regions_dir: Path | None,
    topic_prefix: str | None,
    metrics_port: int | None,
    metrics_host: str,
    batch_max: int,
    replicas: int,
    instance: int,
) -> None:
    """Run the hub for one region or many (one consumer group, each region's own pipeline): consume raw readings,
    emit enriched readings, alerts, dead letters."""
    from streams.hub.worker import WorkerSettings, run_worker

    dirs = _pack_dirs(pack_dirs, regions_dir)
    pack_dir = dirs[0]
    settings = WorkerSettings(
        pack_dir=str(pack_dir),
        pack_dirs=tuple(str(d) for d in dirs) if len(dirs) > 1 else (),
        topic_prefix=topic_prefix,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        batch_max=batch_max,
        loglevel=current_log_level(),
        instance=instance,
    )
    if replicas == 1:
        run_worker(settings, say=say)
        return
    from dataclasses import replace

    from streams.hub.processes import WorkerProcess, supervise
    from streams.platform.broker import resolve_bootstrap
    from streams.platform.settings import cache_dir

    prefix = catalog(topic_prefix).prefix
    logs = cache_dir() / "logs"
    processes = [
        WorkerProcess(
            pack_dir,
            prefix,
            resolve_bootstrap(),
            logs / f"{prefix}-{pack_dir.name if len(dirs) == 1 else f'regions-{len(dirs)}'}-{i}.log",
            settings=replace(settings, instance=i, metrics_port=None if metrics_port is None else metrics_port + i),
        )
        for i in range(replicas)
    ]
    served = pack_dir.name if len(dirs) == 1 else f"{len(dirs)} regions'"
    say(f"{replicas} replicas of the {served} worker; logs in {logs}")
    sys.exit(supervise(processes, say=say))


def _report(result: ReplayResult, timeout_s: float, allow_dead_letters: bool) -> None:
    from streams.hub.replay import iter_lines

    for line in iter_lines(result.alerts):
        click.echo(line)
    counts = Counter((a["rule"], a["level"]) for a in result.alerts if a["msg_type"] == "ALERT")
    reports = f" and {result.reports:,} official report(s)" if result.reports else ""
    click.echo(
        f"replayed {result.readings:,} readings{reports} in {result.total_s:.1f}s (produce {result.produce_s:.1f}s, "
        f"drain {result.drain_s:.1f}s); {len(result.alerts)} alert events; dead letters {result.dead_letters}"
    )
    for (rule, level), n in sorted(counts.items()):
        click.echo(f"  raised {rule}/{level}: {n}")
    if not result.drained:
        raise BosaiError(f"the pipeline did not drain within {timeout_s:.0f}s")
    if result.dead_letters and not allow_dead_letters:
        raise BosaiError(
            f"{result.dead_letters} message(s) were dead-lettered (use --keep-topics and "
            f"`bosai tail` on the deadletter topic to see why)"
        )


@click.command()
@log_level_option
@click.option(
    "--region",
    "pack_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack (repeatable; each gets its own worker unless --workers is given).",
)
@regions_folder_option
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Worker processes, each serving every region in one consumer group (default with --regions: 1; "
    "without: a worker per region, --replicas each).",
)
@click.option(
    "--csv",
    "csv_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="AMeDAS-format CSV or CSV.gz: the wide layout, or the narrow national one "
    "(observed_at,station_id,precip_1h_mm,precip_24h_mm), read a day at a time.",
)
@click.option(
    "--jma",
    "jma_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="JMA report XML (気象庁防災情報XML) or a folder of them (repeatable): replayed in ReportDateTime order.",
)
@click.option("--from", "since", default=None, help="First event time, JST (e.g. 2023-09-04).")
@click.option("--to", "until", default=None, help="End of the range (exclusive), JST.")
@click.option(
    "--speed",
    default="max",
    show_default=True,
    type=Speed(),
    help="Event-time speed over real time (e.g. 3600) or max.",
)
@click.option(
    "--alerts-out", type=click.Path(dir_okay=False, path_type=Path), help="Write every alert event as JSON lines."
)
@click.option("--topic-prefix", default=None, help="Topic namespace (default: a fresh replay-<time> one).")
@click.option("--keep-topics", is_flag=True, help="Keep the replay's topics afterwards (for `bosai tail`).")
@click.option(
    "--timeout", "timeout_s", default=600.0, show_default=True, help="Seconds to wait for the pipeline to drain."
)
@click.option("--allow-dead-letters", is_flag=True, help="Do not fail when readings were dead-lettered.")
@click.option(
    "--history",
    "history_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Archive what the replay produced (enriched readings, alerts, reports, dead letters) into this archive "
    "folder, as `bosai archive` does.",
)
@click.option(
    "--running-workers",
    is_flag=True,
    help="Start no workers: feed the hub already running on --topic-prefix and wait for it to drain.",
)
@replicas_option
def replay(
    pack_dirs: tuple[Path, ...],
    regions_dir: Path | None,
    workers: int | None,
    csv_path: Path | None,
    jma_paths: tuple[Path, ...],
    since: str | None,
    until: str | None,
    speed: float | None,
    alerts_out: Path | None,
    topic_prefix: str | None,
    keep_topics: bool,
    timeout_s: float,
    allow_dead_letters: bool,
    history_dir: Path | None,
    running_workers: bool,
    replicas: int,
) -> None:
    """Replay observations (--csv) and official reports (--jma) through the hub on Kafka; report every alert."""
    from streams.hub.replay import ReplaySettings, run_replay, write_alerts
    from streams.kernel.times import parse_jst
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import default_store
    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir

    if csv_path is None and not jma_paths:
        raise click.UsageError("give --csv (readings), --jma (official reports), or both")
    since_ms = parse_jst(since, option="--from") if since else None
    until_ms = parse_jst(until, option="--to") if until else None
    packs = [load_pack(d) for d in _pack_dirs(pack_dirs, regions_dir)]
    if workers is None:
        workers = 1 if regions_dir is not None else 0
    if running_workers and not topic_prefix:
        raise click.UsageError("--running-workers needs the --topic-prefix the workers run on (e.g. bosai)")
    prefix = topic_prefix or time.strftime("replay-%Y%m%d%H%M%S")
    with broker_for_command(progress=say) as lease:
        settings = ReplaySettings(
            packs,
            catalog(),
            csv_path=csv_path,
            bootstrap=lease.bootstrap,
            prefix=prefix,
            since_ms=since_ms,
            until_ms=until_ms,
            speed=speed,
            timeout_s=timeout_s,
            log_dir=cache_dir() / "logs",
            keep_topics=keep_topics or running_workers or history_dir is not None,
            start_workers=not running_workers,
            replicas=replicas,
            workers=workers,
            jma_paths=jma_paths,
        )
        result = run_replay(settings, default_store(), say)
        if history_dir is not None:
            from streams.cli.history import archive_topics

            archive_topics(history_dir, packs, prefix, lease.bootstrap)
            if not (keep_topics or running_workers) and prefix != "bosai":
                from streams.platform.kafka_admin import delete_namespace

                asyncio.run(delete_namespace(lease.bootstrap, prefix, [p.name for p in packs]))
    if alerts_out:
        write_alerts(alerts_out, result.alerts)
    _report(result, timeout_s, allow_dead_letters)


@click.command()
@log_level_option
@click.option(
    "--region",
    "pack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack (needed with --municipality).",
)
@click.option("--municipality", help="Municipality code or name (a designated city follows all its wards).")
@click.option("--topic", "topic_names", multiple=True, help="Any topic by name (repeatable).")
@topic_prefix_option
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained message, not the newest.")
@click.option("--json", "as_json_lines", is_flag=True, help="One JSON object per message.")
@click.option("--max", "max_messages", type=int, default=None, help="Stop after this many messages.")
@click.option("--timeout", "idle_timeout_s", type=float, default=None, help="Stop after this many idle seconds.")
def tail(
    pack_dir: Path | None,
    municipality: str | None,
    topic_names: tuple[str, ...],
    topic_prefix: str | None,
    from_beginning: bool,
    as_json_lines: bool,
    max_messages: int | None,
    idle_timeout_s: float | None,
) -> None:
    """Follow a municipality's alerts (or any topic), decoded. Ctrl-C stops."""
    from streams.kernel.topics import HubTopics
    from streams.ops.tail import tail as run_tail
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    topics = list(topic_names)
    if municipality:
        if pack_dir is None:
            raise click.UsageError("--municipality needs --region")
        pack = load_pack(pack_dir)
        code = pack.find_municipality(municipality)
        if code is None:
            raise click.BadParameter(f"{municipality!r} is no municipality of {pack.name}", param_hint="--municipality")
        followed = HubTopics.for_region(catalog(topic_prefix), pack).read_by(pack, code)
        topics += followed
        say(f"following {pack.name_of(code)} ({code}): {', '.join(followed)}")
    if not topics:
        raise click.UsageError("give --municipality (with --region) or --topic")
    try:
        count = asyncio.run(
            run_tail(
                resolve_bootstrap(),
                topics,
                default_store(),
                click.echo,
                as_json_lines=as_json_lines,
                from_beginning=from_beginning,
                idle_timeout_s=idle_timeout_s,
                max_messages=max_messages,
            )
        )
    except LookupError as exc:
        raise BosaiError(str(exc)) from None
    say(f"{count} message(s)")
