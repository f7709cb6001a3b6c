"""Each prefecture sees only its own: the access file generated over packs built from data (here 福岡 and its
neighbour 佐賀; the 45 of `bosai region init-all` are the same code), checked against every concrete topic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.kernel.access import AccessPolicy, Grant, Principal
from streams.kernel.topics import expand
from streams.packs.national import init_all
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.topic_catalog import default_catalog_path, load_catalog


@pytest.fixture(scope="module")
def packs_dir(project_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("national")
    n03 = base / "n03"
    n03.mkdir()
    for code in ("40", "41"):
        (n03 / f"N03-21_{code}.geojson.gz").write_bytes(
            (project_root / f"data/n03/japan/N03-21_{code}.geojson.gz").read_bytes()
        )
    init_all(n03, project_root / "data/amedas/japan-stations.csv", base / "packs", sharing="public")
    return base / "packs"


@pytest.fixture(scope="module")
def packs(packs_dir):
    return [load_pack(packs_dir / name) for name in ("fukuoka", "saga")]


@pytest.fixture(scope="module")
def policy(packs, tmp_path_factory) -> AccessPolicy:
    path = tmp_path_factory.mktemp("access") / "access.yaml"
    path.write_text(render(generate(packs, load_catalog(default_catalog_path()))), encoding="utf-8")
    return load_access(path)


@pytest.fixture(scope="module")
def topics(packs) -> dict[str, tuple[str, str | None, str]]:
    """Every concrete topic of the two packs: name -> (region, municipality code, catalog id)."""
    specs = expand(load_catalog(default_catalog_path()), [p.topics_input() for p in packs])
    return {s.name: (s.region, s.municipality_code, s.catalog_id) for s in specs}


def _matches(grant: Grant, topic: str) -> bool:
    return topic.startswith(grant.name) if grant.pattern == "prefixed" else topic == grant.name


def _readable(principal: Principal, topics: dict[str, tuple[str, str | None, str]]) -> set[str]:
    grants = [g for g in principal.grants if g.resource == "topic" and "read" in g.operations]
    return {t for t in topics if any(_matches(g, t) for g in grants)}


def test_every_municipality_and_prefecture_has_a_principal(policy, packs):
    names = {p.name for p in policy.principals}
    for pack in packs:
        assert f"pref-{pack.name}" in names
        own = {m.code for m in pack.municipalities if not m.city_code} | set(pack.designated_cities)
        assert {f"muni-{c}" for c in own} <= names
        assert not {f"muni-{m.code}" for m in pack.municipalities if m.city_code} & names  # wards: their city
    assert {"muni-40100", "muni-40130"} <= names  # 北九州市, 福岡市


def test_a_prefecture_reads_its_own_topics_and_nothing_of_the_other(policy, packs, topics):
    for pack in packs:
        readable = _readable(policy.principal(f"pref-{pack.name}"), topics)
        assert readable and {topics[t][0] for t in readable} == {pack.name}
        own_alerts = {t for t, (region, _, topic_id) in topics.items() if region == pack.name and "alerts" in topic_id}
        assert own_alerts <= readable


def test_a_municipality_reads_only_its_own_alerts_topics(policy, packs, topics):
    by_name = {p.name: p for p in packs}
    municipal = [p for p in policy.principals if p.role == "municipality"]
    assert len(municipal) == sum(
        len([m for m in p.municipalities if not m.city_code]) + len(p.designated_cities) for p in packs
    )
    for principal in municipal:
        pack = by_name[principal.region]
        code = principal.name.removeprefix("muni-")
        readable = _readable(principal, topics)
        assert {topics[t][:2] for t in readable} == {(pack.name, c) for c in pack.codes_read_by(code)}
        assert all(g.name.startswith(f"{principal.name}.") for g in principal.grants if g.resource == "group")


def test_no_reader_but_public_crosses_a_prefecture_and_only_the_hub_writes(policy, topics):
    for principal in policy.principals:
        if principal.role in ("hub", "public"):
            continue
        assert len({topics[t][0] for t in _readable(principal, topics)}) == 1, principal.name
    public = _readable(policy.principal("public"), topics)
    assert {topics[t][2] for t in public} == {"alerts.public"}
    assert {b.principal for b in policy.bindings() if b.operation == "write"} == {"User:hub"}


def test_generate_over_a_folder_of_packs_writes_the_given_file(packs_dir, tmp_path, project_root):
    out = tmp_path / "access.yaml"
    committed = (project_root / "topics/access.yaml").read_text(encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "access",
            "generate",
            "--regions-dir",
            str(packs_dir),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "2 packs" in result.stdout and "2 prefecture" in result.stdout and "ACL bindings" in result.stdout
    assert load_access(out).principal("pref-saga") is not None
    assert (project_root / "topics/access.yaml").read_text(encoding="utf-8") == committed  # untouched
