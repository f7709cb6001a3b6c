"""JMA's all-hazards samples (data/jma/all-hazards/*.xml.gz) for the tests: the bytes, the validated root, and an
independent reading with the standard library's ElementTree (never the hub's parsers).

The samples are JMA's, unmodified, gzip'd (data/jma/all-hazards/PROVENANCE.md). Parsing and schema validation
of 118 reports takes seconds, so each is done once per test session.
"""

from __future__ import annotations

import functools
import gzip
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ALL_HAZARDS = ROOT / "data" / "jma" / "all-hazards"
# N03 of the 45 prefectures in the repo (data/n03/japan, with its provenance), for packs built in the tests.
NATIONAL_N03 = ROOT / "data" / "n03" / "japan"


def samples(code: str) -> list[Path]:
    """The samples of one JMA code (VPWW, VXSE53, VTSE4 …), sorted by name."""
    return sorted(p for p in ALL_HAZARDS.glob("*.xml.gz") if code in p.name)


def sample_id(path: Path) -> str:
    return path.name.removesuffix(".xml.gz")


@functools.cache
def xml(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


@functools.cache
def validated(path: Path) -> Any:
    """The root the hub's parsers read: parsed safely and valid against JMA's schema (the adapter's job)."""
    from streams.official.jma_xml import parse_report

    return parse_report(xml(path))


@functools.cache
def plain(path: Path) -> ET.Element:
    """The same document read with xml.etree.ElementTree, for the tests' own reading."""
    return ET.fromstring(xml(path))


def local(element: ET.Element | None, *names: str) -> str:
    """The stripped text of the first descendant path of local names (namespace-blind), "" when absent."""
    if element is None:
        return ""
    found = element.find("/".join(f"{{*}}{n}" for n in names))
    return (found.text or "").strip() if found is not None else ""


def children(element: ET.Element | None, *names: str) -> list[ET.Element]:
    return [] if element is None else element.findall("/".join(f"{{*}}{n}" for n in names))
