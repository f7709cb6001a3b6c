"""`bosai` — the operator's command (防災, disaster prevention).

Every subcommand is thin: it parses options, calls the module that does the work, and prints. Errors
an operator can act on (BosaiError) are printed as one clear message with exit status 2.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from pathlib import Path

import click

from streams import __version__
from streams.catalog import apply_topics, format_plan, plan_topics
from streams.errors import BosaiError


def _say(message: str) -> None:
    click.echo(message, err=True)


def _region_dirs(regions: tuple[Path, ...]) -> list[Path]:
    from streams.regions import default_pack_dirs

    return list(regions) if regions else default_pack_dirs()


region_option = click.option(
    "--region", "regions", multiple=True, type=click.Path(path_type=Path, file_okay=False),
    help="Region pack folder (repeatable). Default: every pack under regions/.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bosai")
def cli() -> None:
    """Real-time disaster-data hub for a prefecture and its municipalities."""


# -- broker -------------------------------------------------------------------------------------

@cli.group()
def broker() -> None:
    """The embedded single-node Kafka (KRaft). Ignored when KAFKA_BOOTSTRAP_SERVERS is set."""


@broker.command("up")
@click.option("--name", default="default", show_default=True, help="Broker instance name.")
@click.option("--heap", default="1g", show_default=True, help="JVM heap (-Xmx).")
def broker_up(name: str, heap: str) -> None:
    """Resolve the pinned Kafka with Maven, format KRaft storage, start, wait until it answers."""
    from streams.broker import EmbeddedBroker, probe
    from streams.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        brokers = probe(external)
        if brokers is None:
            raise BosaiError(f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer metadata requests")
        click.echo(f"using KAFKA_BOOTSTRAP_SERVERS={external} ({brokers} broker(s)); nothing started")
        return
    state = EmbeddedBroker(name).up(progress=_say, heap=heap)
    click.echo(f"broker '{name}' up: bootstrap {state.bootstrap}, Kafka {state.kafka_version}, pid {state.pid}")
    click.echo(f"authenticated listener (SASL_SSL, SCRAM-SHA-512): {state.clients_bootstrap}, CA {state.ca_file}")


@broker.command("down")
@click.option("--name", default="default", show_default=True)
@click.option("--keep-data", is_flag=True, help="Keep the data directory (topics survive the next `up`).")
def broker_down(name: str, keep_data: bool) -> None:
    """Stop the embedded broker by its pid; remove its data unless --keep-data."""
    from streams.broker import EmbeddedBroker

    was_running = EmbeddedBroker(name).down(keep_data=keep_data, progress=_say)
    click.echo(f"broker '{name}' stopped" if was_running else f"broker '{name}' was not running")


@broker.command("status")
@click.option("--name", default="default", show_default=True)
def broker_status(name: str) -> None:
    """Is the broker up and answering? Exit 0 if so, 1 if not."""
    from streams.broker import EmbeddedBroker, probe
    from streams.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        brokers = probe(external)
        click.echo(f"external cluster {external}: " + (f"up, {brokers} broker(s)" if brokers else "NOT answering"))
        sys.exit(0 if brokers else 1)
    embedded = EmbeddedBroker(name)
    state = embedded.state()
    if state is None:
        click.echo(f"broker '{name}': not running")
        sys.exit(1)
    brokers = probe(state.bootstrap)
    uptime = time.time() - state.started_at
    click.echo(f"broker '{name}': {'up' if brokers else 'process alive but NOT answering'}, "
               f"bootstrap {state.bootstrap}, Kafka {state.kafka_version}, pid {state.pid}, "
               f"up {uptime:.0f}s, data {embedded.data_dir}")
    click.echo(f"authenticated listener (SASL_SSL, SCRAM-SHA-512): {state.clients_bootstrap}, CA {state.ca_file}")
    sys.exit(0 if brokers else 1)


# -- topics -------------------------------------------------------------------------------------

def _topic_specs(regions: tuple[Path, ...]):
    from streams.catalog import default_catalog_path, expand, load_catalog
    from streams.regions import load_pack

    catalog = load_catalog(default_catalog_path())
    packs = [load_pack(d) for d in _region_dirs(regions)]
    return expand(catalog, [p.topics_input() for p in packs])


@cli.group()
def topics() -> None:
    """The topic catalog (topics/catalog.yaml): plan and apply."""


@topics.command("plan")
@region_option
def topics_plan(regions: tuple[Path, ...]) -> None:
    """Show what `apply` would change. Exit 0 when nothing would."""
    from streams.broker import resolve_bootstrap

    specs = _topic_specs(regions)
    result = asyncio.run(plan_topics(resolve_bootstrap(), specs))
    click.echo(format_plan(result))


@topics.command("apply")
@region_option
def topics_apply(regions: tuple[Path, ...]) -> None:
    """Create missing topics, add partitions, set configs. Idempotent."""
    from streams.broker import resolve_bootstrap

    specs = _topic_specs(regions)
    before, after = asyncio.run(apply_topics(resolve_bootstrap(), specs))
    click.echo(format_plan(before))
    if after.changes:
        raise BosaiError("after apply the cluster still differs from the catalog:\n" + format_plan(after))
    click.echo(f"applied: {len(before.changes)} change(s); the cluster now matches the catalog ({after.topics} topics)")


@topics.command("list")
@region_option
def topics_list(regions: tuple[Path, ...]) -> None:
    """Every topic the catalog declares for the regions (no cluster needed)."""
    for spec in _topic_specs(regions):
        click.echo(f"{spec.name}\tpartitions={spec.partitions}\tvalue={spec.value_schema}")


@cli.group()
def tls() -> None:
    """The local CA and the broker certificate of the authenticated listener."""


@tls.command("init")
@click.option("--dir", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Where to write ca.pem, ca.key (kept if present) and broker.pem.")
@click.option("--hostname", "hostnames", multiple=True, default=("localhost",), show_default=True,
              help="DNS name clients use to reach the broker (repeatable).")
@click.option("--ip", "ips", multiple=True, default=("127.0.0.1",), show_default=True)
def tls_init(out_dir: Path, hostnames: tuple[str, ...], ips: tuple[str, ...]) -> None:
    """For a cluster the hub does not start itself (e.g. docker-compose): make the CA and broker.pem."""
    from streams import tls as tls_material

    ca = tls_material.ensure_ca(out_dir)
    keystore = tls_material.issue_server_certificate(ca, out_dir / "broker.pem", hostnames=hostnames, ips=ips)
    click.echo(f"CA {ca.cert_file} (give it to clients); broker key+certificate {keystore} "
               f"for {', '.join(hostnames + ips)}")


# -- access -------------------------------------------------------------------------------------

@cli.group()
def access() -> None:
    """Who may read and write what on the authenticated listener (topics/access.yaml)."""


@access.command("generate")
@region_option
@click.option("--check", is_flag=True, help="Exit 1 if topics/access.yaml differs from what the packs generate.")
def access_generate(regions: tuple[Path, ...], check: bool) -> None:
    """Write topics/access.yaml from the region packs and the topic catalog."""
    from streams.access import default_access_path, generate, render
    from streams.catalog import default_catalog_path, load_catalog
    from streams.regions import load_pack

    packs = [load_pack(d) for d in _region_dirs(regions)]
    text = render(generate(packs, load_catalog(default_catalog_path())))
    path = default_access_path()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            click.echo(f"{path} is out of date: run `bosai access generate`")
            sys.exit(1)
        click.echo(f"{path} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


def _policy():
    from streams.access import default_access_path, load_access

    return load_access(default_access_path())


@access.command("plan")
def access_plan() -> None:
    """Show how the cluster's ACLs differ from topics/access.yaml. Exit 0 when they do not."""
    from streams.access import format_plan, plan_access
    from streams.broker import resolve_bootstrap

    click.echo(format_plan(asyncio.run(plan_access(resolve_bootstrap(), _policy()))))


