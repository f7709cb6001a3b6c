"""The platform's memory on the real broker: a slice of Tochigi's real rain replayed with `--history`, read back
exactly (readings, alerts), and an archiver killed with SIGKILL twice mid-stream that loses nothing and archives
nothing twice. One test, to keep CI's time budget: every step is a `bosai` command, as an operator runs it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from streams.kernel.times import jst_iso, parse_jst
from streams.observed.amedas_csv import read_amedas
from streams.platform.kafka_admin import delete_namespace
from tests.support.postgres import postgis_missing, throwaway_postgres

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"
SINCE, UNTIL = "2023-09-04", "2023-09-06"
GAPS = ("2023-11-16", "2023-11-17")  # Utsunomiya published no value for two hours that day
STATION, MUNICIPALITY = "41277", "09201"  # Utsunomiya: very heavy rain on 2023-09-04
PREFIX = "itarchive"


def _bosai(args, env, *, check=True, timeout=120):
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _source(root: Path, since: str, until: str) -> list[dict]:
    """The station's rows of the source CSV, as `bosai history readings --format csv` writes them."""
    source = read_amedas(
        root / CSV, since_ms=parse_jst(since, option="--from"), until_ms=parse_jst(until, option="--to")
    )
    return [
        {
            "observed_at": jst_iso(r["observed_at"]),
            "station_id": STATION,
            **{m["quantity"]: "" if m["value"] is None else str(m["value"]) for m in r["measurements"]},
            "quality": r["quality"],
        }
        for r in source
        if r["station_id"] == STATION
    ]


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "_manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return {"sequence": 0, "files": []}


def _archived(folder: Path) -> list[tuple[str, int, int]]:
    """(topic, partition, offset) of every archived row, over the files the manifest commits."""
    found = []
    for entry in _manifest(folder)["files"]:
        table = pq.read_table(folder / entry["path"], columns=["kafka_topic", "kafka_partition", "kafka_offset"])
        found += zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)
    return found


def _postgis_archived(dsn: str) -> list[tuple[str, int, int]]:
    with psycopg.connect(dsn) as connection:
        return [
            tuple(row)
            for dataset in ("readings", "alerts", "official", "deadletters")
            for row in connection.execute(f"SELECT kafka_topic, kafka_partition, kafka_offset FROM bosai_{dataset}")
        ]


def _postgis_rows(dsn: str) -> int:
    try:
        with psycopg.connect(dsn) as connection:
            found = connection.execute("SELECT count(*) FROM bosai_readings").fetchone()
            return found[0] if found else 0
    except psycopg.Error:  # the archiver has not made its tables yet
        return 0


def _kill_mid_stream(history: Path, env: dict, *, after_flushes: int, store=None, started=None) -> int:
    """Start the archiver, let it commit ``after_flushes`` more flushes, then SIGKILL it (by its pid) while it is
    still archiving."""
    start = _manifest(history)["sequence"]
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "archive", "--regions", "regions/tochigi"]
        + (store or ["--history", str(history)])
        + ["--topic-prefix", PREFIX, "--flush-rows", "40", "--until-caught-up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 40
        progressed = started or (lambda: _manifest(history)["sequence"] >= start + after_flushes)
        while not progressed() and process.poll() is None:
            assert time.monotonic() < deadline, "the archiver made no progress"
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL, "the archiver finished before it could be killed mid-stream"
    return _manifest(history)["sequence"]


def test_replay_with_history_gives_back_the_data_exactly_and_survives_kill_9(kafka_bootstrap, project_root, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONPATH": str(project_root)}
    first, second = tmp_path / "archive", tmp_path / "again"
    alerts_out = tmp_path / "alerts.jsonl"
    try:
        _bosai(
            ["replay", "--region", "regions/tochigi", "--csv", CSV, "--from", SINCE, "--to", UNTIL]
            + ["--topic-prefix", PREFIX, "--keep-topics", "--alerts-out", str(alerts_out), "--history", str(first)],
            env,
            timeout=180,
        )

        # a second replay (another topic namespace) into the same archive: a day with gaps JMA published no value for
        _bosai(
            ["replay", "--region", "regions/tochigi", "--csv", CSV, "--from", GAPS[0], "--to", GAPS[1]]
            + ["--topic-prefix", f"{PREFIX}-gaps", "--history", str(first)],
            env,
            timeout=180,
        )

        # readings: exactly the source CSV's values of the station in each range (a gap stays empty, MISSING)
        for since, until in ((SINCE, UNTIL), GAPS):
            answer = _bosai(
                ["history", "readings", "--history", str(first), "--station", STATION, "--from", since, "--to", until]
                + ["--format", "csv"],
                env,
            )
            got = list(csv.DictReader(io.StringIO(answer.stdout)))
            expected = _source(project_root, since, until)
            assert len(expected) > 20 and got == expected
        assert [r["precipitation_1h"] for r in got if r["quality"] == "MISSING"] == ["", ""]

        # alerts: exactly the replay's alert events of the municipality, as --alerts-out wrote them
        replayed = [json.loads(line) for line in alerts_out.read_text().splitlines()]
        answer = _bosai(["history", "alerts", "--history", str(first), "--municipality", MUNICIPALITY], env)
        archived = [json.loads(line) for line in answer.stdout.splitlines()]
        mine = [a for a in replayed if MUNICIPALITY in a["municipalities"]]
        assert mine and sorted(archived, key=json.dumps) == sorted(mine, key=json.dumps)

        # kill -9 twice mid-stream: nothing lost, nothing twice (same records as the uninterrupted archive)
        once = _kill_mid_stream(second, env, after_flushes=3)
        _kill_mid_stream(second, env, after_flushes=3)
        assert _manifest(second)["sequence"] > once
        _bosai(
            ["archive", "--regions", "regions/tochigi", "--history", str(second), "--topic-prefix", PREFIX]
            + ["--flush-rows", "40", "--until-caught-up"],
            env,
        )
        reference = [r for r in _archived(first) if r[0].startswith(f"{PREFIX}.")]
        again = _archived(second)
        assert len(again) == len(set(again)), "a record was archived twice"
        assert sorted(again) == sorted(reference) and len(reference) > 850
        assert not [p for p in second.rglob("*") if p.is_file() and p.name.endswith(".tmp")]

        # the same topics into PostGIS (rows and offsets in one transaction): killed once mid-stream, then finished
        if postgis_missing() is None or os.environ.get("CI"):
            with throwaway_postgres() as dsn:
                postgis = ["--postgis", dsn]
                _kill_mid_stream(second, env, after_flushes=0, store=postgis, started=lambda: _postgis_rows(dsn) > 0)
                _bosai(
                    ["archive", "--regions", "regions/tochigi", *postgis, "--topic-prefix", PREFIX]
                    + ["--flush-rows", "40", "--until-caught-up"],
                    env,
                )
                in_postgis = _postgis_archived(dsn)
                assert len(in_postgis) == len(set(in_postgis)) and sorted(in_postgis) == sorted(reference)
    finally:
        asyncio.run(delete_namespace(kafka_bootstrap, PREFIX, ["tochigi"]))
        asyncio.run(delete_namespace(kafka_bootstrap, f"{PREFIX}-gaps", ["tochigi"]))
