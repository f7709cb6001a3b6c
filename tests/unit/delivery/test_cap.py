"""CAP 1.2 rendering: every alert event of the real Tochigi heavy rain validates against the OASIS XSD."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from streams.delivery import cap
from streams.delivery.cap_schema import cap_validation_errors
from streams.kernel.messages import InMessage
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics
from streams.observed.amedas_csv import read_amedas
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.packs.region_pack import load_pack
from streams.platform.avro import READING, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = Path("data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
NS = {"cap": cap.CAP_NS}


def _run(pack, records):
    store = default_store()
    pipeline = Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), store)
    payloads = AvroCodec(store, READING).encode_many(records)
    result = pipeline.process(
        [InMessage("raw", 0, i, None, p) for i, p in enumerate(payloads)], lambda station_id: StationState()
    )
    return [a.record for a in result.alerts]


@pytest.fixture(scope="module")
def tochigi_heavy_rain_alerts(project_root):
    pack = load_pack(project_root / "regions" / "tochigi")
    records = [
        r
        for r in read_amedas(
            project_root / CSV,
            since_ms=parse_jst("2023-09-04", option="--from"),
            until_ms=parse_jst("2023-09-09", option="--to"),
        )
        if r["station_id"] in pack.stations
    ]
    return pack, _run(pack, records)


def test_every_cap_message_of_the_tochigi_heavy_rain_validates_and_follows_its_predecessor(tochigi_heavy_rain_alerts):
    pack, alerts = tochigi_heavy_rain_alerts
    assert len(alerts) > 20
    sent_by_identifier = {}
    kinds = set()
    for alert in alerts:
        document = cap.render(alert, sender_name=f"{pack.prefecture_name} 防災データ連携基盤")
        assert cap_validation_errors(document) == [], alert["alert_id"]
        root = ET.fromstring(document)
        identifier = root.findtext("cap:identifier", namespaces=NS)
        sent = root.findtext("cap:sent", namespaces=NS)
        msg_type = root.findtext("cap:msgType", namespaces=NS)
        kinds.add(msg_type)
        assert identifier == f"{alert['alert_id']}.{alert['sequence']}"
        assert sent.endswith("+09:00")
        infos = root.findall("cap:info", NS)
        assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["ja-JP", "en-US"]
        for info in infos:
            geocodes = [g.findtext("cap:value", namespaces=NS) for g in info.iterfind(".//cap:geocode", NS)]
            assert geocodes == alert["municipality_codes"]
        references = root.findtext("cap:references", namespaces=NS)
        if msg_type == "Alert":
            assert references is None
        else:
            sender, previous, previous_sent = references.split(",")
            assert sender == cap.DEFAULT_IDENTITY.sender("tochigi") == "bosai-tochigi@bosai-hub.invalid"
            assert previous == f"{alert['alert_id']}.{alert['sequence'] - 1}"
            assert sent_by_identifier[previous] == previous_sent  # the message it follows, exactly
        sent_by_identifier[identifier] = sent
    assert {"Alert", "Update", "Cancel"} <= kinds


def test_scope_follows_the_sharing_level_and_zone_polygons_are_closed_rings(kanagawa_with_river):
    pack = load_pack(kanagawa_with_river)
    t0 = parse_jst("2023-09-08T10:00", option="--from")
    levels = [0.5, 1.2, 2.7, 3.3, 0.4]
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
        for i, v in enumerate(levels)
    ]
    alerts = _run(pack, records)
    by_level = {a["sharing_level"] for a in alerts}
    assert {"PUBLIC", "INTERNAL"} <= by_level
    polygons = cap.zone_polygons_of(pack)
    for alert in alerts:
        document = cap.render(alert, zone_polygons=polygons)
        assert cap_validation_errors(document) == []
        root = ET.fromstring(document)
        scope = root.findtext("cap:scope", namespaces=NS)
        if alert["sharing_level"] == "INTERNAL":
            assert scope == "Private" and root.findtext("cap:addresses", namespaces=NS) == "pref-kanagawa"
        elif alert["sharing_level"] == "PUBLIC":
            assert scope == "Public"
        rings = [p.text.split() for p in root.iterfind(".//cap:polygon", NS)]
        assert rings, "the gauge is linked to a landslide zone"
        assert all(len(ring) >= 4 and ring[0] == ring[-1] for ring in rings)
    public = next(a for a in alerts if a["sharing_level"] == "PUBLIC")
    municipal = dict(public, sharing_level="MUNICIPAL")
    root = ET.fromstring(cap.render(municipal))
    assert root.findtext("cap:scope", namespaces=NS) == "Restricted"
    assert all(code in root.findtext("cap:restriction", namespaces=NS) for code in public["municipality_codes"])


def test_the_validator_rejects_what_is_not_cap(tochigi_heavy_rain_alerts):
    _, alerts = tochigi_heavy_rain_alerts
    document = cap.render(alerts[0]).replace(b"+09:00</sent>", b"Z</sent>")  # CAP requires a +hh:mm offset
    assert cap_validation_errors(document)
    root = ET.fromstring(cap.render(alerts[0]))
    root.remove(root.find("cap:identifier", NS))
    assert cap_validation_errors(ET.tostring(root))
