"""`bosai archive` and `bosai history`: the platform's memory — archiving every region's topics exactly once into
GeoParquet, and reading it back (readings, alerts, OGC API - Features)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streams.cli import common
from streams.kernel.errors import BosaiError

if TYPE_CHECKING:  # types only: the CLI imports what a command needs when it runs
    from streams.history.query import Filter
    from streams.history.reader import ArchiveReader
    from streams.kernel.region import RegionPack

history_option = click.option(
    "--history",
    "history_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The archive folder (GeoParquet files and their _manifest.json).",
)


def packs_under(folder: Path) -> list[RegionPack]:
    """A region pack folder, or a folder of them (like regions/; folders starting with '_' are templates)."""
    from streams.packs.region_pack import MANIFEST, load_pack

    if (folder / MANIFEST).exists():
        return [load_pack(folder)]
    if not folder.is_dir():
        raise BosaiError(f"{folder}: no such folder (expected a region pack or a folder of region packs)")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_") and (p / MANIFEST).exists())
    if not found:
        raise BosaiError(f"{folder}: no region pack in it (expected folders with {MANIFEST})")
    return [load_pack(p) for p in found]


@click.command()
@common.log_level_option
@click.option(
    "--regions",
    "regions_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of region packs (e.g. regions), or one pack: every region's topics are archived.",
)
@click.option(
    "--history",
    "history_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The archive folder (GeoParquet files and their _manifest.json).",
)
@click.option(
    "--postgis",
    default=None,
    envvar="BOSAI_ARCHIVE_POSTGIS",
    help="Archive into PostGIS instead: a PostgreSQL DSN, e.g. 'host=db dbname=bosai user=archiver' (the password "
    "from PGPASSWORD or ~/.pgpass) [env BOSAI_ARCHIVE_POSTGIS].",
)
@common.topic_prefix_option
@click.option("--flush-rows", default=50_000, show_default=True, type=click.IntRange(1), help="Rows per flush at most.")
@click.option(
    "--flush-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="The oldest unflushed row waits at most this long (idle topics flush at once).",
)
@click.option(
    "--compact-files",
    default=24,
    show_default=True,
    type=click.IntRange(0),
    help="Merge a finished day's folder holding this many files into one (0: never).",
)
@click.option(
    "--until-caught-up",
    is_flag=True,
    help="Stop once every partition reached the end it had when the archiver started (a one-shot archive).",
)
@common.metrics_options
def archive(
    regions_dir: Path,
    history_dir: Path | None,
    postgis: str | None,
    topic_prefix: str | None,
    flush_rows: int,
    flush_seconds: float,
    compact_files: int,
    until_caught_up: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Archive every region's enriched readings, alerts, official reports and dead letters, exactly once."""
    from streams.history.archiver import Archiver, ArchiveSettings
    from streams.platform.avro import default_store
    from streams.platform.broker import resolve_bootstrap

    if (history_dir is None) == (postgis is None):
        raise click.UsageError("give --history DIR (GeoParquet) or --postgis DSN, one of them")
    settings = ArchiveSettings(
        history_dir,
        packs_under(regions_dir),
        common.catalog(topic_prefix),
        resolve_bootstrap(),
        flush_rows=flush_rows,
        flush_s=flush_seconds,
        until_caught_up=until_caught_up,
        compact_min_files=compact_files,
        postgis=postgis,
    )
    common.serve_metrics(metrics_port, metrics_host)
    archiver = Archiver(settings, default_store(), common.say)
    stats = common.run_until_stopped(archiver.run)
    common.say(
        f"archived {stats.records:,} record(s) in {stats.flushes} flush(es), {stats.files} file(s), "
        f"{stats.compactions} compaction(s) into {archiver.target}"
    )


def archive_topics(history_dir: Path, packs: list[RegionPack], prefix: str, bootstrap: str) -> None:
    """What `bosai replay --history` runs after the replay drained: the archiver over the replay's topics,
    until caught up."""
    from streams.history.archiver import ArchiveSettings, run_archiver
    from streams.platform.avro import default_store

    settings = ArchiveSettings(history_dir, packs, common.catalog(prefix), bootstrap, until_caught_up=True)
    stats = run_archiver(settings, default_store(), progress=common.say)
    common.say(f"archived {stats.records:,} record(s) of the replay into {history_dir}")


@click.group()
def history() -> None:
    """The archive: readings and alerts back, and OGC API - Features for GIS tools."""


