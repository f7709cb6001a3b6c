"""Every area of every all-hazards sample resolves to municipalities of its prefecture, through a pack that
``region init`` builds from that prefecture's N03 alone (data/n03/japan, in the repo).

The areas are read by the test itself (ElementTree), then resolved with the pack's tables. What does not resolve
is listed with its reason; the only reasons allowed are the two the data explains: the prefecture has no N03 in
the repo's N03 set (08 茨城県, 33 岡山県), the sample names a municipality that no longer exists (JMA's
2008–2010 earthquake samples name towns merged since, and provisional 999xx codes), or the sample's code is
malformed (one: 清瀬市 132100 in JMA's 2009 竜巻注意情報).
"""

from __future__ import annotations

from collections import Counter

import pytest

from streams.packs.jma_areas import OTHER, OWN, areas_of
from tests.support.all_hazards import children, local, plain, sample_id, samples

ALL = samples("VPWW") + samples("VXSE") + samples("VTSE") + samples("VPHW")
NO_N03 = {"08", "33"}  # 茨城県, 岡山県: not in the N03 set


@pytest.fixture(scope="module")
def packs(prefecture_packs):
    """A pack per prefecture with N03 in data/n03/japan, built by region init (conftest.py)."""
    return prefecture_packs


def named_areas(path):
    """(how, prefecture or "", code, name) of every area the sample names, by the test's own reading."""
    root = plain(path)
    body = next(e for e in root if e.tag.endswith("Body"))
    out = []
    for warning in children(body, "Warning"):
        level = warning.get("type", "")
        how = "municipal" if level.endswith("（市町村等）") else None if "高潮予報区間" in level else "forecast"
        if how is None:
            continue  # a stretch of coast (VPWW57): no municipalities of its own, the 市町村等 items carry them
        out += [(how, "", local(i, "Area", "Code"), local(i, "Area", "Name")) for i in children(warning, "Item")]
    for pref in children(body, "Intensity", "Observation", "Pref"):
        for area in children(pref, "Area"):
            out.append(("earthquake", local(pref, "Code"), local(area, "Code"), local(area, "Name")))
            out += [("municipal", "", local(c, "Code"), local(c, "Name")) for c in children(area, "City")]
    for part in ("Forecast", "Observation", "Estimation"):
        out += [
            ("tsunami", "", local(i, "Area", "Code"), local(i, "Area", "Name"))
            for i in children(body, "Tsunami", part, "Item")
            if local(i, "Area", "Code")  # an offshore station (VTSE52) has no 津波予報区
        ]
    return out


def resolve(packs, how, pref, code):
    """The kind of the area for the pack of its prefecture (tsunami: every pack whose coast it is)."""
    if how == "tsunami":
        return OWN if any(areas_of(p).tsunami_area(code).kind == OWN for p in packs.values()) else "unknown"
    prefecture = pref or code[:2]
    pack = packs.get(prefecture)
    if pack is None:
        return "no_n03"
    areas = areas_of(pack)
    found = {"municipal": areas.municipal, "forecast": areas.forecast}.get(how)
    return (found(code) if found else areas.earthquake_area(code, pref)).kind


def reason_for(packs, how, pref, code):
    prefecture = pref or code[:2]
    if how == "tsunami":
        return "no_n03" if code in {"300", "560"} else "unexplained"  # 茨城県, 岡山県 (their packs cannot be built)
    if prefecture in NO_N03:
        return "no_n03"
    pack = packs[prefecture]
    if how == "municipal" and len(code) != 7:
        return "malformed_code"  # JMA's 2009 竜巻注意情報 sample names 清瀬市 132100 (it is 1322100)
    if how == "municipal" and code[:5] not in {m.code for m in pack.municipalities} | set(pack.designated_cities):
        return "no_longer_a_municipality"
    return "unexplained"


def test_every_sample_area_resolves_to_municipalities_of_its_prefecture_or_is_explained(packs):
    named = Counter()
    unresolved: dict[tuple, set[str]] = {}
    for path in ALL:
        for how, pref, code, name in named_areas(path):
            named[how] += 1
            kind = resolve(packs, how, pref, code)
            assert kind != OTHER, (sample_id(path), how, code, name)  # its own prefecture's pack knows it
            if kind != OWN:
                unresolved.setdefault((reason_for(packs, how, pref, code), how, code, name), set()).add(sample_id(path))
    reasons = Counter(reason for reason, *_ in unresolved)
    print(f"\nareas named {dict(named)}; unresolved (distinct) {dict(reasons)}")
    for (reason, how, code, name), where in sorted(unresolved.items()):
        print(f"  {reason:26} {how:10} {code} {name}  ({len(where)} samples)")

    assert named == {"forecast": 464, "municipal": 6622, "earthquake": 887, "tsunami": 1025}
    assert set(reasons) <= {"no_n03", "no_longer_a_municipality", "malformed_code"}, [
        k for k in unresolved if k[0] == "unexplained"
    ]
    assert (reasons["no_longer_a_municipality"], reasons["malformed_code"]) == (72, 1)


def test_kanagawa_sample_areas_resolve_in_the_pack_region_init_builds(packs):
    kanagawa = areas_of(packs["14"])

    assert kanagawa.tsunami_area("330").kind == OWN and kanagawa.tsunami_area("312").kind == OWN
    assert kanagawa.tsunami_area("380").kind == OTHER  # 静岡県's coast
    assert set(kanagawa.earthquake_area("360", "14").municipality_codes) >= {"14100", "14101", "14201"}
    assert kanagawa.earthquake_area("999", "14").kind == "unknown"  # its prefecture, an area it does not know
    assert kanagawa.forecast("140010").kind == OWN  # 東部 (竜巻注意情報's 一次細分区域)
