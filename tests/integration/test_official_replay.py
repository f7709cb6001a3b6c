"""Official reports through the real broker and workers: Kanagawa's 土砂災害警戒情報, Fukuoka from N03 alone
(mid-event, designated cities), and the real 六角川 flood forecast whose observed level fires a river rule."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from streams.delivery import cap
from streams.delivery.cap_schema import cap_validation_errors
from streams.hub.replay import ReplaySettings, run_replay
from streams.packs.region_pack import load_pack
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.jma_samples import (
    FUKUOKA,
    FUKUOKA_N03,
    KANAGAWA,
    ROKKAKU,
    later,
    saga_pack_with_gauge,
    sample,
    with_area_status,
)

TOWNS = {"14206": "小田原市", "14383": "真鶴町", "14384": "湯河原町", "14382": "箱根町"}


def _replay(packs, bootstrap, prefix, log_dir, jma_paths, **options):
    settings = ReplaySettings(
        packs,
        load_catalog(default_catalog_path()),
        bootstrap=bootstrap,
        prefix=prefix,
        timeout_s=180,
        log_dir=log_dir,
        jma_paths=jma_paths,
        **options,
    )
    return run_replay(settings, default_store(), print)


@pytest.fixture(scope="module")
def kanagawa_sequence(kafka_bootstrap, project_root, tmp_path_factory, unique_module):
    pack = load_pack(project_root / "regions" / "kanagawa")
    return _replay([pack], kafka_bootstrap, f"itjma{unique_module}", tmp_path_factory.mktemp("logs"), KANAGAWA)


@pytest.fixture(scope="module")
def unique_module():
    import uuid

    return uuid.uuid4().hex[:6]


def test_the_kanagawa_sequence_gives_one_alert_and_one_cancel_per_town_on_its_topics_only(kanagawa_sequence):
    prefix = kanagawa_sequence.prefix
    per_town = defaultdict(list)
    for line in kanagawa_sequence.alerts:
        assert line["source"] == "jma" and line["rule"] == "jma_landslide"
        (code,) = line["municipalities"]
        per_town[code].append(line["msg_type"])
        assert line["topics"] == sorted(
            [f"{prefix}.kanagawa.alerts", f"{prefix}.kanagawa.alerts.{code}", f"{prefix}.kanagawa.alerts.public"]
        )

    assert dict(per_town) == {code: ["ALERT", "CANCEL"] for code in TOWNS}
    hakone = next(a for a in kanagawa_sequence.alerts if a["municipalities"] == ["14382"])
    assert hakone["observed_at"] == "2024-11-02T20:50:00+09:00" and hakone["official"]["serial"] == "2"
    assert kanagawa_sequence.dead_letters == 0 and kanagawa_sequence.drained


def test_the_kanagawa_alerts_are_valid_cap_with_jma_s_wording_and_credit(kanagawa_sequence):
    assert len(kanagawa_sequence.records) == 8
    for record in kanagawa_sequence.records:
        document = cap.render(record)
        assert cap_validation_errors(document) == []
        text = document.decode()
        assert "神奈川県レベル４土砂災害危険警報" in text and "出典：気象庁" in text
        assert "jma-relay-kanagawa@bosai-hub.invalid" in text
        assert f"<value>{record['official']['event_id']}</value>" in text
        assert record["official"]["headline"] in text  # JMA's headline, as JMA wrote it


def test_fukuoka_from_n03_alone_replays_mid_event_and_both_designated_cities_reach_every_ward(
    kafka_bootstrap, project_root, tmp_path, unique
):
    pack_dir = tmp_path / "fukuoka"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    bosai = [sys.executable, "-m", "streams.cli"]
    subprocess.run(
        [*bosai, "region", "init", "--name", "fukuoka", "--n03", str(FUKUOKA_N03), "--out", str(pack_dir)],
        check=True,
        env=env,
        cwd=project_root,
    )
    # EDIT (marked): a later report (12:05, Serial 6) in which 福岡市 is under warning again, so that the
    # replay shows 福岡市 named whole as well; in the real Serial 5 it is 解除 with nothing open: nothing.
    later_report = tmp_path / "fukuoka-serial6-EDITED.xml"
    later_report.write_bytes(
        later(with_area_status(sample(FUKUOKA), "福岡市", "発表"), "2013-08-31T12:05:00+09:00", "6")
    )
    out = tmp_path / "alerts.jsonl"

    subprocess.run(
        [*bosai, "replay", "--region", str(pack_dir), "--jma", str(FUKUOKA), "--jma", str(later_report)]
        + ["--speed", "max", "--alerts-out", str(out), "--topic-prefix", f"itfk{unique}", "--timeout", "180"],
        check=True,
        env=env,
        cwd=project_root,
    )

    pack = load_pack(pack_dir)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    serial5 = {a["station_id"]: a for a in lines if a["official"]["serial"] == "5"}
    warned = {"4010000", "4020400", "4020500", "4030500"}  # among the 25 areas 継続 in Serial 5
    assert warned <= set(serial5) and len(serial5) == 25
    assert all(a["msg_type"] == "ALERT" and a["source"] == "jma" for a in serial5.values())
    assert "4013000" not in serial5
    fukuoka_city = next(a for a in lines if a["station_id"] == "4013000")
    for city, alert in (("40100", serial5["4010000"]), ("40130", fukuoka_city)):
        wards = pack.wards_of(city)
        assert len(wards) == 7
        assert {f"itfk{unique}.fukuoka.alerts.{w}" for w in wards} <= set(alert["topics"])
    assert serial5["4030500"]["municipalities"] == ["40231"]


def test_the_rokkaku_flood_forecast_alerts_its_towns_and_its_observed_level_fires_the_river_rule(
    kafka_bootstrap, tmp_path, unique
):
    from streams.platform import kafka

    pack = load_pack(saga_pack_with_gauge(tmp_path))

    result = _replay([pack], kafka_bootstrap, f"itsg{unique}", tmp_path / "logs", [ROKKAKU], keep_topics=True)

    flood = [a for a in result.alerts if a["rule"] == "jma_flood"]
    river = [a for a in result.alerts if a["rule"] == "river_stage"]
    assert [(a["msg_type"], a["level"], a["municipalities"]) for a in flood] == [
        ("ALERT", "警戒レベル3相当", ["41206", "41209", "41423", "41424", "41425"])
    ]
    assert [(a["source"], a["station_id"], a["level"], a["value"], a["observed_at"]) for a in river] == [
        ("hub", "R-41-001", "level_2", 2.53, "2021-08-13T15:00:00+09:00")  # 現況 15:00, 2.53 m ≥ 氾濫注意 2.50 m
    ]
    raw = f"itsg{unique}.saga.readings.raw"
    ends = asyncio.run(kafka.end_offsets(kafka_bootstrap, [raw]))
    messages = asyncio.run(kafka.read_range(kafka_bootstrap, {}, ends))
    readings = [AvroCodec(default_store(), READING).decode(m.value) for m in messages]
    assert [(r["station_id"], r["source"], r["measurements"][0]["value"]) for r in readings] == [
        ("R-41-001", "jma-flood-forecast", 2.53)  # one reading: the forecast hours never became readings
    ]
    assert result.dead_letters == 0 and result.drained  # drained: the markers after its own writes do not hold it


def test_a_replay_needs_readings_or_reports(project_root):
    failed = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "--region", str(project_root / "regions" / "kanagawa")],
        capture_output=True,
        text=True,
        cwd=project_root,
    )

    assert failed.returncode != 0 and "--jma" in failed.stderr