def _range(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    from streams.kernel.times import parse_jst

    return (parse_jst(since, option="--from") if since else None, parse_jst(until, option="--to") if until else None)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        common.say(f"wrote {output}")


def _emit_lines(lines: list[dict[str, Any]], columns: list[str], fmt: str, output: Path | None) -> None:
    """json: one object per line; csv: the columns as a header, then a row per line (missing stays empty)."""
    from streams.history.rows import csv_value

    if fmt == "json":
        _emit("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), output)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_value(line[c]) for c in columns] for line in lines)
    _emit(buffer.getvalue(), output)


def _parquet(reader: ArchiveReader, where: Filter, output: Path | None) -> int:
    from streams.history.store import write_export

    if output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    table = reader.table(where)
    if table is None:
        raise BosaiError(f"{reader.store.root}: nothing archived matches")
    write_export(where.dataset, table, output)
    common.say(f"wrote {table.num_rows:,} row(s) to {output}")
    return int(table.num_rows)


output_option = click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (default: stdout)."
)


@history.command("readings")
@history_option
@click.option("--station", "stations", multiple=True, required=True, help="Station id (repeatable).")
@click.option("--from", "since", default=None, help="First event time, JST (e.g. 2023-09-04).")
@click.option("--to", "until", default=None, help="End of the range (exclusive), JST.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv", show_default=True)
@output_option
def readings(
    history_dir: Path, stations: tuple[str, ...], since: str | None, until: str | None, fmt: str, output: Path | None
) -> None:
    """A station's readings: observed_at, station_id, one column per quantity, quality (missing stays empty)."""
    from streams.history.query import Filter
    from streams.history.reader import ArchiveReader
    from streams.history.rows import reading_columns, reading_line

    since_ms, until_ms = _range(since, until)
    where = Filter("readings", since_ms=since_ms, until_ms=until_ms, station_ids=stations)
    reader = ArchiveReader(history_dir)
    if fmt == "parquet":
        _parquet(reader, where, output)
        return
    rows = reader.rows(where)
    columns = reading_columns(rows)
    lines = [reading_line(r, columns) for r in rows]
    _emit_lines(lines, columns, fmt, output)
    common.say(f"{len(lines):,} reading(s)")


@history.command("alerts")
@history_option
@click.option("--municipality", required=True, help="JIS code of the municipality (or ward) the alerts concern.")
@click.option("--from", "since", default=None, help="First event time, JST (e.g. 2023-09-04).")
@click.option("--to", "until", default=None, help="End of the range (exclusive), JST.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "geojson"]), default="json", show_default=True)
@output_option
def alerts(
    history_dir: Path, municipality: str, since: str | None, until: str | None, fmt: str, output: Path | None
) -> None:
    """A municipality's alert events, as `bosai replay --alerts-out` writes them (json: one per line)."""
    from streams.history.query import Filter
    from streams.history.reader import ArchiveReader
    from streams.history.rows import alert_feature, alert_line

    since_ms, until_ms = _range(since, until)
    where = Filter("alerts", since_ms=since_ms, until_ms=until_ms, municipality=municipality)
    rows = ArchiveReader(history_dir).rows(where)
    lines = [alert_line(r) for r in rows]
    if fmt == "geojson":
        features = [alert_feature(line, r["lon"], r["lat"]) for line, r in zip(lines, rows, strict=True)]
        _emit(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False) + "\n", output)
    else:
        _emit_lines(lines, list(lines[0]) if lines else ["alert_id", "sequence"], fmt, output)
    common.say(f"{len(lines):,} alert event(s)")


@history.command("export")
@history_option
@click.option(
    "--region",
    "regions",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack (repeatable): the readings of its public stations are exported.",
)
@click.option("--from", "since", default=None, help="First event time, JST (e.g. 2023-09-04).")
@click.option("--to", "until", default=None, help="End of the range (exclusive), JST.")
@click.option(
    "--output",
    "folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the files and catalog.jsonld into.",
)
@click.option("--base-url", default="", help="Where the folder will be published (the catalog's download URLs).")
@click.option("--publisher", default="bosai hub", show_default=True, help="The catalog's publisher (dct:publisher).")
def export(
    history_dir: Path,
    regions: tuple[Path, ...],
    since: str | None,
    until: str | None,
    folder: Path,
    base_url: str,
    publisher: str,
) -> None:
    """Public readings and alerts as open data (GeoParquet, CSV, GeoJSON) with a DCAT catalog (catalog.jsonld)."""
    from streams.history.export import export as run_export

    since_ms, until_ms = _range(since, until)
    result = run_export(
        history_dir,
        common.load_packs(regions),
        folder,
        since_ms=since_ms,
        until_ms=until_ms,
        base_url=base_url,
        publisher=publisher,
    )
    common.say(
        f"exported {result.readings:,} reading(s) and {result.alerts:,} alert event(s) to {folder}: "
        + ", ".join(result.files)
    )


@history.command("serve")
@common.log_level_option
@history_option
@click.option(
    "--region",
    "regions",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Region pack (repeatable): its public stations and its municipalities are collections.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@common.metrics_options
def serve(
    history_dir: Path, regions: tuple[Path, ...], host: str, port: int, metrics_port: int | None, metrics_host: str
) -> None:
    """Serve the archive's public data as OGC API - Features (stations, municipalities, alerts, readings)."""
    from streams.history.server import HistoryService, serve_history

    service = HistoryService(common.load_packs(regions), history_dir)
    common.serve_metrics(metrics_port, metrics_host)
    common.run_until_stopped(lambda stop: serve_history(service, host=host, port=port, stop=stop, progress=common.say))
    common.say("history server stopped")
