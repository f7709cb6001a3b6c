"""The topic catalog file (``topics/catalog.yaml``): read and validate into a :class:`Catalog`.

Every error names the file, the entry and the key, and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.kernel.errors import ConfigError
from streams.kernel.topics import CLEANUP_POLICIES, FRAMINGS, PLACEHOLDERS, TOPIC_NAME, Catalog, TopicTemplate
from streams.platform.checks import Entry
from streams.platform.durations import parse_duration_ms
from streams.platform.settings import project_root
from streams.platform.yamlfile import read_yaml


def default_catalog_path() -> Path:
    return project_root() / "topics" / "catalog.yaml"


def load_default_catalog(prefix: str | None = None) -> Catalog:
    """The project's catalog, under another topic prefix when one is given (replays, tests)."""
    catalog = load_catalog(default_catalog_path())
    return replace(catalog, prefix=prefix) if prefix else catalog


def _check_name(entry: Entry, name: str, seen_names: set[str]) -> None:
    unknown = set(re.findall(r"{(\w+)}", name)) - set(PLACEHOLDERS)
    if unknown:
        raise entry.error(f"name uses unknown placeholder(s) {sorted(unknown)}", f"only {list(PLACEHOLDERS)}")
    if "{region}" not in name:
        raise entry.error(
            f"name {name!r} lacks {{region}}", "{region} in every name, so prefectures can share a cluster"
        )
    if name in seen_names:
        raise entry.error(f"duplicate name template {name!r}", "unique names")
    seen_names.add(name)


def _template(raw: Any, i: int, file: Path, seen_ids: set[str], seen_names: set[str]) -> TopicTemplate:
    entry = Entry(raw, file, f"topics[{i}]")
    topic_id = entry.text("id", expected="a unique id such as alerts")
    entry = entry.at(f"topics[{i}] id={topic_id}")
    if topic_id in seen_ids:
        raise entry.error(f"duplicate id {topic_id!r}", "unique ids")
    seen_ids.add(topic_id)
    name = entry.text("name", expected="a name template such as {prefix}.{region}.alerts")
    _check_name(entry, name, seen_names)
    for_each = entry.choice("for_each", (None, "municipality"), default=None)
    if (for_each == "municipality") != ("{municipality_code}" in name):
        raise entry.error("for_each: municipality and {municipality_code} go together", "both or neither")
    if "retention" not in entry:
        raise entry.error("missing key 'retention'", "e.g. 7d or infinite")
    extra = entry.child("configs", expected="a mapping of topic configs")
    value_schema = entry.text("value_schema", expected="an Avro full name")
    framing = entry.choice("framing", FRAMINGS, default="single-object")
    if framing == "confluent" and value_schema in ("string", "json"):
        raise entry.error(f"framing: confluent for a {value_schema} value", "an Avro value_schema")
    return TopicTemplate(
        id=topic_id,
        name=name,
        partitions=entry.integer("partitions", expected="an integer >= 1", minimum=1),
        cleanup_policy=entry.choice("cleanup_policy", CLEANUP_POLICIES),
        retention_ms=parse_duration_ms(entry.get("retention"), file=file, where=entry.where),
        key_schema=entry.text("key_schema", expected="string or an Avro full name"),
        value_schema=value_schema,
        description=str(entry.get("description", "")),
        for_each=for_each,
        configs=tuple(sorted((str(k), str(v)) for k, v in extra.value.items())),
        partitioned_like=entry.text("partitioned_like", expected="the id of another topic entry", default=None),
        framing=framing,
    )


def _check_partitioned_like(path: Path, templates: tuple[TopicTemplate, ...]) -> None:
    """A state changelog must have exactly the partitions of the topic its states come from."""
    by_id = {t.id: t for t in templates}
    for i, template in enumerate(templates):
        if template.partitioned_like is None:
            continue
        other = by_id.get(template.partitioned_like)
        where = f"topics[{i}] id={template.id}"
        if other is None:
            raise ConfigError(
                path,
                f"partitioned_like names {template.partitioned_like!r}",
                where=where,
                expected=f"the id of another entry: one of {sorted(by_id)}",
            )
        if other.partitions != template.partitions:
            raise ConfigError(
                path,
                f"partitions is {template.partitions}, {other.id} has {other.partitions}",
                where=where,
                expected=f"{other.partitions}, the partitions of {other.id}",
            )


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file; every error names the file, the entry and the key."""
    doc = Entry(read_yaml(path, "topic catalog"), path, expected="keys version, prefix, defaults, topics")
    if doc.get("version") != 1:
        raise ConfigError(path, f"version is {doc.get('version')!r}", where="version", expected="1")
    prefix = doc.at("prefix").text("prefix", expected="a topic-name prefix such as bosai")
    if not TOPIC_NAME.match(prefix):
        raise ConfigError(
            path,
            f"prefix {prefix!r} has characters Kafka does not allow",
            where="prefix",
            expected="letters, digits, '.', '_' or '-'",
        )
    defaults = doc.child("defaults")
    rf = defaults.integer("replication_factor", expected="a positive integer", minimum=1)
    min_isr = defaults.integer("min_insync_replicas", expected="a positive integer", minimum=1)
    if min_isr > rf:
        raise defaults.error(
            f"replication_factor {rf}, min_insync_replicas {min_isr}", "1 <= min_insync_replicas <= replication_factor"
        )
    seen_ids: set[str] = set()
    seen_names: set[str] = set()
    templates = tuple(
        _template(raw, i, path, seen_ids, seen_names)
        for i, raw in doc.at("topics").entries("topics", expected="a non-empty list of topic entries")
    )
    _check_partitioned_like(path, templates)
    return Catalog(
        file=str(path), prefix=prefix, replication_factor=rf, min_insync_replicas=min_isr, templates=templates
    )
