"""`bosai bench`: the benchmarks in benchmarks/ (in the checkout, not installed with the package).

``bosai bench`` finds them next to ``avro/`` and ``topics/`` in the project root (``BOSAI_HOME`` or the
checkout the package is installed from, editable) and imports them from there.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from streams.cli.common import output_and_json, results_options, say
from streams.kernel.errors import BosaiError, CheckFailed

if TYPE_CHECKING:  # imported when called: the CLI starts fast
    from streams.platform.broker import BrokerLease


def benchmark_module(name: str) -> ModuleType:
    """``benchmarks.<name>`` from the project checkout; a clear error when there is none."""
    from streams.platform.settings import project_root

    root = project_root()
    if not (root / "benchmarks" / f"{name}.py").is_file():
        raise BosaiError(
            f"no benchmarks/{name}.py under {root}: the benchmarks ship with the source checkout, "
            f"not the package (run bosai from a clone, or set BOSAI_HOME to one)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{name}")


def _require_peer() -> None:
    if importlib.util.find_spec("quixstreams") is None:
        raise BosaiError(
            "the peer of `bosai bench` is Quix Streams, which is not installed: "
            "pip install -e '.[bench]' (or make bench-deps), or leave it out with --skip-peer"
        )


@click.group(invoke_without_command=True)
@click.option(
    "--readings",
    "readings_count",
    default=300_000,
    show_default=True,
    help="Backlog size for the throughput runs (hub, ceiling, peer).",
)
@click.option("--cross-share", default=0.05, show_default=True, help="Share of readings at or above 20 mm/h.")
@click.option("--rates", default="100,1000,5000", show_default=True, help="Offered loads for the latency runs.")
@click.option("--latency-seconds", default=10.0, show_default=True, help="Duration of each latency run.")
@click.option("--scaling-readings", default=None, type=int, help="Backlog of each scaling run (default readings/5).")
@click.option("--skip-peer", is_flag=True, help="Leave out the Quix Streams peer.")
@click.option(
    "--brokers",
    default="1",
    show_default=True,
    type=click.Choice(["1", "3"]),
    help="Nodes of the embedded cluster the bench starts (ignored with KAFKA_BOOTSTRAP_SERVERS).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Every run once on small sizes (5,000 readings unless --readings, 1,000 stations, one offered load of "
    "100/s for 2 s): checks the bench runs here, in a few minutes; its figures judge nothing.",
)
@results_options("<cache>/bench-results/<time>.json")
@click.pass_context
def bench(
    ctx: click.Context,
    readings_count: int,
    cross_share: float,
    rates: str,
    latency_seconds: float,
    scaling_readings: int | None,
    skip_peer: bool,
    brokers: str,
    quick: bool,
    as_json: bool | Path | None,
    output: Path | None,
) -> None:
    """Benchmark the hub against the passthrough ceiling and a Quix Streams peer; print a table."""
    if ctx.invoked_subcommand is not None:
        return
    if quick:
        if ctx.get_parameter_source("readings_count") is not click.core.ParameterSource.COMMANDLINE:
            readings_count = 5_000
        rates, latency_seconds, scaling_readings = "100", 2.0, scaling_readings or 2_000
    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir

    if not skip_peer:
        _require_peer()
    try:
        offered = [int(r) for r in rates.split(",")]
    except ValueError:
        raise click.BadParameter(f"{rates!r}: comma-separated readings per second", param_hint="--rates") from None
    pipeline = benchmark_module("pipeline")
    with broker_for_command(
        "bench", heap="2g" if brokers == "1" else "768m", brokers=int(brokers), progress=say
    ) as lease:
        work = cache_dir() / "bench"  # synthetic packs and the processes' logs of the last run
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        say(f"logs and synthetic packs in {work}")
        results = pipeline.run(
            lease.bootstrap,
            readings_count=readings_count,
            cross_share=cross_share,
            work=work,
            progress=say,
            rates=offered,
            latency_seconds=latency_seconds,
            scaling_readings=scaling_readings or max(readings_count // 5, 20_000),
            skip_peer=skip_peer,
            brokers=int(brokers),
            quick=quick,
        )
    json_path, as_json = output_and_json(as_json, output)
    path = pipeline.save(results, json_path or cache_dir() / "bench-results" / time.strftime("%Y%m%d-%H%M%S.json"))
    show_results(pipeline.table(results), path, as_json)


def show_results(lines: Iterable[str], path: Path, as_json: bool) -> None:
    """The table (on stdout, or on stderr when --json prints the results' JSON to stdout) and where they went."""
    echo = say if as_json else click.echo
    for line in lines:
        echo(line)
    echo(f"results: {path}")
    if as_json:
        click.echo(path.read_text(encoding="utf-8"))


@bench.command("geofence")
@click.option(
    "--region",
    "pack_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack (default regions/tochigi).",
)
@click.option("--points", default=200_000, show_default=True, help="Points for the batch measurement.")
@click.option(
    "--seed", default=7, show_default=True, help="Seed of the random points (the same seed, the same points)."
)
def bench_geofence(pack_dir: Path | None, points: int, seed: int) -> None:
    """Pack load time and point look-ups per second, single and batch."""
    for line in benchmark_module("geofence").run_geofence_bench(pack_dir, points=points, seed=seed, progress=say):
        click.echo(line)


@bench.command("gateway")
@click.option("--readings", "readings_count", default=10_000, show_default=True, help="Readings in the burst.")
@click.option("--batch", default=100, show_default=True, help="Readings per POST /v1/readings.")
@click.option("--concurrency", default=8, show_default=True, help="Clients sending at once.")
@results_options("<cache>/bench-results/gateway-<time>.json")
def bench_gateway(
    readings_count: int, batch: int, concurrency: int, as_json: bool | Path | None, output: Path | None
) -> None:
    """A burst of readings in batches through `bosai gateway`: readings/s, time to 202, nothing lost."""
    import json

    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir

    module = benchmark_module("gateway")
    work = cache_dir() / "bench-gateway"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with broker_for_command("bench", heap="1g", progress=say) as lease:
        results = module.run(
            lease.bootstrap, readings=readings_count, batch=batch, concurrency=concurrency, work=work, progress=say
        )
    json_path, as_json = output_and_json(as_json, output)
    path = json_path or cache_dir() / "bench-results" / time.strftime("gateway-%Y%m%d-%H%M%S.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    show_results(module.table(results), path, as_json)
    if results["lost"] or results["dead_letters"] or set(results["answers"]) != {"202"}:
        raise BosaiError("readings were lost or refused in the burst (see above)")


@bench.command("web")
@click.option(
    "--clients",
    default="1000,2500,5000,8000,12000,16000",
    show_default=True,
    help="Live clients per step (comma-separated); a step of 20 probes alone runs first as the baseline.",
)
@click.option(
    "--rate", default=10.0, show_default=True, help="Public alerts raised per second (each cancelled 2 s later)."
)
@click.option("--seconds", default=15.0, show_default=True, help="How long alerts flow in each step.")
@results_options("<cache>/bench-results/web-<time>.json")
def bench_web(clients: str, rate: float, seconds: float, as_json: bool | Path | None, output: Path | None) -> None:
    """Live clients one `bosai web` process holds with alerts flowing, and alert-to-page latency."""
    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir

    try:
        steps = [int(n) for n in clients.split(",")]
    except ValueError:
        raise click.BadParameter(f"{clients!r}: comma-separated numbers", param_hint="--clients") from None
    web_bench = benchmark_module("web")
    with broker_for_command("bench", progress=say) as lease:
        work = cache_dir() / "bench-web"
        work.mkdir(parents=True, exist_ok=True)
        results = web_bench.run(lease.bootstrap, steps=steps, rate=rate, seconds=seconds, work=work, progress=say)
    json_path, as_json = output_and_json(as_json, output)
    path = web_bench.save(results, json_path or cache_dir() / "bench-results" / time.strftime("web-%Y%m%d-%H%M%S.json"))
    show_results(web_bench.table(results), path, as_json)


@bench.command("history")
@click.option("--days", default=365, show_default=True, type=click.IntRange(2), help="Days of the station-year.")
@click.option("--repeat", default=50, show_default=True, type=click.IntRange(1), help="Runs of each query.")
@click.option(
    "--with-hub",
    is_flag=True,
    help="Also replay real readings through the hub alone, then the archiver over them (starts a broker).",
)
@click.option("--to", "until", default="2023-09-13", show_default=True, help="End of the replay (JST, exclusive).")
@results_options("<cache>/bench-results/history-<time>.json")
def bench_history(
    days: int, repeat: int, with_hub: bool, until: str, as_json: bool | Path | None, output: Path | None
) -> None:
    """The archive: bytes per reading of a station-year, query p50/p99, and the archiver against the hub alone."""
    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir, project_root

    module = benchmark_module("history")
    work = cache_dir() / "bench-history"
    work.mkdir(parents=True, exist_ok=True)
    if with_hub:
        with broker_for_command("bench", heap="1g", progress=say) as lease:
            results = module.run(
                project_root(), work, days=days, repeat=repeat, bootstrap=lease.bootstrap, until=until, progress=say
            )
    else:
        results = module.run(project_root(), work, days=days, repeat=repeat, bootstrap=None, until=until, progress=say)
    json_path, as_json = output_and_json(as_json, output)
    path = module.save(
        results, json_path or cache_dir() / "bench-results" / time.strftime("history-%Y%m%d-%H%M%S.json")
    )
    show_results(module.table(results), path, as_json)


@bench.command("soak")
@click.option("--minutes", default=30.0, show_default=True, type=float, help="How long the input loops.")
@click.option(
    "--speed",
    default=7200.0,
    show_default=True,
    type=float,
    help="Event seconds per real second: 7200 = the 5-day demo window (every station hourly) in a minute.",
)
@click.option("--sample-seconds", default=5.0, show_default=True, type=float, help="Sampling interval.")
@click.option("--hardened", is_flag=True, help="On a hardened broker (no PLAINTEXT; the hub as User:hub).")
@results_options("<cache>/bench-results/soak-<time>.json")
def bench_soak(
    minutes: float,
    speed: float,
    sample_seconds: float,
    hardened: bool,
    as_json: bool | Path | None,
    output: Path | None,
) -> None:
    """The demo's data in a loop through workers, feed, map and sink, with readers attached: memory, descriptors,
    threads of every process and consumer lag over time, and a verdict (exit 1 when a bound is broken)."""
    from streams.cli.common import region_dirs
    from streams.platform.broker import broker_for_command
    from streams.platform.settings import cache_dir

    soak_module, report = benchmark_module("soak"), benchmark_module("soak_report")
    work = cache_dir() / "bench-soak"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with broker_for_command("soak", heap="1g", fixed_heap=True, hardened=hardened, progress=say) as lease:
        soak = soak_module.Soak(work=work, **_soak_cluster(lease))
        result = soak_module.run(
            soak, region_dirs(()), minutes=minutes, speed=speed, sample_s=sample_seconds, progress=say
        )
    per_loop = max((e.get("messages", 0) for e in soak.events if e["event"] == "loop_start"), default=0)
    figures = report.process_figures(soak)
    lag = report.lag_figures(soak, per_loop / max(1e-9, result["loop_s"]) * sample_seconds)
    checks = report.verdict(soak, result, figures, lag)
    json_path, as_json = output_and_json(as_json, output)
    path = report.save(
        json_path or cache_dir() / "bench-results" / time.strftime("soak-%Y%m%d-%H%M%S.json"),
        soak,
        result,
        figures,
        lag,
        checks,
    )
    lines = [*report.table(soak, figures), "", *(f"{'ok  ' if ok else 'FAIL'} {text}" for ok, text in checks)]
    show_results(lines, path, as_json)
    if not all(ok for ok, _ in checks):
        raise CheckFailed(f"soak: {sum(not ok for ok, _ in checks)} bound(s) broken (see above)")


def _soak_cluster(lease: BrokerLease) -> dict[str, Any]:
    """The soak's view of the cluster: hub and admin addresses, the feed's login listener, the JVMs to watch."""
    from streams.platform.broker import resolve_clients_listener

    state = lease.broker.state() if lease.broker is not None else None
    if state is None:  # an external cluster: its JVMs are not ours to sample
        return {
            "bootstrap": lease.bootstrap,
            "admin_bootstrap": lease.bootstrap,
            "clients": resolve_clients_listener(),
            "broker_pids": {},
        }
    nodes = {(f"broker-{n.id}" if len(state.nodes) > 1 else "broker"): n.pid for n in state.nodes}
    return {
        "bootstrap": state.bootstrap,
        "admin_bootstrap": state.admin_address,
        "clients": (state.clients_bootstrap, Path(state.ca_file)),
        "broker_pids": nodes,
    }
