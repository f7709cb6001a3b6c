"""`bosai demo`: the first command a new user runs — the real heavy rain of 2023-09-04..08 through the hub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from streams.cli.common import (
    Speed,
    catalog,
    free_ports,
    load_packs,
    log_level_option,
    pad,
    region_dirs,
    replicas_option,
    say,
)
from streams.kernel.errors import BosaiError
from streams.kernel.region import RegionPack
from streams.kernel.topics import format_plan

if TYPE_CHECKING:  # imported when called: the CLI starts fast
    from streams.hub.replay import AlertLine, ReplayResult

AMEDAS_CSV = ("data", "amedas", "tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
# JMA's 土砂災害警戒情報 for 神奈川県 of 2024-11-02 (発表 18:50 → 箱根町 joins 20:50 → 解除 23:27)
KANAGAWA_LANDSLIDE = tuple(("data", "jma", f"17_04_0{i}_250630_VXWW50.xml") for i in (1, 2, 3))
CREDITS = (
    "Data: 出典：気象庁ホームページ (JMA AMeDAS); 出典：気象庁 (気象庁防災情報XML, relayed as JMA's); "
    "「国土数値情報（行政区域データ）（国土交通省）を加工して作成」"
)


def episode_summary(alerts: Sequence[AlertLine], packs: Sequence[RegionPack]) -> list[str]:
    """One line per municipality and rule: episodes and the highest level reached."""
    names = {m.code: f"{m.city_name or ''}{m.name}" for pack in packs for m in pack.municipalities}
    ranks: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
    for alert in alerts:
        if alert["msg_type"] == "CANCEL":
            continue
        code = next((c for c in alert["municipalities"] if c in names), alert["municipalities"][0])
        episodes = ranks.setdefault((code, alert["rule"]), {})
        best = episodes.get(alert["alert_id"], (0, ""))
        if alert["level_rank"] > best[0]:
            episodes[alert["alert_id"]] = (alert["level_rank"], alert["level"])
    lines = [f"{pad('municipality', 22)}{'code':<7}{'rule':<10}{'episodes':>9}  highest level"]
    for (code, rule), episodes in sorted(ranks.items()):
        top = max(episodes.values())
        lines.append(f"{pad(names.get(code, code), 22)}{code:<7}{rule:<10}{len(episodes):>9}  {top[1]}")
    return lines


@click.command()
@log_level_option
@click.option("--from", "since", default="2023-09-04", show_default=True, help="First event time (JST).")
@click.option("--to", "until", default="2023-09-09", show_default=True, help="End of the range (JST, exclusive).")
@click.option(
    "--speed",
    default="36000",
    show_default=True,
    type=Speed(),
    help="Event-time speed over real time (36000 = 10 hours of rain a second) or max.",
)
@click.option(
    "--metrics-port",
    default=9464,
    show_default=True,
    help="First worker's Prometheus port on 127.0.0.1 (the next region gets the next free one).",
)
@click.option("--keep-broker", is_flag=True, help="Leave the broker running afterwards (stop: bosai broker down).")
@click.option(
    "--web-port",
    default=8080,
    show_default=True,
    help="The residents' map (bosai web) on 127.0.0.1 at this port or the next free one.",
)
@click.option("--no-web", is_flag=True, help="Do not start the residents' map.")
@click.option(
    "--public-host",
    default="",
    help="Start the broker with its CLIENTS listener and schema registry advertised under this name (bosai broker "
    "up --public-host), so configs from `bosai access issue` work from other machines.",
)
@click.option(
    "--official/--no-official",
    default=True,
    show_default=True,
    help="After the rain, relay JMA's 土砂災害警戒情報 of 神奈川県, 2024-11-02.",
)
@replicas_option
def demo(
    since: str,
    until: str,
    speed: float | None,
    metrics_port: int,
    keep_broker: bool,
    web_port: int,
    no_web: bool,
    public_host: str,
    official: bool,
    replicas: int,
) -> None:
    """Start the embedded broker, apply the topics, and replay the real heavy rain of 2023-09-04..08
    (Tochigi and Kanagawa, JMA AMeDAS) through the hub; print the alerts and a summary. The residents'
    map (bosai web) follows the replay live in a browser while it runs."""
    from streams.kernel.topics import expand
    from streams.platform.broker import broker_for_command
    from streams.platform.kafka_admin import apply_topics

    packs = load_packs(())
    with broker_for_command(keep=keep_broker, progress=say, public_host=public_host.strip()) as lease:
        specs = expand(catalog(), [p.topics_input() for p in packs])
        before, after = asyncio.run(apply_topics(lease.bootstrap, specs))
        click.echo(f"topics: {len(before.changes)} change(s) applied; {format_plan(after).splitlines()[-1]}")
        # On a broker this command started, the hub runs on the real topics (bosai.*); on one that was
        # already running, in a fresh namespace, so earlier state cannot hide this run's alerts.
        prefix = catalog().prefix if lease.started else time.strftime("demo-%Y%m%d%H%M%S")
        with _residents_map(None if no_web else web_port, lease.bootstrap, prefix, packs):
            result = _replay(lease.bootstrap, prefix, packs, since, until, speed, metrics_port, replicas)
            click.echo("")
            for line in episode_summary(result.alerts, packs):
                click.echo(line)
            click.echo(
                f"\n{result.readings:,} readings replayed in {result.total_s:.1f}s; {len(result.alerts)} alert "
                f"events on {prefix}.* topics; dead letters {result.dead_letters}; "
                f"drained {'yes' if result.drained else 'NO'}"
            )
            if not result.drained:
                raise BosaiError("the pipeline did not drain")
            if official:
                _official_sequence(packs, lease.bootstrap, prefix, speed)
            click.echo(CREDITS)


@contextmanager
def _residents_map(port: int | None, bootstrap: str, prefix: str, packs: Sequence[RegionPack]) -> Iterator[None]:
    """`bosai web` on the demo's topics while the block runs (its URL printed), stopped by its pid after."""
    if port is None:
        yield
        return
    from streams.kernel.topics import expand
    from streams.platform.kafka_admin import apply_topics
    from streams.platform.settings import cache_dir
    from streams.publicmap.process import WebProcess
    from streams.publicmap.server import WebSettings

    asyncio.run(apply_topics(bootstrap, expand(catalog(prefix), [p.topics_input() for p in packs])))
    settings = WebSettings(
        pack_dirs=[str(d) for d in region_dirs(())], topic_prefix=prefix, port=free_ports(port, 1)[0]
    )
    web = WebProcess(settings, bootstrap, cache_dir() / "logs" / f"web-{prefix}.log")
    web.start()
    first = "tochigi" if any(p.name == "tochigi" for p in packs) else packs[0].name
    click.echo(f"residents' map (住民向け地図): {web.url}?region={first} (pid {web.pid}; stops with the demo)")
    try:
        yield
    finally:
        web.stop()


