"""JMA's XML from the internet (reports and the Atom feed) and the official pipeline: any bytes give a report or
one JmaXmlError / ReportError with a reason; entity bombs, external entities and DTD fetches, oversized and
too deep documents are refused — fast, without fetching anything, without growing memory."""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.official.jma_xml import (
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_FEED_BYTES,
    MAX_REPORT_BYTES,
    JmaXmlError,
    parse_feed,
    parse_report,
    parse_safely,
)
from streams.official.lifecycle import OfficialState
from streams.official.pipeline import OfficialPipeline
from streams.official.report import ReportError, prefectures_of, read_report
from streams.packs.region_pack import load_pack
from streams.platform.avro import DEAD_LETTER, OFFICIAL_REPORT, AvroCodec, default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.fuzz_contract import check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import awkward_text, dates, mutated
from tests.support.jma_samples import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
STORE = default_store()
SAMPLE_FILES = sorted(SAMPLES.glob("*.xml"))
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLE_FILES]
XML_REASONS = {"too_large", "not_xml", "too_deep"}
REPORT_REASONS = XML_REASONS | {"schema_invalid", "unhandled_kind", "unhandled_code", "missing_field"}
ATOM_NS = "http://www.w3.org/2005/Atom"
# the elements read_report reads (by local name): where an edit reaches the hub's own code
READ_FIELDS = [
    "Title", "Status", "InfoKind", "InfoType", "ReportDateTime", "DateTime", "EventID", "Serial", "Code", "Name",
    "Condition", "CityCode", "City", "WaterLevel", "Type", "Text", "Item", "Area", "Kind", "TimeDefine", "Information",
]  # fmt: skip


def _read_and_use(data: bytes):
    """The report and every derived value the hub uses (each property may fail on what the report holds)."""
    report = read_report(parse_report(data))
    return report, report.order, report.key, report.status, prefectures_of(report)


def report_or_error(data: bytes, parser: str = "jma.report"):
    return check(parser, lambda: _read_and_use(data), (JmaXmlError, ReportError), reasons=REPORT_REASONS, shown=data)


# -- any bytes, and samples edited byte by byte ------------------------------------------------------------------
@given(data=st.binary(max_size=2048))
def test_any_bytes_are_an_xml_root_or_a_jma_xml_error_with_a_reason(data):
    check("jma.parse_safely", lambda: parse_safely(data), JmaXmlError, reasons=XML_REASONS, shown=data)


@settings(max_examples=examples(60))
@given(data=st.sampled_from(SAMPLE_BYTES).flatmap(mutated))
def test_a_real_report_edited_byte_by_byte_is_a_report_or_refused_with_a_reason(data):
    report_or_error(data)


# what a field may be set to: values of other fields, dates at the ends of the calendar, numbers JMA never
# writes (digits of other scripts that str.isdigit() accepts and int() does not, 5000 digits), any text
FIELD_TEXT = st.one_of(
    st.sampled_from(
        ["10", "50", "発表", "取消", "訂正", "通常", "訓練", "試験", "土砂災害警戒情報", "指定河川洪水予報"]
    ),
    st.sampled_from(["²", "１２", "٣", "1" * 5000, "-1", "0", " 7 ", "1e400", "nan", "inf", "1.5"]),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-11-02T18:50:00Z"]),
    st.sampled_from(["10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2" + "4" * 40 + "-01-01T00:00:00Z"]),
    dates,
    awkward_text,
)


# -- samples edited element by element (they pass the parser and often the schema: the hub's own code runs) -------
@st.composite
def edited_reports(draw) -> bytes:
    """A real sample with a few edits of its tree: texts and attributes replaced, elements dropped or repeated."""
    root = etree.fromstring(draw(st.sampled_from(SAMPLE_BYTES)))
    elements = list(root.iter(etree.Element))
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from([*READ_FIELDS, "*"]))
        found = [e for e in elements if name == "*" or etree.QName(e).localname == name] or elements
        element = draw(st.sampled_from(found))
        op = draw(st.sampled_from(["text", "text", "attribute", "drop", "repeat"]))
        if op == "text":
            element.text = _xml_safe(draw(FIELD_TEXT))
        elif op == "attribute":
            attribute = draw(st.sampled_from(["type", "refID", "condition", "timeId", "unit"]))
            element.set(attribute, _xml_safe(draw(awkward_text | st.sampled_from(["水位", "1", "欠測"]))))
        elif op == "drop" and element.getparent() is not None:
            element.getparent().remove(element)
            elements = list(root.iter(etree.Element))
        elif op == "repeat" and element.getparent() is not None:
            for _copy in range(draw(st.integers(1, 3))):
                element.addnext(etree.fromstring(etree.tostring(element)))
            elements = list(root.iter(etree.Element))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _xml_safe(text: str) -> str:
    """What an XML document can carry (the edit must serialise; XML 1.0 forbids most control characters)."""
    return "".join(c for c in text if c in "\t\n\r" or (0x20 <= ord(c) < 0xD800) or 0xE000 <= ord(c) <= 0xFFFD)


