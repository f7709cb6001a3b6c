"""Every all-hazards sample (data/jma/all-hazards) through the official pipeline of a pack of its prefecture.

Each prefecture's pack (built by ``region init`` from data/n03/japan, see conftest.py) gets the samples
routed to it (:func:`streams.official.routing.route`: its prefecture's warnings, earthquakes and tornado
reports; every tsunami report) in ReportDateTime order, in one batch each, as a worker would. No sample is
dead-lettered, except the areas the data cannot resolve (test_all_hazards_resolve.py lists them: prefectures
without N03, municipalities merged since JMA's 2008–2010 samples).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.official import pipeline as official_pipeline
from streams.official.lifecycle import OfficialState
from streams.official.pipeline import OfficialPipeline
from streams.official.routing import ROUTED, route
from streams.platform.avro import DEAD_LETTER, OFFICIAL_REPORT, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.all_hazards import sample_id, samples, validated, xml

STORE = default_store()
ALL = samples("VPWW") + samples("VXSE") + samples("VTSE") + samples("VPHW")
BY_BYTES = {xml(path): path for path in ALL}


@pytest.fixture(scope="module", autouse=True)
def parsed_once():
    """Each sample is parsed and validated once per session (the parsing is tested on its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(official_pipeline, "parse_report", lambda data: validated(BY_BYTES[data]))
        yield


@pytest.fixture(scope="module")
def routes(prefecture_packs):
    """Each sample's key, order and the prefectures it is routed to (route() as the poller and replay do)."""
    every = {code: [code] for code in prefecture_packs}
    out = {}
    for path in ALL:
        found = route(xml(path), path.name, every)
        out[path] = (found.order, found.key, set(found.topics) if found.outcome == ROUTED else set())
    return out


def no_longer_municipalities(pack, detail):
    """The 市町村等 codes a dead letter names are all of towns that no longer exist (merged since 2010)."""
    codes = re.findall(r"'(\d{7}) ", detail)
    known = {m.code for m in pack.municipalities} | set(pack.designated_cities)
    return bool(codes) and all(code[:5] not in known for code in codes)


ENCODED: dict = {}


def encoded(codec, path):
    """The OfficialReport message of a sample (encoded once for every pack)."""
    if path not in ENCODED:
        record = {"xml": xml(path), "entry_id": path.name, "url": "", "fetched_at": 0, "entry_updated": None}
        ENCODED[path] = codec.encode(record)
    return ENCODED[path]


def replay(pack, routes):
    """The pack's alerts (path, record, topics) and dead letters (sample, reason, detail) for its samples."""
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    pipeline = OfficialPipeline(pack, topics, STORE, clock=lambda: 0.0)
    codec, dead_codec = AvroCodec(STORE, OFFICIAL_REPORT), AvroCodec(STORE, DEAD_LETTER)
    routed = [(order, path, key) for path, (order, key, codes) in routes.items() if pack.prefecture_code in codes]
    states: dict[str, OfficialState] = {}
    alerts, dead = [], []
    for offset, (_, path, key) in enumerate(sorted(routed, key=lambda r: (r[0], r[1].name))):
        value = encoded(codec, path)
        result = pipeline.process(
            [InMessage("official", 0, offset, key.encode(), value, 1)], lambda k: states.get(k, OfficialState())
        )
        states.update(result.states)
        alerts += [(path, out.record, out.topics) for out in result.alerts]
        for record in result.records:
            if record.topic == topics.deadletter:
                letter = dead_codec.decode(record.value)
                dead.append((sample_id(path), letter["reason"], letter["error_detail"]))
    return alerts, dead


@pytest.fixture(scope="module")
def replayed(prefecture_packs, routes):
    return {code: replay(pack, routes) for code, pack in sorted(prefecture_packs.items())}


def test_every_sample_replays_without_dead_letters(prefecture_packs, replayed):
    dead = [(code, *letter) for code, (_, letters) in replayed.items() for letter in letters]
    explained = [d for d in dead if d[2] == "unknown_area" and no_longer_municipalities(prefecture_packs[d[0]], d[3])]
    rules = Counter(r["rule"] for alerts, _ in replayed.values() for _, r, _ in alerts)
    families = Counter(
        (re.search(r"_(V[A-Z]{3}[0-9]{2})", p.name).group(1), r["msg_type"])
        for alerts, _ in replayed.values()
        for p, r, _ in alerts
    )
    print(f"\nalerts by rule {dict(rules)}; dead letters {len(dead)} (merged towns: {len(explained)})")
    print(f"alerts by sample set and msg_type {dict(sorted(families.items()))}")
    for code, sample, reason, detail in dead:
        print(f"  {code} {sample} {reason}: {detail[:160]}")
    assert [d for d in dead if d not in explained] == []
    assert {sample for _, sample, *_ in explained} <= {p.name.removesuffix(".xml.gz") for p in samples("VXSE")}


def test_every_kind_becomes_alerts(replayed):
    rules = Counter(r["rule"] for alerts, _ in replayed.values() for _, r, _ in alerts)
    assert {"jma_warning", "jma_earthquake", "jma_tsunami", "jma_tornado"} <= set(rules)
    events = {r["event"] for alerts, _ in replayed.values() for _, r, _ in alerts}
    assert {"レベル４土砂災害危険警報", "大雨特別警報", "地震情報", "震度速報", "大津波警報", "竜巻注意情報"} <= events


def test_exercises_never_reach_municipal_or_public_topics(replayed):
    for code, (alerts, _) in replayed.items():
        for path, record, topics in alerts:
            if record["status"] != "Actual":
                assert len(topics) == 1 and topics[0].endswith(".alerts"), (code, path.name, topics)
                assert record["alert_id"].endswith(("-exercise", "-test"))


def test_alert_ids_are_stable(prefecture_packs, routes):
    pack = prefecture_packs["14"]
    first, _ = replay(pack, routes)
    again, _ = replay(pack, routes)
    assert [(r["alert_id"], r["sequence"], r["msg_type"]) for _, r, _ in first] == [
        (r["alert_id"], r["sequence"], r["msg_type"]) for _, r, _ in again
    ]
    assert first