@access.command("apply")
def access_apply() -> None:
    """Add the missing ACLs and remove the undeclared ones. Idempotent."""
    from streams.access import apply_access, format_plan
    from streams.broker import resolve_bootstrap

    before, after = asyncio.run(apply_access(resolve_bootstrap(), _policy()))
    click.echo(format_plan(before))
    if after.changes:
        raise BosaiError("after apply the cluster's ACLs still differ:\n" + format_plan(after))
    click.echo(f"applied: {len(before.add)} added, {len(before.remove)} removed")


@access.command("issue")
@click.argument("who")
@region_option
@click.option("--format", "fmt", type=click.Choice(["properties", "json"]), default="properties", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the client config to this file (mode 0600) instead of stdout.")
def access_issue(who: str, regions: tuple[Path, ...], fmt: str, output: Path | None) -> None:
    """Create or rotate WHO's credential (principal, JIS code or municipality name); print its client config.

    The password is shown once, here, and never logged; issuing again rotates it (the old one stops working).
    """
    import os

    from streams.access import client_config, find_principal, issue_credential, render_client_properties
    from streams.broker import resolve_bootstrap, resolve_clients_listener
    from streams.regions import load_pack

    policy = _policy()
    principal = find_principal(policy, who, [load_pack(d) for d in _region_dirs(regions)])
    clients_bootstrap, ca_file = resolve_clients_listener()
    password = asyncio.run(issue_credential(resolve_bootstrap(), principal))
    config = client_config(principal, password, clients_bootstrap=clients_bootstrap, ca_file=ca_file)
    text = json.dumps(config, ensure_ascii=False, indent=2) + "\n" if fmt == "json" \
        else render_client_properties(config, principal)
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        _say(f"credential for {principal.name} written to {output} (mode 0600)")
    else:
        click.echo(text, nl=False)
    _say(f"issued a SCRAM-SHA-512 credential for {principal.name}; it may read: "
         f"{', '.join(principal.readable_topics()) or 'nothing'}")


@access.command("revoke")
@click.argument("who")
@region_option
def access_revoke(who: str, regions: tuple[Path, ...]) -> None:
    """Remove WHO's credential: new connections fail at once, open ones at their next re-authentication."""
    from streams.access import find_principal, revoke_credential
    from streams.broker import resolve_bootstrap
    from streams.regions import load_pack

    policy = _policy()
    try:
        name = find_principal(policy, who, [load_pack(d) for d in _region_dirs(regions)]).name
    except BosaiError:
        name = who  # a credential the file no longer declares can still be revoked by its user name
    removed = asyncio.run(revoke_credential(resolve_bootstrap(), name))
    click.echo(f"revoked the credential of {name}" if removed else f"{name} had no credential; nothing to revoke")


# -- regions ------------------------------------------------------------------------------------

@cli.group()
def region() -> None:
    """Region packs: build one from MLIT N03 data, or check one."""


@region.command("init")
@click.option("--name", required=True, help="Pack name (lower case; it goes into topic names).")
@click.option("--n03", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="MLIT N03 boundaries of one prefecture, GeoJSON.")
@click.option("--stations", "stations_csv", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Station list CSV (station_id, name_ja, name_en, lat, lon[, kind, alt_m]); AMeDAS format is fine.")
@click.option("--zones", "zone_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Hazard-zone GeoJSON (repeatable); give --zone-kind and --zone-id for each.")
@click.option("--zone-kind", "zone_kinds", multiple=True, help="Kind of each --zones file, e.g. flood_inundation.")
@click.option("--zone-id", "zone_ids", multiple=True, help="Id template of each --zones file, e.g. 'lsld-{A33_004}'.")
@click.option("--nearest-max-distance-m", default=5000.0, show_default=True,
              help="Reach of the nearest-municipality fallback.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Pack folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def region_init(name, n03, stations_csv, zone_files, zone_kinds, zone_ids, nearest_max_distance_m, out, force) -> None:
    """Build a valid region pack from an N03 GeoJSON and a station list (default JMA rules)."""
    from streams.regions import init_pack

    if not (len(zone_files) == len(zone_kinds) == len(zone_ids)):
        raise click.UsageError("give one --zone-kind and one --zone-id per --zones file")
    pack = init_pack(name, n03, stations_csv, out, zones=list(zip(zone_files, zone_kinds, zone_ids)),
                     nearest_max_distance_m=nearest_max_distance_m, force=force)
    click.echo(f"wrote {out}: {len(pack.municipalities)} municipalities, {len(pack.stations)} stations, "
               f"{len(pack.zones)} hazard zones, {len(pack.rules.rules)} rules (prefecture {pack.prefecture_code})")


@region.command("check")
@click.argument("pack_dir", type=click.Path(file_okay=False, path_type=Path))
def region_check(pack_dir: Path) -> None:
    """Validate a pack and summarise it."""
    from streams.regions import load_pack

    started = time.perf_counter()
    pack = load_pack(pack_dir)
    nearest = sum(1 for s in pack.stations.values()
                  if pack.index.locate(s.lat, s.lon).method == "nearest")
    click.echo(f"{pack_dir}: valid — {pack.name} ({pack.prefecture_name}, {pack.prefecture_code}): "
               f"{len(pack.municipalities)} municipalities, {len(pack.designated_cities)} designated cities, "
               f"{len(pack.stations)} stations ({nearest} by nearest fallback), {len(pack.zones)} hazard zones, "
               f"rules {', '.join(pack.rules.ids)}; loaded in {time.perf_counter() - started:.2f}s")


@cli.command()
@click.option("--region", "pack_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--lat", required=True, type=float, help="Latitude, WGS84 degrees.")
@click.option("--lon", required=True, type=float, help="Longitude, WGS84 degrees.")
@click.option("--max-distance-m", type=float, default=None,
              help="Reach of the nearest fallback (default: the pack's geofence setting; 0 = off).")
def locate(pack_dir: Path, lat: float, lon: float, max_distance_m: float | None) -> None:
    """Which municipality and hazard zones a point is in; one JSON object."""
    from streams.regions import load_pack

    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise click.BadParameter(f"({lat}, {lon}) is not a WGS84 position", param_hint="--lat/--lon")
    if max_distance_m is not None and max_distance_m < 0:
        raise click.BadParameter("must be >= 0", param_hint="--max-distance-m")
    pack = load_pack(pack_dir)
    location = pack.index.locate(lat, lon, nearest_max_distance_m=max_distance_m)
    answer = location.as_dict()
    if answer["distance_m"] != answer["distance_m"]:  # NaN: nothing within reach
        answer["distance_m"] = None
    click.echo(json.dumps(answer, ensure_ascii=False))


# -- the hub ------------------------------------------------------------------------------------

def _catalog_with_prefix(prefix: str | None):
    from dataclasses import replace

    from streams.catalog import default_catalog_path, load_catalog

    catalog = load_catalog(default_catalog_path())
    return replace(catalog, prefix=prefix) if prefix else catalog


@cli.command()
@click.option("--region", "pack_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--topic-prefix", default=None, help="Topic namespace (default: the catalog's prefix, bosai).")
@click.option("--metrics-port", default=None, type=int, help="Serve Prometheus metrics on PORT (0 = any).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics endpoint binds.")
@click.option("--batch-max", default=2000, show_default=True, help="Most readings per processing batch.")
@click.option("--loglevel", default="warn", show_default=True, type=click.Choice(["crit", "error", "warn", "info", "debug"]))
def worker(pack_dir: Path, topic_prefix: str | None, metrics_port: int | None, metrics_host: str, batch_max: int,
           loglevel: str) -> None:
    """Run the hub for one region: consume raw readings, emit enriched readings, alerts, dead letters."""
    from streams import metrics
    from streams.app import HubWorker, create_app, settle_heap
    from streams.broker import probe, resolve_bootstrap
    from streams.codec import default_store
    from streams.regions import load_pack

    pack = load_pack(pack_dir)
    catalog = _catalog_with_prefix(topic_prefix)
    bootstrap = resolve_bootstrap()
    brokers = probe(bootstrap) or 1
    app = create_app(pack, catalog, default_store(), bootstrap=bootstrap, prefix=catalog.prefix,
                     replication_factor=min(catalog.replication_factor, brokers), batch_max=batch_max)
    if metrics_port is not None:
        port = metrics.serve(metrics_port, metrics_host)
        _say(f"metrics on http://{metrics_host}:{port}/metrics")
    _say(f"hub worker for {pack.name}: app {app.conf.id}, broker {bootstrap}")
    settle_heap()
    HubWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


@cli.command()
@click.option("--region", "pack_dirs", multiple=True, required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Region pack (repeatable; each gets its own worker).")
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="AMeDAS-format CSV or CSV.gz.")
@click.option("--from", "since", default=None, help="First event time, JST (e.g. 2023-09-04).")
@click.option("--to", "until", default=None, help="End of the range (exclusive), JST.")
@click.option("--speed", default="max", show_default=True, help="Event-time speed over real time (e.g. 3600) or max.")
@click.option("--alerts-out", type=click.Path(dir_okay=False, path_type=Path), help="Write every alert event as JSON lines.")
@click.option("--topic-prefix", default=None, help="Topic namespace (default: a fresh replay-<time> one).")
@click.option("--keep-topics", is_flag=True, help="Keep the replay's topics afterwards (for `bosai tail`).")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True, help="Seconds to wait for the pipeline to drain.")
@click.option("--allow-dead-letters", is_flag=True, help="Do not fail when readings were dead-lettered.")
@click.option("--running-workers", is_flag=True,
              help="Start no workers: feed the hub already running on --topic-prefix and wait for it to drain.")
def replay(pack_dirs, csv_path, since, until, speed, alerts_out, topic_prefix, keep_topics, timeout_s,
           allow_dead_letters, running_workers) -> None:
    """Replay observations through the hub on Kafka and report every alert it emitted."""
    from collections import Counter

    from streams.broker import EmbeddedBroker, resolve_bootstrap
    from streams.codec import default_store
    from streams.regions import load_pack
    from streams.replay import iter_lines, parse_jst, run_replay, write_alerts
    from streams.settings import cache_dir, external_bootstrap

    if speed != "max":
        try:
            pace = float(speed)
        except ValueError:
            raise click.BadParameter("a number (event seconds per real second) or max", param_hint="--speed")
        if pace <= 0:
            raise click.BadParameter("must be > 0", param_hint="--speed")
    else:
        pace = None
    since_ms = parse_jst(since, option="--from") if since else None
    until_ms = parse_jst(until, option="--to") if until else None
    packs = [load_pack(d) for d in pack_dirs]
    if running_workers and not topic_prefix:
        raise click.UsageError("--running-workers needs the --topic-prefix the workers run on (e.g. bosai)")
    prefix = topic_prefix or time.strftime("replay-%Y%m%d%H%M%S")
    started_broker = None
    if not external_bootstrap() and EmbeddedBroker("default").state() is None:
        started_broker = EmbeddedBroker("default")
        started_broker.up(progress=_say)
    try:
        result = run_replay(packs, _catalog_with_prefix(None), default_store(), csv_path,
                            bootstrap=resolve_bootstrap(), prefix=prefix, since_ms=since_ms, until_ms=until_ms,
                            speed=pace, timeout_s=timeout_s, log_dir=cache_dir() / "logs", progress=_say,
                            keep_topics=keep_topics or running_workers, start_workers=not running_workers)
    finally:
        if started_broker:
            started_broker.down(progress=_say)
    if alerts_out:
        write_alerts(alerts_out, result.alerts)
    for line in iter_lines(result.alerts):
        click.echo(line)
    counts = Counter((a["rule"], a["level"]) for a in result.alerts if a["msg_type"] == "ALERT")
    click.echo(f"replayed {result.readings:,} readings in {result.total_s:.1f}s (produce {result.produce_s:.1f}s, "
               f"drain {result.drain_s:.1f}s); {len(result.alerts)} alert events; dead letters {result.dead_letters}")
    for (rule, level), n in sorted(counts.items()):
        click.echo(f"  raised {rule}/{level}: {n}")
    if not result.drained:
        raise BosaiError(f"the pipeline did not drain within {timeout_s:.0f}s")
    if result.dead_letters and not allow_dead_letters:
        raise BosaiError(f"{result.dead_letters} reading(s) were dead-lettered (use --keep-topics and "
                         f"`bosai tail` on the deadletter topic to see why)")


@cli.command()
@click.option("--region", "pack_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Region pack (needed with --municipality).")
@click.option("--municipality", help="Municipality code or name (a designated city follows all its wards).")
@click.option("--topic", "topic_names", multiple=True, help="Any topic by name (repeatable).")
@click.option("--topic-prefix", default=None, help="Topic namespace (default: bosai).")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained message, not the newest.")
@click.option("--json", "as_json_lines", is_flag=True, help="One JSON object per message.")
@click.option("--max", "max_messages", type=int, default=None, help="Stop after this many messages.")
@click.option("--timeout", "idle_timeout_s", type=float, default=None, help="Stop after this many idle seconds.")
def tail(pack_dir, municipality, topic_names, topic_prefix, from_beginning, as_json_lines, max_messages,
         idle_timeout_s) -> None:
    """Follow a municipality's alerts (or any topic), decoded. Ctrl-C stops."""
    from streams.broker import resolve_bootstrap
    from streams.codec import default_store
    from streams.pipeline import HubTopics
    from streams.regions import load_pack
    from streams.tail import tail as run_tail

    topics = list(topic_names)
    if municipality:
        if pack_dir is None:
            raise click.UsageError("--municipality needs --region")
        pack = load_pack(pack_dir)
        code = pack.find_municipality(municipality)
        if code is None:
            raise click.BadParameter(f"{municipality!r} is no municipality of {pack.name}", param_hint="--municipality")
        hub_topics = HubTopics.for_region(_catalog_with_prefix(topic_prefix), pack)
        codes = pack.wards_of(code) if code in pack.designated_cities else (code,)
        topics += [hub_topics.municipal[c] for c in codes]
        _say(f"following {pack.name_of(code)} ({code}): {', '.join(hub_topics.municipal[c] for c in codes)}")
    if not topics:
        raise click.UsageError("give --municipality (with --region) or --topic")
    try:
        count = asyncio.run(run_tail(resolve_bootstrap(), topics, default_store(), click.echo,
                                     as_json_lines=as_json_lines, from_beginning=from_beginning,
                                     idle_timeout_s=idle_timeout_s, max_messages=max_messages))
    except LookupError as exc:
        raise BosaiError(str(exc)) from None
    _say(f"{count} message(s)")


@cli.command()
@click.option("--check", is_flag=True, help="Exit 1 if deploy/grafana/dashboards differs from what is generated.")
def dashboards(check: bool) -> None:
    """Generate the Grafana dashboards (grafana-foundation-sdk) into deploy/grafana/dashboards/."""
    from streams.dashboards import dashboards_dir, render

    folder = dashboards_dir()
    rendered = render()
    stale = [name for name, text in rendered.items()
             if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text]
    if check:
        if stale:
            raise BosaiError(f"out of date in {folder}: {', '.join(stale)} (run `bosai dashboards`)")
        click.echo(f"{len(rendered)} dashboards up to date")
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (folder / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(rendered)} dashboards to {folder} ({len(stale)} changed)")


# -- feed and sinks -----------------------------------------------------------------------------

def _cap_renderer(packs):
    from streams import cap

    names = {p.name: f"{p.prefecture_name} 防災データ連携基盤" for p in packs}
    polygons = {p.name: cap.zone_polygons_of(p) for p in packs}
    return names, polygons, lambda alert: cap.render(alert, sender_name=names.get(alert["region"], ""),
                                                     zone_polygons=polygons.get(alert["region"]))


@cli.command()
@region_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8088, show_default=True, type=int)
@click.option("--topic-prefix", default=None, help="Topic prefix (default: the catalog's).")
@click.option("--auth-cache", default=30.0, show_default=True, type=float,
              help="Seconds a verified credential is trusted before the broker is asked again.")
def feed(regions, host, port, topic_prefix, auth_cache) -> None:
    """Serve Atom feeds of current CAP 1.2 messages (per municipality, prefecture, public) behind credentials."""
    from aiohttp import web

    from streams.broker import resolve_bootstrap, resolve_clients_listener
    from streams.catalog import topic_name
    from streams.codec import default_store
    from streams.feed import CurrentAlerts
    from streams.feed_server import CredentialChecker, build_app, follow_alerts
    from streams.regions import load_pack

    packs = [load_pack(d) for d in _region_dirs(regions)]
    catalog = _catalog_with_prefix(topic_prefix)
    policy = _policy()
    clients_bootstrap, ca_file = resolve_clients_listener()
    names, polygons, _render = _cap_renderer(packs)
    bootstrap = resolve_bootstrap()
    topics = [topic_name(catalog, "alerts", p.name, prefecture_code=p.prefecture_code) for p in packs]

    async def serve() -> None:
        alerts = CurrentAlerts()
        ready = asyncio.Event()
        follower = asyncio.create_task(follow_alerts(bootstrap, topics, alerts, default_store(), ready))
        app = build_app(alerts, policy, CredentialChecker(clients_bootstrap, ca_file, cache_s=auth_cache),
                        sender_names=names, zone_polygons=polygons)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        await ready.wait()
        _say(f"feed: http://{host}:{port}/feeds/… ({len(alerts.latest)} alert episodes loaded from "
             f"{', '.join(topics)}); Ctrl-C stops")
        try:
            await follower
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        _say("feed stopped")


@cli.group()
def sink() -> None:
    """Webhook deliveries of each municipality's alert events (subscriptions in a config file)."""


def _routes(config: Path, regions, topic_prefix):
    from streams.regions import load_pack
    from streams.sink import routes_for
    from streams.webhooks import load_subscriptions

    packs = [load_pack(d) for d in _region_dirs(regions)]
    return packs, routes_for(load_subscriptions(config, packs), packs, _catalog_with_prefix(topic_prefix))


@sink.command("run")
@click.option("--config", "config", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Subscriptions file (see deploy/subscriptions.example.yaml).")
@region_option
@click.option("--topic-prefix", default=None, help="Topic prefix (default: the catalog's).")
@click.option("--metrics-port", default=None, type=int, help="Serve /metrics on this port (0 = any free port).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def sink_run(config, regions, topic_prefix, metrics_port, metrics_host) -> None:
    """Deliver until Ctrl-C: one consumer group per subscription, retries with backoff, dead letters."""
    import signal

    from streams import metrics
    from streams.broker import resolve_bootstrap
    from streams.codec import default_store
    from streams.sink import run_sink

    packs, routes = _routes(config, regions, topic_prefix)
    _names, _polygons, render_cap = _cap_renderer(packs)
    if metrics_port is not None:
        _say(f"metrics on http://{metrics_host}:{metrics.serve(metrics_port, metrics_host)}/metrics")

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_sink(routes, resolve_bootstrap(), default_store(), render_cap, stop, progress=_say)

    asyncio.run(main())
    _say("sink stopped")


@sink.command("redrive")
@click.option("--config", "config", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--subscription", "only", multiple=True, help="Only these subscription ids (default: all).")
@region_option
@click.option("--topic-prefix", default=None, help="Topic prefix (default: the catalog's).")
def sink_redrive(config, only, regions, topic_prefix) -> None:
    """Re-deliver what is in the sink dead-letter topic now; what fails again goes back there."""
    from streams.broker import resolve_bootstrap
    from streams.codec import default_store
    from streams.sink import redrive

    packs, routes = _routes(config, regions, topic_prefix)
    _names, _polygons, render_cap = _cap_renderer(packs)
    unknown = set(only) - {r.subscription.id for r in routes}
    if unknown:
        raise BosaiError(f"{config}: no subscription {', '.join(sorted(unknown))}")
    failed = 0
    for route in routes:
        if only and route.subscription.id not in only:
            continue
        _delivered, again = asyncio.run(redrive(route, resolve_bootstrap(), default_store(), render_cap, progress=_say))
        failed += again
    sys.exit(1 if failed else 0)


# -- bench --------------------------------------------------------------------------------------

@cli.group(invoke_without_command=True)
@click.option("--readings", "readings_count", default=1_000_000, show_default=True,
              help="Backlog size for the throughput runs (hub, ceiling, peer).")
@click.option("--cross-share", default=0.05, show_default=True, help="Share of readings at or above 20 mm/h.")
@click.option("--rates", default="100,1000,5000", show_default=True, help="Offered loads for the latency runs.")
@click.option("--latency-seconds", default=10.0, show_default=True, help="Duration of each latency run.")
@click.option("--scaling-readings", default=None, type=int, help="Backlog of each scaling run (default readings/5).")
@click.option("--skip-peer", is_flag=True, help="Leave out the Quix Streams peer.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results here (default bench/results/<time>.json).")
@click.pass_context
def bench(ctx, readings_count, cross_share, rates, latency_seconds, scaling_readings, skip_peer, json_path) -> None:
    """Benchmark the hub against the passthrough ceiling and a Quix Streams peer; print a table."""
    if ctx.invoked_subcommand is not None:
        return
    import shutil

    from bench.pipeline import run, save, table
    from streams.broker import EmbeddedBroker
    from streams.settings import cache_dir, external_bootstrap, project_root

    started_broker = None
    if external_bootstrap():
        bootstrap = external_bootstrap()
    else:
        started_broker = EmbeddedBroker("bench")
        bootstrap = started_broker.up(progress=_say, heap="2g").bootstrap
    try:
        work = cache_dir() / "bench"  # synthetic packs and the processes' logs of the last run
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _say(f"logs and synthetic packs in {work}")
        results = run(bootstrap, readings_count=readings_count, cross_share=cross_share, work=work,
                      progress=_say, rates=[int(r) for r in rates.split(",")], latency_seconds=latency_seconds,
                      scaling_readings=scaling_readings or max(readings_count // 5, 20_000), skip_peer=skip_peer)
    finally:
        if started_broker:
            started_broker.down(progress=_say)
    path = save(results, json_path or project_root() / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S.json"))
    for line in table(results):
        click.echo(line)
    click.echo(f"results: {path}")


@bench.command("geofence")
@click.option("--region", "pack_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Region pack (default regions/tochigi).")
@click.option("--points", default=200_000, show_default=True, help="Points for the batch measurement.")
@click.option("--seed", default=7, show_default=True)
def bench_geofence(pack_dir: Path | None, points: int, seed: int) -> None:
    """Pack load time and point look-ups per second, single and batch."""
    from bench.geofence import run_geofence_bench

    for line in run_geofence_bench(pack_dir, points=points, seed=seed, progress=_say):
        click.echo(line)


# -- demo ---------------------------------------------------------------------------------------

def _free_ports(first: int, count: int) -> list[int]:
    """`count` free TCP ports on 127.0.0.1, from `first` upwards where possible."""
    import socket

    ports: list[int] = []
    candidate = first
    while len(ports) < count and candidate < first + 200:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
                ports.append(candidate)
            except OSError:
                pass
        candidate += 1
    return ports


def _pad(text: str, width: int) -> str:
    """Left-align text in a terminal column, counting East Asian wide characters as two."""
    import unicodedata

    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def episode_summary(alerts, packs) -> list[str]:
    """One line per municipality and rule: episodes and the highest level reached."""
    names = {}
    for pack in packs:
        for m in pack.municipalities:
            names[m.code] = f"{m.city_name or ''}{m.name}"
    ranks: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
    for alert in alerts:
        if alert["msg_type"] == "CANCEL":
            continue
        code = next((c for c in alert["municipalities"] if c in names), alert["municipalities"][0])
        episodes = ranks.setdefault((code, alert["rule"]), {})
        best = episodes.get(alert["alert_id"], (0, ""))
        if alert["level_rank"] > best[0]:
            episodes[alert["alert_id"]] = (alert["level_rank"], alert["level"])
    lines = [f"{_pad('municipality', 22)}{'code':<7}{'rule':<10}{'episodes':>9}  highest level"]
    for (code, rule), episodes in sorted(ranks.items()):
        top = max(episodes.values())
        lines.append(f"{_pad(names.get(code, code), 22)}{code:<7}{rule:<10}{len(episodes):>9}  {top[1]}")
    return lines


@cli.command()
@click.option("--from", "since", default="2023-09-04", show_default=True, help="First event time (JST).")
@click.option("--to", "until", default="2023-09-09", show_default=True, help="End of the range (JST, exclusive).")
@click.option("--speed", default="36000", show_default=True,
              help="Event-time speed over real time (36000 = 10 hours of rain a second) or max.")
@click.option("--metrics-port", default=9464, show_default=True,
              help="First worker's Prometheus port on 127.0.0.1 (the next region gets the next free one).")
@click.option("--keep-broker", is_flag=True, help="Leave the broker running afterwards (stop: bosai broker down).")
def demo(since: str, until: str, speed: str, metrics_port: int, keep_broker: bool) -> None:
    """Start the embedded broker, apply the topics, and replay the real heavy rain of 2023-09-04..08
    (Tochigi and Kanagawa, JMA AMeDAS) through the hub; print the alerts and a summary."""
    from streams.broker import EmbeddedBroker
    from streams.codec import default_store
    from streams.regions import default_pack_dirs, load_pack
    from streams.replay import parse_jst, run_replay
    from streams.settings import cache_dir, external_bootstrap, project_root

    try:
        pace = None if speed == "max" else float(speed)
    except ValueError:
        raise click.BadParameter("a number (event seconds per real second) or max", param_hint="--speed") from None
    packs = [load_pack(d) for d in default_pack_dirs()]
    embedded = EmbeddedBroker("default")
    started_here = False
    if external_bootstrap():
        bootstrap = external_bootstrap()
    else:
        started_here = embedded.state() is None
        bootstrap = embedded.up(progress=_say).bootstrap
    try:
        specs = _topic_specs(())
        before, after = asyncio.run(apply_topics(bootstrap, specs))
        click.echo(f"topics: {len(before.changes)} change(s) applied; {format_plan(after).splitlines()[-1]}")
        # On a broker this command started, the hub runs on the real topics (bosai.*); on one that was
        # already running, in a fresh namespace, so earlier state cannot hide this run's alerts.
        prefix = _catalog_with_prefix(None).prefix if started_here else time.strftime("demo-%Y%m%d%H%M%S")
        result = run_replay(packs, _catalog_with_prefix(None), default_store(),
                            project_root() / "data" / "amedas" / "tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz",
                            bootstrap=bootstrap, prefix=prefix, since_ms=parse_jst(since, option="--from"),
                            until_ms=parse_jst(until, option="--to"), speed=pace, timeout_s=600,
                            log_dir=cache_dir() / "logs", progress=_say, keep_topics=True,
                            metrics_ports=_free_ports(metrics_port, len(packs)), live=True)
        click.echo("")
        for line in episode_summary(result.alerts, packs):
            click.echo(line)
        click.echo(f"\n{result.readings:,} readings replayed in {result.total_s:.1f}s; {len(result.alerts)} alert events "
                   f"on {prefix}.* topics; dead letters {result.dead_letters}; "
                   f"drained {'yes' if result.drained else 'NO'}")
        click.echo("Data: 出典：気象庁ホームページ (JMA AMeDAS); 「国土数値情報（行政区域データ）（国土交通省）を加工して作成」")
        if not result.drained:
            raise BosaiError("the pipeline did not drain")
    finally:
        if started_here and not keep_broker:
            embedded.down(progress=_say)
        elif started_here:
            _say(f"broker left running at {bootstrap}: stop it with `bosai broker down`")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _say("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BosaiError as exc:
        _say(f"bosai: error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