@settings(max_examples=examples(150))
@given(data=edited_reports())
def test_a_real_report_edited_element_by_element_is_a_report_or_refused_with_a_reason(data):
    report_or_error(data)


LEAF_FIELDS = sorted({f for f in READ_FIELDS if f not in ("Item", "Area", "Kind", "TimeDefine", "Information")})


@settings(max_examples=examples(150))
@given(
    sample=st.sampled_from([p.name for p in SAMPLE_FILES]),
    field=st.sampled_from(LEAF_FIELDS),
    text=FIELD_TEXT,
    which=st.integers(0, 50),
)
@example(sample="16_01_01_220728_VXKOii.xml", field="Serial", text="²", which=0)  # found: ValueError in serial_number
@example(sample="17_04_01_250630_VXWW50.xml", field="Serial", text="1" * 5000, which=0)
@example(  # found by atheris: OverflowError out of the schema validator (xs:dateTime allows any year)
    sample="17_02_01_190529_VXWW50.xml", field="ReportDateTime", text="2" + "4" * 40 + "-08-23T22:15:00+09:00", which=0
)
def test_a_real_report_with_one_field_set_to_anything_is_a_report_or_refused_with_a_reason(sample, field, text, which):
    """One field the hub reads set to any text: most of these still pass JMA's schema and reach the hub's code."""
    root = etree.fromstring((SAMPLES / sample).read_bytes())
    found = [e for e in root.iter(etree.Element) if etree.QName(e).localname == field and len(e) == 0]
    if found:
        found[which % len(found)].text = _xml_safe(text)

    report_or_error(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


# -- the official pipeline: whatever a report holds, a batch gives alerts and dead letters, never an exception ----
@pytest.fixture(scope="module")
def official(project_root):
    pack = load_pack(project_root / "regions" / "kanagawa")  # the 17_04 samples are Kanagawa's: they apply
    return OfficialPipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE)


@settings(max_examples=examples(60))
@given(batch=st.lists(edited_reports() | st.sampled_from(SAMPLE_BYTES), min_size=1, max_size=4), key=awkward_text)
def test_a_batch_of_edited_reports_gives_alerts_and_dead_letters_with_reasons_never_an_exception(official, batch, key):
    codec = AvroCodec(STORE, OFFICIAL_REPORT)
    messages = []
    for offset, xml in enumerate(batch):
        try:
            right_key = read_report(parse_report(xml)).key.encode()
        except (JmaXmlError, ReportError):
            right_key = key.encode()
        value = codec.encode({"xml": xml, "entry_id": f"e{offset}", "url": "", "fetched_at": 0, "entry_updated": None})
        messages.append(InMessage("official", 0, offset, right_key if offset % 2 == 0 else key.encode(), value, 1))
    states: dict[str, OfficialState] = {}

    result = check(
        "pipeline.official",
        lambda: official.process(messages, lambda k: states.get(k, OfficialState())),
        (),
        shown=batch,
    )

    dead = [AvroCodec(STORE, DEAD_LETTER).decode(r.value) for r in result.records if r.topic.endswith(".deadletter")]
    assert all(d["reason"] and d["error_detail"] for d in dead)
    assert sum(result.dead_letters.values()) == len(dead)


