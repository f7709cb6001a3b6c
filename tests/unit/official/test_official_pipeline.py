"""Official reports through one batch: dead letters, fan-out, river readings, and CAP rendering as JMA's."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from streams.delivery import cap
from streams.delivery.cap_schema import cap_validation_errors
from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.official.jma_xml import parse_report
from streams.official.lifecycle import OfficialState
from streams.official.pipeline import OfficialPipeline
from streams.official.report import read_report
from streams.packs.region_init import init_pack
from streams.packs.region_pack import load_pack
from streams.platform.avro import ALERT, DEAD_LETTER, OFFICIAL_REPORT, READING, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.jma_samples import (
    FUKUOKA,
    FUKUOKA_N03,
    KANAGAWA,
    ROKKAKU,
    as_exercise,
    edited,
    kanagawa_record_rain,
    saga_pack_with_gauge,
    sample,
    with_area_status,
)

STORE = default_store()
CAP_NS = {"cap": cap.CAP_NS}


def key_of(xml: bytes) -> bytes:
    return read_report(parse_report(xml)).key.encode()


def message(xml: bytes, offset: int = 0, key: bytes | None = None) -> InMessage:
    value = AvroCodec(STORE, OFFICIAL_REPORT).encode(
        {"xml": xml, "entry_id": f"e{offset}", "url": "", "fetched_at": 0, "entry_updated": None}
    )
    return InMessage("official", 0, offset, key if key is not None else key_of(xml), value, 1)


class Hub:
    """One region's official pipeline with its table as a dict."""

    def __init__(self, pack):
        self.pack = pack
        self.topics = HubTopics.for_region(load_catalog(default_catalog_path()), pack)
        self.pipeline = OfficialPipeline(pack, self.topics, STORE, clock=lambda: 0.0)
        self.states: dict[str, OfficialState] = {}

    def process(self, messages):
        result = self.pipeline.process(messages, lambda key: self.states.get(key, OfficialState()))
        self.states.update(result.states)
        return result


@pytest.fixture(scope="module")
def kanagawa(project_root):
    return load_pack(project_root / "regions" / "kanagawa")


@pytest.fixture(scope="module")
def fukuoka(tmp_path_factory):
    return init_pack("fukuoka", FUKUOKA_N03, None, tmp_path_factory.mktemp("packs") / "fukuoka")


@pytest.fixture(scope="module")
def saga(tmp_path_factory):
    return load_pack(saga_pack_with_gauge(tmp_path_factory.mktemp("packs")))


def alerts_of(result):
    return [(a.record, set(a.topics)) for a in result.alerts]


def test_the_kanagawa_sequence_reaches_each_town_topic_and_no_other(kanagawa):
    hub = Hub(kanagawa)

    result = hub.process([message(sample(p), i) for i, p in enumerate(KANAGAWA)])

    prefix = "bosai.kanagawa"
    assert result.dead_letters == {} and result.reports == {"jma_landslide/applied": 3}
    for record, topics in alerts_of(result):
        (code,) = record["municipality_codes"]
        assert topics == {f"{prefix}.alerts", f"{prefix}.alerts.{code}", f"{prefix}.alerts.public"}
        assert record["source"] == "jma" and record["status"] == "Actual"
        assert record["official"]["credit"] == "出典：気象庁" and "出典：気象庁" in record["headline"]
    per_town = {}
    for record, _ in alerts_of(result):
        per_town.setdefault(record["municipality_codes"][0], []).append(record["msg_type"])
    assert per_town == {c: ["ALERT", "CANCEL"] for c in ("14206", "14382", "14383", "14384")}


