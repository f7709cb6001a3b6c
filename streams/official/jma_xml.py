"""XML from the internet, parsed safely: JMA's reports (validated against JMA's schema) and its Atom feed.

Everything JMA's feeds serve is untrusted bytes until proven otherwise:

* **bounded size** before any parsing (``MAX_REPORT_BYTES``; a report is tens of kilobytes);
* **lxml** with entity resolution, DTD loading and network access off and ``huge_tree`` off, so no
  entity expansion ("billion laughs"), no external entity (XXE) and no fetch can happen; a document with
  a document type declaration at all (JMA's have none) or an entity reference is refused;
* **bounded depth, element count and children per element** (``MAX_DEPTH``, ``MAX_ELEMENTS``,
  ``MAX_CHILDREN``) checked on the parsed tree, before the schema sees it;
* **JMA's XML Schema** (``jma/schema/jmx.xsd``, shipped in the repo with its provenance), applied with
  ``xmlschema`` built with ``defuse="always"`` and ``allow="sandbox"`` (no resource outside that folder).

Every failure is a :class:`JmaXmlError` with a stable reason code (``too_large``, ``not_xml``,
``too_deep``, ``schema_invalid``) that becomes the dead letter's reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import xmlschema
from lxml import etree

from streams.platform.settings import project_root

MAX_REPORT_BYTES = 2 * 1024 * 1024
MAX_FEED_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 40
MAX_ELEMENTS = 50_000  # in a report: JMA's have hundreds
MAX_CHILDREN = 5_000  # of one element of a report (its longest list, a Warning's areas, has tens to hundreds)
MAX_FEED_ELEMENTS = 400_000  # the long feed lists a few days of entries (not schema-validated: no width bound)
TOO_LARGE, NOT_XML, TOO_DEEP, SCHEMA_INVALID = "too_large", "not_xml", "too_deep", "schema_invalid"
ATOM = {"a": "http://www.w3.org/2005/Atom"}


class JmaXmlError(Exception):
    """Bytes that are not a report the hub may read; ``reason`` is the dead letter's reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def jma_schema_path() -> Path:
    return project_root() / "jma" / "schema" / "jmx.xsd"


@functools.lru_cache(maxsize=1)
def _schema() -> xmlschema.XMLSchema:
    """JMA's schema, loaded once (about 0.4 s): local files only, defused."""
    path = jma_schema_path()
    return xmlschema.XMLSchema(str(path), defuse="always", allow="sandbox", base_url=str(path.parent))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False
    )


def _check_shape(root: etree._Element, max_elements: int, max_children: int) -> None:
    """Depth, element count and children per element within bounds; JmaXmlError otherwise.

    The bounds keep schema validation linear: xmlschema spends time proportional to an element's
    children on each of its unexpected children (2 MB of them took over ten seconds).
    """
    count, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JmaXmlError(TOO_DEEP, f"nesting deeper than {MAX_DEPTH} elements")
        children = [(child, depth + 1) for child in element]
        count += len(children)
        if len(children) > max_children:
            raise JmaXmlError(TOO_LARGE, f"an element with {len(children):,} children (at most {max_children:,})")
        if count > max_elements:
            raise JmaXmlError(TOO_LARGE, f"more than {max_elements:,} elements")
        stack.extend(children)


def parse_safely(
    data: bytes | None,
    *,
    max_bytes: int = MAX_REPORT_BYTES,
    max_elements: int = MAX_ELEMENTS,
    max_children: int = MAX_CHILDREN,
) -> etree._Element:
    """The root element of an XML document, or JmaXmlError (too large, not XML, too deep)."""
    if data is None or not data.strip():
        raise JmaXmlError(NOT_XML, "empty document")
    if len(data) > max_bytes:
        raise JmaXmlError(TOO_LARGE, f"{len(data):,} bytes (at most {max_bytes:,} accepted)")
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise JmaXmlError(NOT_XML, f"not well-formed XML: {exc}") from None
    if root is None:
        raise JmaXmlError(NOT_XML, "no root element")
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]  # lxml has it; lxml-stubs 0.5.1 lack it
        # JMA's documents have none; an internal subset could still expand entities into attribute values
        raise JmaXmlError(NOT_XML, "a document type declaration (<!DOCTYPE …>) is not accepted")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise JmaXmlError(NOT_XML, "entity references are not accepted")
    _check_shape(root, max_elements, max_children)
    return root


def parse_report(data: bytes | None) -> etree._Element:
    """A report's root element, parsed safely and valid against JMA's schema; JmaXmlError otherwise."""
    root = parse_safely(data)
    errors = []
    try:
        for error in _schema().iter_errors(root):
            errors.append(str(error.reason or error).splitlines()[0])
            if len(errors) >= 3:
                break
    except Exception as exc:  # noqa: BLE001 - the validator on untrusted text: e.g. OverflowError on year 10**40
        raise JmaXmlError(
            SCHEMA_INVALID, f"the schema validator could not read it: {type(exc).__name__}: {exc}"
        ) from None
    if errors:
        raise JmaXmlError(SCHEMA_INVALID, "; ".join(errors))
    return root


@dataclass(frozen=True)
class FeedEntry:
    """One entry of JMA's Atom PULL feed: a report's title, id, update time and the XML's URL."""

    entry_id: str
    title: str
    updated: int | None  # epoch ms
    url: str
    author: str = ""


def _entry_time(text: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat((text or "").strip()).timestamp() * 1000)
    except ValueError:
        return None


def parse_feed(data: bytes | None) -> tuple[int | None, list[FeedEntry]]:
    """JMA's Atom feed (extra.xml, extra_l.xml): the feed's updated time and its entries, oldest first."""
    root = parse_safely(data, max_bytes=MAX_FEED_BYTES, max_elements=MAX_FEED_ELEMENTS, max_children=MAX_FEED_ELEMENTS)
    if root.tag != "{http://www.w3.org/2005/Atom}feed":
        raise JmaXmlError(NOT_XML, f"not an Atom feed (root element {root.tag})")
    entries = []
    for entry in root.findall("a:entry", ATOM):
        link = entry.find("a:link", ATOM)
        url = (link.get("href") or "").strip() if link is not None else ""
        entry_id = (entry.findtext("a:id", "", ATOM) or url).strip()
        if not url or not entry_id:
            continue
        entries.append(
            FeedEntry(
                entry_id=entry_id,
                title=(entry.findtext("a:title", "", ATOM) or "").strip(),
                updated=_entry_time(entry.findtext("a:updated", "", ATOM)),
                url=url,
                author=(entry.findtext("a:author/a:name", "", ATOM) or "").strip(),
            )
        )
    entries.sort(key=lambda e: (e.updated or 0, e.entry_id))
    return _entry_time(root.findtext("a:updated", "", ATOM)), entries