# -- JMA's Atom feed -------------------------------------------------------------------------------------------------
def _feed(entries: list[dict], updated: str) -> bytes:
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    etree.SubElement(root, f"{{{ATOM_NS}}}updated").text = updated
    for e in entries:
        entry = etree.SubElement(root, f"{{{ATOM_NS}}}entry")
        for field in ("title", "id", "updated"):
            if e.get(field) is not None:
                etree.SubElement(entry, f"{{{ATOM_NS}}}{field}").text = e[field]
        if e.get("href") is not None:
            etree.SubElement(entry, f"{{{ATOM_NS}}}link", href=e["href"])
        if e.get("author") is not None:
            etree.SubElement(etree.SubElement(entry, f"{{{ATOM_NS}}}author"), f"{{{ATOM_NS}}}name").text = e["author"]
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


xml_text = (awkward_text | dates).map(_xml_safe)
feed_entries = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(["土砂災害警戒情報", "指定河川洪水予報", "記録的短時間大雨情報"]) | xml_text,
        "id": xml_text,
        "updated": dates.map(_xml_safe),
        "href": st.just("https://www.data.jma.go.jp/developer/xml/data/x.xml") | xml_text,
        "author": xml_text,
    },
)
feeds = st.builds(_feed, st.lists(feed_entries, max_size=8), dates.map(_xml_safe))


@given(data=feeds | feeds.flatmap(mutated) | st.binary(max_size=512))
def test_any_feed_gives_entries_or_a_jma_xml_error_with_a_reason(data):
    result = check("jma.feed", lambda: parse_feed(data), JmaXmlError, reasons=XML_REASONS, shown=data)
    if not isinstance(result, JmaXmlError):
        _updated, entries = result
        assert all(e.url and e.entry_id for e in entries)
        assert [e.updated or 0 for e in entries] == sorted(e.updated or 0 for e in entries)


# -- attacks, by name --------------------------------------------------------------------------------------------
def _laughs(levels: int = 10, where: str = "text") -> bytes:
    entities = "".join(f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i else "lol") * 10}">' for i in range(levels))
    use = f"&lol{levels - 1};"
    body = f"<lolz>{use}</lolz>" if where == "text" else f'<lolz a="{use}"/>'
    return f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>{body}'.encode()