def test_fukuoka_starting_mid_event_alerts_every_area_under_warning_and_kitakyushu_reaches_every_ward(fukuoka):
    hub = Hub(fukuoka)
    report = read_report(parse_report(sample(FUKUOKA)))
    under_warning = {a.code for a in report.areas if a.status in ("発表", "継続")}

    result = hub.process([message(sample(FUKUOKA))])

    alerts = {record["station_id"]: (record, topics) for record, topics in alerts_of(result)}
    assert set(alerts) == under_warning and len(under_warning) == 25
    assert all(r["msg_type"] == "ALERT" for r, _ in alerts.values())
    record, topics = alerts["4010000"]  # 北九州市, named whole: the city and its 7 wards
    assert record["municipality_codes"] == ["40100", *fukuoka.wards_of("40100")]
    assert {f"bosai.fukuoka.alerts.{w}" for w in fukuoka.wards_of("40100")} <= topics
    assert alerts["4030500"][0]["municipality_codes"] == ["40231"]  # 那珂川町 → 那珂川市
    # 福岡市 is 解除 in this report and nothing was open: by the reconcile rule, nothing is sent for it
    assert "4013000" not in alerts


def test_fukuoka_city_named_whole_under_warning_reaches_every_ward(fukuoka):
    fukuoka_city_warned = with_area_status(sample(FUKUOKA), "福岡市", "継続")  # EDIT: 福岡市 継続 instead of 解除

    result = Hub(fukuoka).process([message(fukuoka_city_warned)])

    record, topics = next((r, t) for r, t in alerts_of(result) if r["station_id"] == "4013000")
    assert record["municipality_codes"] == ["40130", *fukuoka.wards_of("40130")] and len(fukuoka.wards_of("40130")) == 7
    assert topics == {"bosai.fukuoka.alerts", "bosai.fukuoka.alerts.public"} | {
        f"bosai.fukuoka.alerts.{w}" for w in fukuoka.wards_of("40130")
    }


def test_the_flood_forecast_alerts_its_municipalities_and_reads_only_the_observed_level(saga):
    hub = Hub(saga)

    result = hub.process([message(sample(ROKKAKU))])

    ((record, topics),) = alerts_of(result)
    assert record["municipality_codes"] == ["41206", "41209", "41423", "41424", "41425"]
    assert record["event"] == "氾濫警戒情報" and record["level"] == "警戒レベル3相当"
    assert record["official"]["text"].startswith("【警戒レベル３相当】")
    readings = [AvroCodec(STORE, READING).decode(r.value) for r in result.records if r.topic == hub.topics.raw]
    assert [(r["station_id"], r["observed_at"], r["measurements"][0]["value"]) for r in readings] == [
        ("R-41-001", 1628834400000, 2.53)
    ]


def test_a_duplicate_flood_forecast_writes_no_reading_again(saga):
    hub = Hub(saga)
    hub.process([message(sample(ROKKAKU))])

    again = hub.process([message(sample(ROKKAKU), 1)])

    assert again.records == [] and again.reports == {"jma_flood/duplicate": 1}


def test_an_exercise_stays_on_the_prefecture_topic(kanagawa):
    result = Hub(kanagawa).process([message(as_exercise(sample(KANAGAWA[0])))])

    for record, topics in alerts_of(result):
        assert record["status"] == "Exercise" and topics == {"bosai.kanagawa.alerts"}


