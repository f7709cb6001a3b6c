"""Relay, never impersonate (気象業務法): every output the hub renders is scanned for words only JMA may use.

The hub's own threshold alerts never say 警報, 注意報, 特別警報, 予報, 予想 or 見込み, and never a bare
警戒レベルN (always 警戒レベルN相当). Relayed JMA reports may — they are JMA's words — but then they are
marked as JMA's: the relay's sender, 「出典：気象庁」 in what people read, and JMA as the feed entry's author.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from streams.delivery import cap
from streams.delivery.atom import CurrentAlerts, feed_entries, render_atom
from streams.delivery.webhooks import json_body
from streams.kernel.access import Principal
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.official.jma_xml import parse_report
from streams.official.lifecycle import OfficialState
from streams.official.pipeline import OfficialPipeline
from streams.official.report import read_report
from streams.packs.region_pack import default_pack_dirs, load_pack
from streams.platform.avro import OFFICIAL_REPORT, READING, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.jma_samples import KANAGAWA, kanagawa_record_rain, sample

FORBIDDEN = re.compile(r"特別警報|警報|注意報|予報|予想|見込み|警戒レベル[0-9０-９](?!相当)")
STORE = default_store()
HUB = Principal(name="hub", role="hub", description="", grants=())


def forbidden(text: str) -> list[str]:
    return FORBIDDEN.findall(text)


def test_the_pattern_catches_what_it_must_and_lets_the_equivalent_level_pass():
    assert forbidden("大雨警報 記録的な雨の見込み 警戒レベル4 警戒レベル４") == [
        "警報",
        "見込み",
        "警戒レベル4",
        "警戒レベル４",
    ]
    assert forbidden("警戒レベル4相当: 危険な場所から全員避難してください。") == []


def hub_alerts(project_root, kanagawa_with_river) -> list[dict]:
    """The hub's own alerts: the real heavy rain of 2023-09-04..08 in both prefectures, and a river gauge."""
    rain = read_amedas(
        project_root / "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz",
        since_ms=parse_jst("2023-09-04", option="--from"),
        until_ms=parse_jst("2023-09-09", option="--to"),
    )
    out = []
    for pack_dir in [*default_pack_dirs(), kanagawa_with_river]:
        pack = load_pack(pack_dir)
        pipeline = Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE)
        records = [r for r in rain if r["station_id"] in pack.stations]
        t0 = parse_jst("2023-09-08T10:00", option="--from")
        if "R-14-001" in pack.stations:
            records = [
                {
                    "station_id": "R-14-001",
                    "sensor_kind": "RIVER_LEVEL_GAUGE",
                    "observed_at": t0 + i * 600_000,
                    "location": None,
                    "measurements": [{"quantity": "water_level", "value": v, "unit": "m"}],
                    "quality": "OK",
                    "source": "test",
                    "produced_at": None,
                }
                for i, v in enumerate([0.5, 2.1, 2.7, 3.3, 4.0, 0.4])
            ]
        payloads = AvroCodec(STORE, READING).encode_many(records)
        result = pipeline.process(
            [InMessage("raw", 0, i, None, p) for i, p in enumerate(payloads)], lambda _sid: StationState()
        )
        out += [a.record for a in result.alerts]
    return out


def relayed_alerts(project_root) -> list[dict]:
    pack = load_pack(project_root / "regions" / "kanagawa")
    pipeline = OfficialPipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE)
    states: dict = {}
    codec = AvroCodec(STORE, OFFICIAL_REPORT)
    out = []
    for i, xml in enumerate([*(sample(p) for p in KANAGAWA), kanagawa_record_rain()]):
        key = read_report(parse_report(xml)).key.encode()
        value = codec.encode({"xml": xml, "fetched_at": 0})
        result = pipeline.process([InMessage("o", 0, i, key, value)], lambda k: states.get(k, OfficialState()))
        states.update(result.states)
        out += [a.record for a in result.alerts]
    return out


@pytest.fixture(scope="module")
def both(project_root, kanagawa_with_river):
    hub, relayed = hub_alerts(project_root, kanagawa_with_river), relayed_alerts(project_root)
    assert {a["rule"] for a in hub} >= {"rain_1h", "rain_24h", "river_stage", "river_rise"}
    assert any("警報" in a["headline"] for a in relayed)  # JMA's own 2026 title: the scan must exempt it
    return hub, relayed


def test_no_output_of_the_hub_s_own_alerts_uses_jma_s_words(both):
    hub, _ = both

    for alert in hub:
        outputs = {
            "headline": alert["headline"],
            "cap": cap.render(alert, sender_name="神奈川県 防災データ連携基盤").decode(),
            "webhook": json_body(alert).decode(),
            "atom": render_atom([alert], feed_id="f", title="t", self_url="s", cap_url="{identifier}").decode(),
        }
        for kind, text in outputs.items():
            assert forbidden(text) == [], f"{alert['alert_id']} {kind}: {forbidden(text)}"


def test_every_output_of_a_relayed_report_is_marked_as_jma_s(both):
    _, relayed = both

    for alert in relayed:
        document = ET.fromstring(cap.render(alert))
        ns = {"cap": cap.CAP_NS}
        assert document.findtext("cap:sender", namespaces=ns).startswith("jma-relay-")
        assert "出典：気象庁" in alert["headline"]
        assert "出典：気象庁" in document.findtext("cap:info/cap:description", namespaces=ns)
        webhook = json.loads(json_body(alert))
        assert webhook["source"] == "jma" and webhook["official"]["credit"] == "出典：気象庁"


def test_a_mixed_feed_exempts_only_the_entries_jma_wrote(both):
    hub, relayed = both
    alerts = CurrentAlerts(cancel_retention_ms=10**13)
    for record in [*hub, *relayed]:
        alerts.apply(record)

    feed = ET.fromstring(
        render_atom(feed_entries(alerts, HUB), feed_id="f", title="t", self_url="s", cap_url="{identifier}")
    )

    atom = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", atom)
    assert len(entries) == len(alerts.current()) == len(alerts.latest) - 1  # the 2010 record rain has expired
    jma_entries = 0
    for entry in entries:
        text = "".join(entry.itertext())
        author = entry.findtext("a:author/a:name", namespaces=atom) or ""
        if author.startswith("気象庁"):
            jma_entries += 1
            assert "出典：気象庁" in author and "出典：気象庁" in entry.findtext("a:title", namespaces=atom)
        else:
            assert forbidden(text) == [], text
    assert jma_entries == len({a["alert_id"] for a in relayed if a["expires"] is None})


def test_the_hub_s_own_texts_and_rule_files_use_no_word_of_jma_s(project_root):
    texts = [*cap._INSTRUCTION.values()]
    for rules in [project_root / "regions" / "_template" / "rules.yaml", *project_root.glob("regions/*/rules.yaml")]:
        texts.append(rules.read_text(encoding="utf-8"))

    for text in texts:
        assert [w for w in forbidden(text) if not w.startswith("警戒レベル") or "相当" not in w] == []
