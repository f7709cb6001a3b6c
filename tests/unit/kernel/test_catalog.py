"""Topic catalog: validation on load, expansion per municipality, and the pure planner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.kernel.errors import ConfigError
from streams.kernel.topics import ObservedTopic, RegionTopics, expand, plan, topic_name
from streams.platform.topic_catalog import default_catalog_path, load_catalog

TOCHIGI = RegionTopics("tochigi", "09", ("09201", "09202", "09203"))
KANAGAWA = RegionTopics("kanagawa", "14", ("14101", "14104"))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(default_catalog_path())


def test_shipped_catalog_declares_every_kind_of_topic(catalog):
    ids = {t.id for t in catalog.templates}

    assert {"readings.raw", "readings.enriched", "alerts", "alerts.public", "alerts.municipality", "deadletter"} <= ids


def test_one_alerts_topic_per_municipality_and_region_in_every_name(catalog):
    specs = expand(catalog, [TOCHIGI, KANAGAWA])
    per_municipality = {s.municipality_code: s.name for s in specs if s.catalog_id == "alerts.municipality"}

    assert per_municipality == {
        c: f"bosai.{r.name}.alerts.{c}" for r in (TOCHIGI, KANAGAWA) for c in r.municipality_codes
    }
    assert all(f".{s.region}." in s.name for s in specs)
    assert len({s.name for s in specs}) == len(specs)


def test_topic_name_of_one_catalog_entry(catalog):
    assert topic_name(catalog, "alerts", "tochigi") == "bosai.tochigi.alerts"
    assert (
        topic_name(catalog, "alerts.municipality", "kanagawa", municipality_code="14104")
        == "bosai.kanagawa.alerts.14104"
    )


def test_retention_and_cleanup_become_topic_configs(catalog):
    raw = next(s for s in expand(catalog, [TOCHIGI]) if s.catalog_id == "readings.raw")

    assert raw.configs["retention.ms"] == str(7 * 86_400_000)
    assert raw.configs["cleanup.policy"] == "delete"
    assert raw.value_schema == "jp.bosai.hub.SensorReading"


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def _valid_doc() -> dict:
    return yaml.safe_load(default_catalog_path().read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["topics"][0].update(partitions=0), "partitions is 0"),
        (lambda d: d["topics"][0].update(retention="a week"), "retention 'a week'"),
        (lambda d: d["topics"][0].update(cleanup_policy="shred"), "cleanup_policy is 'shred'"),
        (lambda d: d["topics"][1].update(id=d["topics"][0]["id"]), "duplicate id"),
        (lambda d: d["topics"][0].update(name="{prefix}.readings"), "lacks {region}"),
        (lambda d: d["topics"][0].update(name="{prefix}.{region}.{station}"), "unknown placeholder"),
        (lambda d: d["topics"][0].pop("value_schema"), "missing key 'value_schema'"),
        (lambda d: d["defaults"].update(min_insync_replicas=5), "min_insync_replicas"),
    ],
)
def test_broken_catalog_names_file_entry_and_problem(tmp_path, mutate, message):
    doc = _valid_doc()
    mutate(doc)
    path = _write(tmp_path, doc)

    with pytest.raises(ConfigError) as caught:
        load_catalog(path)

    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_missing_catalog_file_says_which_file(tmp_path):
    with pytest.raises(ConfigError, match="nothing.yaml: cannot read the topic catalog"):
        load_catalog(tmp_path / "nothing.yaml")


def _observed_as_wanted(specs, broker_count=1):
    from streams.kernel.topics import effective_spec

    out = {}
    for spec in specs:
        eff = effective_spec(spec, broker_count)
        out[spec.name] = ObservedTopic(spec.name, eff.partitions, eff.replication_factor, dict(eff.configs))
    return out


def test_plan_creates_every_missing_topic_with_replication_capped_at_cluster_size(catalog):
    specs = expand(catalog, [TOCHIGI])

    result = plan(specs, {}, broker_count=1)

    assert [a.kind for a in result.changes] == ["create"] * len(specs)
    assert all(a.spec.replication_factor == 1 and a.spec.configs["min.insync.replicas"] == "1" for a in result.changes)
    assert any("capped" in n.detail for n in result.notices)


def test_plan_is_empty_when_the_cluster_matches(catalog):
    specs = expand(catalog, [TOCHIGI])

    assert plan(specs, _observed_as_wanted(specs), broker_count=1).changes == []


def test_plan_raises_partitions_and_fixes_drifted_configs_but_never_shrinks(catalog):
    specs = expand(catalog, [TOCHIGI])
    observed = _observed_as_wanted(specs)
    raw, alerts = "bosai.tochigi.readings.raw", "bosai.tochigi.alerts"
    observed[raw] = ObservedTopic(raw, 2, 1, {**observed[raw].configs, "retention.ms": "1000"})
    observed[alerts] = ObservedTopic(alerts, 12, 1, observed[alerts].configs)

    result = plan(specs, observed, broker_count=1)

    kinds = {(a.kind, a.topic) for a in result.actions}
    assert ("add_partitions", raw) in kinds
    assert ("alter_configs", raw) in kinds
    assert ("notice", alerts) in kinds and ("add_partitions", alerts) not in kinds
    assert next(a for a in result.changes if a.kind == "add_partitions").partitions == 6