def test_reports_of_another_prefecture_are_skipped_and_counted(kanagawa):
    result = Hub(kanagawa).process([message(sample(ROKKAKU)), message(sample(FUKUOKA), 1)])

    assert result.records == [] and result.dead_letters == {}
    assert result.reports == {"jma_flood/other_prefecture": 1, "jma_landslide/other_prefecture": 1}
    assert result.areas_skipped == 5 + 60


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: InMessage("official", 0, 0, b"k", b"\x01garbage", 1), "undecodable"),
        (lambda: InMessage("official", 0, 0, b"k", b"\x00garbage", 1), "unknown_schema"),  # a Confluent id unknown
        (lambda: message(b"<not xml", key=b"k"), "not_xml"),
        (
            lambda: message(edited(sample(KANAGAWA[0]), ("<Serial>1</Serial>", "<Serial>1</Serial><X/>")), key=b"k"),
            "schema_invalid",
        ),  # fmt: skip
        (
            lambda: message(
                edited(
                    sample(KANAGAWA[0]),
                    ("<Title>土砂災害警戒情報</Title>", "<Title>気象警報・注意報</Title>"),
                    ("<InfoKind>土砂災害警戒情報</InfoKind>", "<InfoKind>気象警報・注意報</InfoKind>"),
                ),
                key=b"k",
            ),
            "unhandled_kind",
        ),
        (lambda: message(sample(KANAGAWA[0]), key=b"another|key"), "wrong_key"),
        (
            lambda: message(edited(sample(KANAGAWA[0]), ("<Code>1438400</Code>", "<Code>1439900</Code>"))),
            "unknown_area",
        ),  # fmt: skip
    ],
    ids=["not-avro", "unknown-registry-id", "not-xml", "off-schema", "other-kind", "wrong-key", "unknown-own-area"],
)
def test_anything_unusable_is_dead_lettered_whole_with_its_reason(kanagawa, make, reason):
    bad = make()

    result = Hub(kanagawa).process([bad])

    ((out),) = result.records
    dead = AvroCodec(STORE, DEAD_LETTER).decode(out.value)
    assert out.topic == "bosai.kanagawa.deadletter" and result.dead_letters == {reason: 1}
    assert (dead["reason"], dead["original_value"], dead["stage"]) == (reason, bad.value, "official")
    assert result.alerts == []


def test_one_bad_report_does_not_hold_back_the_good_ones(kanagawa):
    result = Hub(kanagawa).process([message(b"<nope", key=b"x"), message(sample(KANAGAWA[0]), 1)])

    assert result.dead_letters == {"not_xml": 1} and len(result.alerts) == 3


# -- CAP ------------------------------------------------------------------------------------------------


def relayed_records(kanagawa, fukuoka, saga):
    records = [a.record for a in Hub(kanagawa).process([message(sample(p), i) for i, p in enumerate(KANAGAWA)]).alerts]
    records += [a.record for a in Hub(kanagawa).process([message(as_exercise(sample(KANAGAWA[0])))]).alerts]
    records += [a.record for a in Hub(kanagawa).process([message(kanagawa_record_rain())]).alerts]
    records += [a.record for a in Hub(fukuoka).process([message(sample(FUKUOKA))]).alerts]
    records += [a.record for a in Hub(saga).process([message(sample(ROKKAKU))]).alerts]
    return records


def test_every_relayed_alert_is_valid_cap_and_jma_s_own(kanagawa, fukuoka, saga):
    records = relayed_records(kanagawa, fukuoka, saga)

    for record in records:
        assert AvroCodec(STORE, ALERT).decode(AvroCodec(STORE, ALERT).encode(record)) == record
        document = cap.render(record)
        assert cap_validation_errors(document) == [], record["alert_id"]
        root = ET.fromstring(document)
        official = record["official"]
        assert root.findtext("cap:sender", namespaces=CAP_NS) == f"jma-relay-{record['region']}@bosai-hub.invalid"
        assert root.findtext("cap:sent", namespaces=CAP_NS) == cap.cap_time(official["report_datetime"])
        assert root.findtext("cap:sent", namespaces=CAP_NS).endswith("+09:00")
        assert root.findtext("cap:status", namespaces=CAP_NS) == record["status"]
        info = root.find("cap:info", CAP_NS)
        assert "出典：気象庁" in info.findtext("cap:description", namespaces=CAP_NS)
        assert "出典：気象庁" in info.findtext("cap:senderName", namespaces=CAP_NS)
        assert info.find("cap:instruction", CAP_NS) is None  # no words of the hub's own added to JMA's
        parameters = {p.findtext("cap:valueName", namespaces=CAP_NS): p.findtext("cap:value", namespaces=CAP_NS)
                      for p in info.findall("cap:parameter", CAP_NS)}  # fmt: skip
        assert (parameters["EventID"], parameters["Serial"], parameters["InfoType"]) == (
            official["event_id"],
            official["serial"],
            official["info_type"],
        )
    assert {r["status"] for r in records} == {"Actual", "Exercise"}


