"""The refusals the parsers gained (issue 18) still end as dead letters with a reason and a metric, and the inputs
that used to crash a batch are processed."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY

from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.official.jma_xml import MAX_CHILDREN
from streams.official.lifecycle import OfficialState
from streams.official.pipeline import OfficialPipeline
from streams.packs.region_pack import load_pack
from streams.platform import metrics
from streams.platform.avro import DEAD_LETTER, OFFICIAL_REPORT, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.jma_samples import KANAGAWA, sample

STORE = default_store()


@pytest.fixture(scope="module")
def official(project_root):
    pack = load_pack(project_root / "regions" / "kanagawa")
    return OfficialPipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE)


def _message(xml: bytes, offset: int, key: bytes = b"k") -> InMessage:
    value = AvroCodec(STORE, OFFICIAL_REPORT).encode(
        {"xml": xml, "entry_id": f"e{offset}", "url": "", "fetched_at": 0, "entry_updated": None}
    )
    return InMessage("official", 0, offset, key, value, 1)


def _dead_letters_metric(reason: str) -> float:
    return REGISTRY.get_sample_value("bosai_dead_letters_total", {"region": "kanagawa", "reason": reason}) or 0.0


def test_a_report_with_a_doctype_or_too_many_children_is_dead_lettered_with_its_reason_and_counted(official):
    xml = sample(KANAGAWA[0])
    with_doctype = b'<?xml version="1.0"?><!DOCTYPE Report [<!ENTITY a "x">]>' + xml.split(b"?>", 1)[1]
    at = xml.index(b"</Head>")
    too_wide = xml[:at] + b"<Item/>" * (MAX_CHILDREN + 1) + xml[at:]
    before = {reason: _dead_letters_metric(reason) for reason in ("not_xml", "too_large")}

    result = official.process([_message(with_doctype, 0), _message(too_wide, 1)], lambda _k: OfficialState())
    metrics.observe_official_batch("kanagawa", result, started_s=0.0, finished_s=0.1, bytes_written=0, records=[])

    assert result.dead_letters == {"not_xml": 1, "too_large": 1}
    letters = [AvroCodec(STORE, DEAD_LETTER).decode(r.value) for r in result.records if r.topic.endswith("deadletter")]
    assert [(d["reason"], d["source_offset"]) for d in letters] == [("not_xml", 0), ("too_large", 1)]
    assert "DOCTYPE" in letters[0]["error_detail"] and "children" in letters[1]["error_detail"]
    assert _dead_letters_metric("not_xml") == before["not_xml"] + 1
    assert _dead_letters_metric("too_large") == before["too_large"] + 1


def test_a_report_whose_serial_is_not_an_ascii_number_is_relayed_not_a_crash_of_the_batch(official):
    """'²' passes JMA's schema (Serial is xs:string) and str.isdigit(); int() refused it mid-batch."""
    xml = re.sub(rb"<Serial>[^<]*</Serial>", "<Serial>²</Serial>".encode(), sample(KANAGAWA[0]), count=1)
    key = "土砂災害警戒情報|".encode() + re.search(rb"<EventID>([^<]+)</EventID>", xml).group(1)

    result = official.process([_message(xml, 0, key)], lambda _k: OfficialState())

    assert result.dead_letters == {} and result.alerts, result.dead_letters


def test_a_report_dated_in_a_year_past_any_calendar_is_dead_lettered_as_schema_invalid(official):
    """JMA's schema types ReportDateTime as xs:dateTime, which allows any year: the validator overflowed."""
    xml = re.sub(
        rb"<ReportDateTime>[^<]*</ReportDateTime>",
        b"<ReportDateTime>2" + b"4" * 40 + b"-08-23T22:15:00+09:00</ReportDateTime>",
        sample(KANAGAWA[0]),
        count=1,
    )

    result = official.process([_message(xml, 0)], lambda _k: OfficialState())

    assert result.dead_letters == {"schema_invalid": 1}