BOMBS = {
    "billion laughs": _laughs(),
    "billion laughs in an attribute": _laughs(where="attribute"),
    "quadratic blowup": b'<!DOCTYPE r [<!ENTITY a "' + b"x" * 50_000 + b'">]><r>' + b"&a;" * 30_000 + b"</r>",
    "quadratic blowup in an attribute": b'<!DOCTYPE r [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]><r b="'
    + b"&a;" * 30_000
    + b'"/>',
    "an internal entity": b'<!DOCTYPE r [<!ENTITY a "harmless">]><r>&a;</r>',
    "an internal entity in an attribute": b'<!DOCTYPE r [<!ENTITY a "harmless">]><r b="&a;"/>',
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_an_entity_bomb_is_refused_at_once(name):
    started = time.perf_counter()

    refused = check("jma.attacks", lambda: parse_safely(BOMBS[name]), JmaXmlError, reasons=XML_REASONS, shown=name)

    assert isinstance(refused, JmaXmlError) and refused.reason == "not_xml", refused
    assert time.perf_counter() - started < 0.5


def test_entity_bombs_do_not_grow_memory():
    """In a fresh interpreter: the peak RSS after parsing every bomb is within a few MB of the peak before."""
    script = textwrap.dedent(
        """
        from tests.fuzz.test_fuzz_jma_xml import BOMBS
        from streams.official.jma_xml import JmaXmlError, parse_safely

        def peak_kb():
            return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])

        parse_safely(b"<r/>")
        before = peak_kb()
        for _ in range(20):
            for bomb in BOMBS.values():
                try:
                    parse_safely(bomb)
                except JmaXmlError:
                    pass
        print(peak_kb() - before)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)

    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) < 16 * 1024  # kB


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        body = b'<!ENTITY leak "fetched">' if self.path.endswith(".dtd") else b"<x>fetched</x>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def trap():
    """A loopback HTTP server that records every request: nothing the parser reads may reach it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fetching_documents(url: str, secret: Path) -> dict[str, bytes]:
    report = SAMPLE_BYTES[0].decode("utf-8")
    head, _, rest = report.partition("<Report")
    return {
        "external entity (http)": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/x.xml">]><r>&x;</r>'.encode(),
        "external entity (file)": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]><r>&x;</r>'.encode(),
        "external entity in an attribute": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/a.xml">]><r a="&x;"/>'.encode(),
        "external DTD": f'<!DOCTYPE r SYSTEM "{url}/r.dtd"><r>&leak;</r>'.encode(),
        "external DTD, no reference": f'<!DOCTYPE r SYSTEM "{url}/plain.dtd"><r/>'.encode(),
        "parameter entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><r>&leak;</r>'.encode(),
        "XInclude": f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/inc.xml"/></r>'.encode(),
        "a valid report with an xsi:schemaLocation": (
            f'{head}<Report xsi:schemaLocation="http://xml.kishou.go.jp/jmaxml1/ {url}/jmx.xsd" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{rest}'
        ).encode(),
    }


def test_no_document_makes_the_parser_fetch_anything_or_read_a_local_file(trap, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    _Counting.requests.clear()

    outcomes = {}
    for name, document in _fetching_documents(trap, secret).items():
        result = check("jma.attacks", lambda d=document: read_report(parse_report(d)), (JmaXmlError, ReportError))
        outcomes[name] = result.reason if isinstance(result, Exception) else "read"
        text = str(result) if isinstance(result, Exception) else repr(result)
        assert "TOP-SECRET" not in text and "fetched" not in text, name

    assert _Counting.requests == [], f"the parser fetched {_Counting.requests}"
    assert all(outcome == "not_xml" for name, outcome in outcomes.items() if "DTD" in name or "entity" in name), (
        outcomes
    )
    assert outcomes["XInclude"] == "schema_invalid"  # the include is an element of an unknown document, not followed
    assert outcomes["a valid report with an xsi:schemaLocation"] == "read"  # the hint is ignored, not followed


def test_an_oversized_report_or_feed_is_refused_before_it_is_parsed():
    report = b"<r>" + b"x" * MAX_REPORT_BYTES + b"</r>"
    feed = b"<feed>" + b"x" * MAX_FEED_BYTES + b"</feed>"

    started = time.perf_counter()
    refused = [
        check("jma.attacks", lambda: parse_report(report), JmaXmlError),
        check("jma.attacks", lambda: parse_feed(feed), JmaXmlError),
    ]

    assert [r.reason for r in refused] == ["too_large", "too_large"]
    assert time.perf_counter() - started < 0.5  # (nothing parsed)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 100_000])
def test_a_document_nested_too_deep_is_refused(depth):
    nested = b"<a>" * depth + b"</a>" * depth

    refused = check("jma.attacks", lambda: parse_safely(nested), JmaXmlError)

    assert refused.reason in ("too_deep", "not_xml")


def _inserted(filler: bytes) -> bytes:
    sample = SAMPLE_BYTES[0]
    at = sample.index(b"</Head>")
    return sample[:at] + filler + sample[at:]


@pytest.mark.parametrize(
    "shape",
    ["as many children of one element as accepted", "as many elements as accepted", "as many bytes as accepted"],
)
def test_the_largest_documents_accepted_are_read_in_bounded_time(shape):
    """Documents at the caps pass the parser and reach the schema, which refuses them within seconds."""
    group = b"<Item>" + b"<Kind/>" * (MAX_CHILDREN - 1) + b"</Item>"
    filler = {
        "as many children of one element as accepted": b"<Item/>" * (MAX_CHILDREN - 20),
        "as many elements as accepted": group * ((MAX_ELEMENTS - 1000) // MAX_CHILDREN),
        "as many bytes as accepted": b"<Item>" + b"x" * (MAX_REPORT_BYTES - 30_000) + b"</Item>",
    }[shape]
    document = _inserted(filler)
    assert len(document) <= MAX_REPORT_BYTES

    started = time.perf_counter()
    result = report_or_error(document, "jma.attacks")

    assert isinstance(result, JmaXmlError) and result.reason == "schema_invalid", result
    assert time.perf_counter() - started < 3.0


def test_too_many_elements_or_children_are_refused_before_the_schema_sees_them():
    group = b"<Item>" + b"<Kind/>" * (MAX_CHILDREN - 1) + b"</Item>"
    wide = _inserted(b"<Item/>" * (MAX_CHILDREN + 1))
    many = _inserted(group * (MAX_ELEMENTS // MAX_CHILDREN + 1))

    refused = [check("jma.attacks", lambda d=d: parse_report(d), JmaXmlError) for d in (wide, many)]

    assert [r.reason for r in refused] == ["too_large", "too_large"]
    assert "children" in refused[0].detail and "elements" in refused[1].detail
