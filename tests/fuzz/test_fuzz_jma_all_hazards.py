"""JMA's all-hazards reports (warnings, earthquakes, tsunami, tornado): any edit of a real sample gives a value or
one JmaXmlError / ReportError (the parsers' WarningError, QuakeError, TsunamiError, TornadoError) with a reason —
never another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from streams.official.jma_xml import JmaXmlError, parse_report
from streams.official.kinds import read_any
from streams.official.quake import QuakeReport
from streams.official.report import ReportError
from streams.official.tornado import TornadoReport
from streams.official.tsunami import TsunamiReport
from streams.official.warnings import WarningReport
from tests.support.all_hazards import ALL_HAZARDS, xml
from tests.support.fuzz_contract import check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import awkward_text, dates, mutated

REASONS = {"too_large", "not_xml", "too_deep", "schema_invalid", "unhandled_kind", "unhandled_code", "missing_field"}
# a small sample of each kind with a body (schema validation dominates the time of a case)
SEEDS = [
    xml(ALL_HAZARDS / f"{name}.xml.gz")
    for name in (
        "15_08_05_130412_VPWW53", "15_15_01_220314_VPWW54", "15_16_01_241031_VPWW56", "15_16_08_250630_VPWW57",
        "32-35_08_01_100915_VXSE51", "33_12_01_240613_VXSE52", "32-35_04_04_240613_VXSE53", "32-35_01_03_100514_VXSE53",
        "38-39_02_04_250206_VTSE41", "38-39_02_05_250206_VTSE51", "61_11_01_250206_VTSE52",
        "19_02_01_111226_VPHW50", "19_06_01_140425_VPHW51",
    )
]  # fmt: skip
# the elements these parsers read (by local name)
FIELDS = [
    "Title", "Status", "InfoKind", "InfoType", "ReportDateTime", "ValidDateTime", "EventID", "Serial", "Code", "Name",
    "Condition", "MaxInt", "Coordinate", "Magnitude", "OriginTime", "ArrivalTime", "TsunamiHeight", "DateTime",
    "Initial", "Sensor", "ChangeStatus", "HighTideDateTime", "Text",
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(["5-", "5+", "7", "8", "0", "NaN", "-1", "1e400", "inf", "", " ", "発表", "解除", "継続", "なし"]),
    st.sampled_from(["+39.0+140.9-10000/", "-36.1-072.6/", "+99.0+999.9/", "+39+140", "/", "++1/", "+1.+2./"]),
    st.sampled_from(["52", "53", "62", "71", "00", "99", "レベル６大雨警報", "大雨警報", "大雨", "レベル２"]),
    dates,
    awkward_text,
)


def _xml_safe(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or (0x20 <= ord(c) < 0xD800) or 0xE000 <= ord(c) <= 0xFFFD)


def _use(report: object) -> object:
    """Every derived value the lifecycle will use (each may fail on what the report holds)."""
    if isinstance(report, WarningReport):
        return [
            (a.in_effect, [(k.switched_from, k.warning_level) for k in a.kinds]) for a in report.municipal
        ], report.prefectures
    if isinstance(report, QuakeReport):
        return report.vxse, report.distant, report.prefectures, report.head.order, report.head.event_ids
    if isinstance(report, TsunamiReport):
        return report.vtse, [(a.grade, a.warning) for a in report.forecast], report.head.status
    if isinstance(report, TornadoReport):
        return report.vphw, report.sighted, report.first_areas, report.municipal, report.prefectures
    return report


def value_or_error(data: bytes) -> None:
    check(
        "jma.all_hazards",
        lambda: _use(read_any(parse_report(data))),
        (JmaXmlError, ReportError),
        reasons=REASONS,
        shown=data,
    )


@settings(max_examples=examples(40))
@given(data=st.sampled_from(SEEDS).flatmap(mutated))
def test_a_sample_edited_byte_by_byte_is_a_report_or_refused_with_a_reason(data):
    value_or_error(data)


@st.composite
def edited(draw) -> bytes:
    """A real sample with a few edits of its tree: texts replaced, elements dropped or repeated."""
    root = etree.fromstring(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        elements = list(root.iter(etree.Element))
        name = draw(st.sampled_from([*FIELDS, "*"]))
        found = [e for e in elements if name == "*" or etree.QName(e).localname == name] or elements
        element = draw(st.sampled_from(found))
        op = draw(st.sampled_from(["text", "text", "text", "drop", "repeat"]))
        if op == "text":
            element.text = _xml_safe(draw(TEXT))
        elif op == "drop" and element.getparent() is not None:
            element.getparent().remove(element)
        elif op == "repeat" and element.getparent() is not None:
            element.addnext(etree.fromstring(etree.tostring(element)))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@settings(max_examples=examples(120))
@given(data=edited())
def test_a_sample_edited_element_by_element_is_a_report_or_refused_with_a_reason(data):
    value_or_error(data)


@settings(max_examples=examples(120))
@given(seed=st.sampled_from(range(len(SEEDS))), field=st.sampled_from(FIELDS), text=TEXT, which=st.integers(0, 50))
def test_a_sample_with_one_field_set_to_anything_is_a_report_or_refused_with_a_reason(seed, field, text, which):
    """One field the parsers read set to any text: many of these still pass JMA's schema and reach the parsers."""
    root = etree.fromstring(SEEDS[seed])
    found = [e for e in root.iter(etree.Element) if etree.QName(e).localname == field and len(e) == 0]
    if found:
        found[which % len(found)].text = _xml_safe(text)

    value_or_error(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
