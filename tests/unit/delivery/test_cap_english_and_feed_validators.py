"""CAP's sender from configuration, its English info block, and the feed's conditional GET (ETag, Last-Modified,
304), without a broker (the feed's credential check is answered from its cache)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from email.utils import formatdate

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.delivery import cap
from streams.delivery.atom import CurrentAlerts
from streams.delivery.cap_english import CapEnglish
from streams.delivery.cap_identity import load_cap_identity, unowned_notice
from streams.delivery.cap_schema import cap_validation_errors
from streams.delivery.feed_server import HANDLERS, CredentialChecker, build_app
from streams.kernel.errors import ConfigError
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform import tls
from streams.platform.access_file import default_access_path, load_access
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.web_data import heavy_rain

NS = {"cap": cap.CAP_NS}


@pytest.fixture(scope="module")
def tochigi_rain(project_root):
    pack = load_pack(project_root / "regions" / "tochigi")
    topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
    _records, _enriched, alerts = heavy_rain(project_root, pack, topics, "2023-09-04T00:00", "2023-09-04T16:00")
    return pack, alerts


def test_the_sender_and_the_atom_ids_come_from_the_configured_authority():
    identity = load_cap_identity({"BOSAI_CAP_AUTHORITY": "Bosai.Pref.Tochigi.LG.JP"})

    assert identity.sender("tochigi") == "bosai-tochigi@bosai.pref.tochigi.lg.jp"
    assert identity.sender("tochigi", "jma") == "jma-relay-tochigi@bosai.pref.tochigi.lg.jp"
    assert identity.urn("feed:public") == identity.urn("feed:public") != load_cap_identity({}).urn("feed:public")
    assert identity.urn("feed:public").startswith("urn:uuid:") and unowned_notice(identity) is None
    assert "BOSAI_CAP_AUTHORITY" in unowned_notice(load_cap_identity({}))


@pytest.mark.parametrize(
    "env, says",
    [
        ({"BOSAI_CAP_AUTHORITY": "not a domain"}, "not a DNS domain"),
        ({"BOSAI_CAP_AUTHORITY": "example.jp", "BOSAI_CAP_SENDER": "hub,{region}@{authority}"}, "no spaces, commas"),
        ({"BOSAI_CAP_AUTHORITY": "example.jp", "BOSAI_CAP_SENDER": "{city}@{authority}"}, "only {region}"),
        ({"BOSAI_CAP_SENDER": "x-{region}@{authority}", "BOSAI_CAP_RELAY_SENDER": "x-{region}@{authority}"}, "own"),
    ],
)
def test_a_wrong_cap_setting_is_refused_naming_the_variable(env, says):
    with pytest.raises(ConfigError, match="BOSAI_CAP_AUTHORITY") as refused:
        load_cap_identity(env)

    assert says in str(refused.value)


def test_every_hub_alert_has_an_english_block_from_the_rule_files(tochigi_rain):
    pack, alerts = tochigi_rain
    identity = load_cap_identity({"BOSAI_CAP_AUTHORITY": "bosai.pref.tochigi.lg.jp"})
    english = CapEnglish.of([pack])
    assert alerts
    for alert in alerts:
        document = cap.render(alert, sender_name="栃木県 防災データ連携基盤", identity=identity, english=english)
        assert cap_validation_errors(document) == [], alert["alert_id"]
        root = ET.fromstring(document)
        ja, en = root.findall("cap:info", NS)
        level = pack.rules.rule(alert["rule"]).level(alert["level"])
        assert (ja.findtext("cap:language", namespaces=NS), en.findtext("cap:language", namespaces=NS)) == (
            "ja-JP",
            "en-US",
        )
        assert en.findtext("cap:event", namespaces=NS) == level.event_en != level.event
        station = pack.stations[alert["station_id"]]
        headline = en.findtext("cap:headline", namespaces=NS)
        assert station.name_en in headline and "not a warning of the Japan Meteorological Agency" in headline
        assert root.findtext("cap:sender", namespaces=NS) == "bosai-tochigi@bosai.pref.tochigi.lg.jp"


def test_a_relayed_report_stays_jma_s_japanese_words_under_an_english_headline():
    from tests.support.jma_samples import KANAGAWA, sample
    from tests.unit.official.test_official_pipeline import Hub, message

    pack = load_pack(cap_root() / "regions" / "kanagawa")
    (record, *_rest) = [a.record for a in Hub(pack).process([message(sample(KANAGAWA[0]))]).alerts]
    root = ET.fromstring(cap.render(record))

    assert cap_validation_errors(ET.tostring(root)) == []
    ja, en = root.findall("cap:info", NS)
    headline = en.findtext("cap:headline", namespaces=NS)
    assert "Japan Meteorological Agency's information" in headline and "出典：気象庁 / Source: JMA" in headline
    assert en.findtext("cap:event", namespaces=NS) == "Landslide Alert Information (JMA)"
    assert ja.findtext("cap:description", namespaces=NS) in en.findtext("cap:description", namespaces=NS)
    assert en.find("cap:instruction", NS) is None  # no words of the hub's own added to JMA's


def cap_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[3]


async def test_the_feed_answers_304_while_nothing_changed_and_200_with_a_new_etag_after(tochigi_rain, tmp_path):
    _pack, alerts = tochigi_rain
    own = [a for a in alerts if "09201" in a["municipality_codes"] and a["sharing_level"] != "INTERNAL"]
    current = CurrentAlerts()
    for record in alerts:
        if record is not own[-1]:
            current.apply(record)
    checker = CredentialChecker("127.0.0.1:9", tls.ensure_ca(tmp_path / "tls").cert_file)
    checker.cache.put(checker.fingerprint("muni-09201", "pw"), True, checker.clock())  # as if checked a moment ago
    app = build_app(current, load_access(default_access_path()), checker, sender_names={}, zone_polygons={})
    auth = {"Authorization": "Basic bXVuaS0wOTIwMTpwdw=="}  # muni-09201:pw
    feed = "/feeds/municipality/09201.atom"
    async with TestClient(TestServer(app)) as client:
        first = await client.get(feed, headers=auth)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        again = await client.get(feed, headers={**auth, "If-None-Match": etag})
        since = await client.get(feed, headers={**auth, "If-Modified-Since": modified})
        stale = await client.get(
            feed, headers={**auth, "If-Modified-Since": formatdate(time.time() - 86400, usegmt=True)}
        )
        unauthenticated = await client.get(feed, headers={"If-None-Match": etag})
        current.apply(own[-1])  # 宇都宮市's newest message arrives
        app[HANDLERS].changed()
        changed = await client.get(feed, headers={**auth, "If-None-Match": etag})
        identifier = f"{own[0]['alert_id']}.{own[0]['sequence']}"
        message = await client.get(f"/cap/{identifier}.xml", headers=auth)
        message_again = await client.get(
            f"/cap/{identifier}.xml", headers={**auth, "If-None-Match": message.headers["ETag"]}
        )

    assert first.status == 200 and etag.startswith('"') and modified.endswith("GMT")
    assert (again.status, since.status, stale.status) == (304, 304, 200)
    assert again.headers["ETag"] == etag and await again.read() == b""
    assert unauthenticated.status == 401, "the validators never stand in for the login"
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert message.status == 200 and message_again.status == 304