def test_record_rain_carries_cap_expires_and_the_feed_treats_it_as_ended_then(kanagawa):
    from streams.delivery.atom import CurrentAlerts

    (record,) = [a.record for a in Hub(kanagawa).process([message(kanagawa_record_rain())]).alerts]
    document = ET.fromstring(cap.render(record))
    alerts = CurrentAlerts()
    alerts.apply(record)

    assert document.findtext("cap:info/cap:expires", namespaces=CAP_NS) == cap.cap_time(record["expires"])
    assert alerts.current(now_ms=record["expires"] - 1) == [record]
    assert alerts.current(now_ms=record["expires"]) == []


def test_a_relayed_cancel_references_the_relay_s_own_earlier_message(kanagawa):
    result = Hub(kanagawa).process([message(sample(p), i) for i, p in enumerate(KANAGAWA)])
    cancel = next(a.record for a in result.alerts if a.record["msg_type"] == "CANCEL")

    references = ET.fromstring(cap.render(cancel)).findtext("cap:references", namespaces=CAP_NS)

    sender, identifier, sent = references.split(",")
    assert sender == "jma-relay-kanagawa@bosai-hub.invalid" and identifier.endswith(".0") and sent.endswith("+09:00")


def test_tail_shows_relayed_alerts_and_official_reports_as_lines(kanagawa):
    from streams.ops.tail import as_line

    xml = as_exercise(sample(KANAGAWA[0]))
    (record, *_) = [a.record for a in Hub(kanagawa).process([message(xml)]).alerts]
    report = AvroCodec(STORE, OFFICIAL_REPORT).decode(message(xml).value)

    alert_line = as_line("Alert", record)
    report_line = as_line("OfficialReport", dict(report, entry_title="土砂災害警戒情報"))

    assert "[Exercise]" in alert_line and "出典：気象庁" in alert_line and record["alert_id"] in alert_line
    assert "土砂災害警戒情報" in report_line and f"{len(xml):,} bytes" in report_line


def test_an_official_batch_is_counted_by_rule_outcome_and_skipped_areas(kanagawa):
    from streams.platform import metrics

    result = Hub(kanagawa).process([message(sample(KANAGAWA[0])), message(sample(ROKKAKU), 1)])
    applied = metrics.OFFICIAL_REPORTS.labels("kanagawa", "jma_landslide", "applied")
    other = metrics.OFFICIAL_REPORTS.labels("kanagawa", "jma_flood", "other_prefecture")
    skipped = metrics.OFFICIAL_AREAS_SKIPPED.labels("kanagawa")
    before = (applied._value.get(), other._value.get(), skipped._value.get())

    metrics.observe_official_batch("kanagawa", result, started_s=0.0, finished_s=0.1, bytes_written=0, records=[])

    assert (applied._value.get(), other._value.get(), skipped._value.get()) == (
        before[0] + 1,
        before[1] + 1,
        before[2] + 5,
    )


def test_the_wall_clock_ends_expiring_alerts_only_and_cancels_stay_by_event_time(kanagawa):
    from streams.delivery.atom import CurrentAlerts

    records = [a.record for a in Hub(kanagawa).process([message(sample(p), i) for i, p in enumerate(KANAGAWA)]).alerts]
    (rain,) = [a.record for a in Hub(kanagawa).process([message(kanagawa_record_rain())]).alerts]
    alerts = CurrentAlerts()
    for record in [*records, rain]:
        alerts.apply(record)
    years_later = records[-1]["observed_at"] + 10 * 365 * 86_400_000

    current = alerts.current(now_ms=years_later)

    assert {r["msg_type"] for r in current} == {"CANCEL"} and len(current) == 4  # the all-clears, still listed
    assert rain not in current