def _replay(
    bootstrap: str,
    prefix: str,
    packs: Sequence[RegionPack],
    since: str,
    until: str,
    speed: float | None,
    metrics_port: int,
    replicas: int = 1,
) -> ReplayResult:
    from streams.hub.replay import ReplaySettings, run_replay
    from streams.kernel.times import parse_jst
    from streams.platform.avro import default_store
    from streams.platform.settings import cache_dir, project_root

    settings = ReplaySettings(
        packs,
        catalog(),
        csv_path=project_root().joinpath(*AMEDAS_CSV),
        bootstrap=bootstrap,
        prefix=prefix,
        since_ms=parse_jst(since, option="--from"),
        until_ms=parse_jst(until, option="--to"),
        speed=speed,
        timeout_s=600,
        log_dir=cache_dir() / "logs",
        keep_topics=True,
        metrics_ports=free_ports(metrics_port, len(packs)),
        live=True,
        replicas=replicas,
    )
    return run_replay(settings, default_store(), say)


def _official_sequence(packs: Sequence[RegionPack], bootstrap: str, prefix: str, speed: float | None) -> None:
    """JMA's 土砂災害警戒情報 of 神奈川県, 2024-11-02, through the same hub (a second replay on the same topics)."""
    from streams.hub.replay import ReplaySettings, iter_lines, run_replay
    from streams.platform.avro import default_store
    from streams.platform.settings import cache_dir, project_root

    kanagawa = [p for p in packs if p.name == "kanagawa"]
    if not kanagawa:
        return
    click.echo("\nOfficial information: JMA's 土砂災害警戒情報, 神奈川県, 2024-11-02 (relayed as JMA's: 出典：気象庁)")
    settings = ReplaySettings(
        kanagawa,
        catalog(),
        bootstrap=bootstrap,
        prefix=prefix,
        speed=speed,
        timeout_s=300,
        log_dir=cache_dir() / "logs",
        keep_topics=True,
        jma_paths=[project_root().joinpath(*parts) for parts in KANAGAWA_LANDSLIDE],
    )
    result = run_replay(settings, default_store(), say)
    for line in iter_lines(result.alerts):
        click.echo(line)
    towns = sorted({c for a in result.alerts for c in a["municipalities"]})
    click.echo(
        f"{result.reports} official report(s) relayed: {len(result.alerts)} alert events for "
        f"{', '.join(kanagawa[0].name_of(c) for c in towns)}; dead letters {result.dead_letters}"
    )
    if not result.drained:
        raise BosaiError("the pipeline did not drain")
