"""The topic catalog: every topic the hub uses, declared in ``topics/catalog.yaml``, planned and applied.

The catalog is data. ``load_catalog`` validates it; ``expand`` turns it into concrete
:class:`TopicSpec` s for the region packs in use (one alerts topic per municipality of each region);
``plan`` compares those specs with what the cluster has (pure, unit-tested); ``apply_plan`` carries a
plan out through Kafka's admin API (aiokafka). Applying twice changes nothing.

Topic names carry the region (``bosai.tochigi.alerts``), so several prefectures share one cluster.
The catalog owns every topic-level config it declares: ``apply`` sets exactly those keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from streams.configfile import read_yaml
from streams.errors import ConfigError

_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_CLEANUP = {"delete", "compact", "compact,delete"}
_NAME_OK = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_PLACEHOLDERS = {"prefix", "region", "prefecture_code", "municipality_code"}


def parse_duration_ms(value: Any, *, file: Path, where: str) -> int:
    """``7d`` -> 604800000; ``infinite`` -> -1; a bare integer is milliseconds."""
    if isinstance(value, bool):
        raise ConfigError(file, f"retention {value!r} is not a duration", where=where,
                          expected="e.g. 12h, 7d, 4w, or infinite")
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text in {"infinite", "forever", "-1"}:
        return -1
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(file, f"retention {value!r} is not a duration", where=where,
                          expected="e.g. 12h, 7d, 4w, or infinite")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@dataclass(frozen=True)
class TopicTemplate:
    """One catalog entry, before expansion for a region."""

    id: str
    name: str
    partitions: int
    cleanup_policy: str
    retention_ms: int
    key_schema: str
    value_schema: str
    description: str
    for_each: str | None = None
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Catalog:
    file: Path
    prefix: str
    replication_factor: int
    min_insync_replicas: int
    templates: tuple[TopicTemplate, ...]

    def template(self, topic_id: str) -> TopicTemplate:
        for template in self.templates:
            if template.id == topic_id:
                return template
        raise KeyError(f"{self.file}: no topic with id {topic_id!r}")


@dataclass(frozen=True)
class RegionTopics:
    """What the catalog needs from a region pack."""

    name: str
    prefecture_code: str
    municipality_codes: tuple[str, ...]


@dataclass(frozen=True)
class TopicSpec:
    """A concrete topic as the catalog wants it."""

    name: str
    catalog_id: str
    region: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]
    key_schema: str
    value_schema: str
    municipality_code: str | None = None


def _require(entry: dict, key: str, kind: type, *, file: Path, where: str, expected: str) -> Any:
    if key not in entry:
        raise ConfigError(file, f"missing key '{key}'", where=where, expected=expected)
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(file, f"'{key}' is {value!r}", where=where, expected=expected)
    return value


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file; every error names the file, the entry and the key."""
    doc = read_yaml(path, "topic catalog")
    if not isinstance(doc, dict):
        raise ConfigError(path, "the catalog must be a mapping", expected="keys version, prefix, defaults, topics")
    if doc.get("version") != 1:
        raise ConfigError(path, f"version is {doc.get('version')!r}", where="version", expected="1")
    prefix = _require(doc, "prefix", str, file=path, where="prefix", expected="a topic-name prefix such as bosai")
    if not _NAME_OK.match(prefix):
        raise ConfigError(path, f"prefix {prefix!r} has characters Kafka does not allow", where="prefix",
                          expected="letters, digits, '.', '_' or '-'")
    defaults = doc.get("defaults") or {}
    rf = _require(defaults, "replication_factor", int, file=path, where="defaults",
                  expected="a positive integer")
    min_isr = _require(defaults, "min_insync_replicas", int, file=path, where="defaults",
                       expected="a positive integer")
    if rf < 1 or min_isr < 1 or min_isr > rf:
        raise ConfigError(path, f"replication_factor {rf}, min_insync_replicas {min_isr}", where="defaults",
                          expected="1 <= min_insync_replicas <= replication_factor")
    entries = doc.get("topics")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(path, "no topics", where="topics", expected="a non-empty list of topic entries")
    templates: list[TopicTemplate] = []
    seen_ids: set[str] = set()
    seen_names: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"topics[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, f"entry is {entry!r}", where=where, expected="a mapping")
        topic_id = _require(entry, "id", str, file=path, where=where, expected="a unique id such as alerts")
        where = f"topics[{i}] id={topic_id}"
        if topic_id in seen_ids:
            raise ConfigError(path, f"duplicate id {topic_id!r}", where=where, expected="unique ids")
        seen_ids.add(topic_id)
        name = _require(entry, "name", str, file=path, where=where,
                        expected="a name template such as {prefix}.{region}.alerts")
        unknown = set(re.findall(r"{(\w+)}", name)) - _PLACEHOLDERS
        if unknown:
            raise ConfigError(path, f"name uses unknown placeholder(s) {sorted(unknown)}", where=where,
                              expected=f"only {sorted(_PLACEHOLDERS)}")
        if "{region}" not in name:
            raise ConfigError(path, f"name {name!r} lacks {{region}}", where=where,
                              expected="{region} in every name, so prefectures can share a cluster")
        if name in seen_names:
            raise ConfigError(path, f"duplicate name template {name!r}", where=where, expected="unique names")
        seen_names.add(name)
        for_each = entry.get("for_each")
        if for_each not in (None, "municipality"):
            raise ConfigError(path, f"for_each is {for_each!r}", where=where, expected="municipality or absent")
        if (for_each == "municipality") != ("{municipality_code}" in name):
            raise ConfigError(path, "for_each: municipality and {municipality_code} go together", where=where,
                              expected="both or neither")
        partitions = _require(entry, "partitions", int, file=path, where=where, expected="an integer >= 1")
        if partitions < 1:
            raise ConfigError(path, f"partitions is {partitions}", where=where, expected="an integer >= 1")
        cleanup = _require(entry, "cleanup_policy", str, file=path, where=where, expected=" | ".join(sorted(_CLEANUP)))
        if cleanup not in _CLEANUP:
            raise ConfigError(path, f"cleanup_policy is {cleanup!r}", where=where, expected=" | ".join(sorted(_CLEANUP)))
        if "retention" not in entry:
            raise ConfigError(path, "missing key 'retention'", where=where, expected="e.g. 7d or infinite")
        retention_ms = parse_duration_ms(entry["retention"], file=path, where=where)
        key_schema = _require(entry, "key_schema", str, file=path, where=where, expected="string or an Avro full name")
        value_schema = _require(entry, "value_schema", str, file=path, where=where, expected="an Avro full name")
        extra = entry.get("configs") or {}
        if not isinstance(extra, dict):
            raise ConfigError(path, f"configs is {extra!r}", where=where, expected="a mapping of topic configs")
        templates.append(TopicTemplate(
            id=topic_id, name=name, partitions=partitions, cleanup_policy=cleanup, retention_ms=retention_ms,
            key_schema=key_schema, value_schema=value_schema, description=str(entry.get("description", "")),
            for_each=for_each, configs=tuple(sorted((str(k), str(v)) for k, v in extra.items())),
        ))
    return Catalog(file=path, prefix=prefix, replication_factor=rf, min_insync_replicas=min_isr,
                   templates=tuple(templates))


def default_catalog_path() -> Path:
    from streams.settings import project_root

    return project_root() / "topics" / "catalog.yaml"


def topic_name(catalog: Catalog, topic_id: str, region: str, *, prefecture_code: str = "",
               municipality_code: str | None = None) -> str:
    """The concrete name of one catalog topic for a region (and municipality)."""
    template = catalog.template(topic_id)
    return template.name.format(prefix=catalog.prefix, region=region, prefecture_code=prefecture_code,
                                municipality_code=municipality_code or "")


def expand(catalog: Catalog, regions: Iterable[RegionTopics]) -> list[TopicSpec]:
    """Concrete topics for the regions: the fixed ones, plus one per municipality where for_each says so."""
    specs: list[TopicSpec] = []
    for region in regions:
        for template in catalog.templates:
            configs = {"cleanup.policy": template.cleanup_policy, "retention.ms": str(template.retention_ms),
                       "min.insync.replicas": str(catalog.min_insync_replicas), **dict(template.configs)}
            codes: Sequence[str | None] = region.municipality_codes if template.for_each else [None]
            for code in codes:
                name = template.name.format(prefix=catalog.prefix, region=region.name,
                                            prefecture_code=region.prefecture_code, municipality_code=code or "")
                if not _NAME_OK.match(name):
                    raise ConfigError(catalog.file, f"topic name {name!r} is not a valid Kafka topic name",
                                      where=f"id={template.id} region={region.name}",
                                      expected="letters, digits, '.', '_' or '-', at most 249 characters")
                specs.append(TopicSpec(name=name, catalog_id=template.id, region=region.name,
                                       partitions=template.partitions,
                                       replication_factor=catalog.replication_factor, configs=dict(configs),
                                       key_schema=template.key_schema, value_schema=template.value_schema,
                                       municipality_code=code))
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(catalog.file, f"two catalog entries expand to the same topic(s) {dupes[:5]}")
    return specs


# -- planning (pure) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ObservedTopic:
    """What the cluster has for one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True)
class Action:
    """One change the plan makes, or a notice about something it cannot change."""

    kind: str  # create | add_partitions | alter_configs | notice
    topic: str
    detail: str
    spec: TopicSpec | None = None
    partitions: int | None = None
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def changes_cluster(self) -> bool:
        return self.kind != "notice"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    topics: int

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.changes_cluster]

    @property
    def notices(self) -> list[Action]:
        return [a for a in self.actions if not a.changes_cluster]


def effective_spec(spec: TopicSpec, broker_count: int) -> TopicSpec:
    """The spec with replication capped at the cluster's size (a single local broker gets 1)."""
    rf = min(spec.replication_factor, max(broker_count, 1))
    configs = dict(spec.configs)
    if "min.insync.replicas" in configs:
        configs["min.insync.replicas"] = str(min(int(configs["min.insync.replicas"]), rf))
    return TopicSpec(**{**spec.__dict__, "replication_factor": rf, "configs": configs})


def plan(specs: Sequence[TopicSpec], observed: dict[str, ObservedTopic], broker_count: int) -> Plan:
    """What must change so the cluster matches the catalog. Never deletes and never shrinks."""
    actions: list[Action] = []
    capped = False
    for wanted in specs:
        spec = effective_spec(wanted, broker_count)
        capped = capped or spec.replication_factor < wanted.replication_factor
        have = observed.get(spec.name)
        if have is None:
            actions.append(Action("create", spec.name,
                                  f"create: {spec.partitions} partitions, replication {spec.replication_factor}, "
                                  + ", ".join(f"{k}={v}" for k, v in sorted(spec.configs.items())), spec=spec))
            continue
        if have.partitions < spec.partitions:
            actions.append(Action("add_partitions", spec.name,
                                  f"partitions {have.partitions} -> {spec.partitions}", partitions=spec.partitions))
        elif have.partitions > spec.partitions:
            actions.append(Action("notice", spec.name,
                                  f"has {have.partitions} partitions, catalog says {spec.partitions}: "
                                  f"Kafka cannot reduce partitions; update the catalog or recreate the topic"))
        if have.replication_factor != spec.replication_factor:
            actions.append(Action("notice", spec.name,
                                  f"replication factor {have.replication_factor}, catalog wants "
                                  f"{spec.replication_factor}: reassign partitions with kafka-reassign-partitions"))
        diffs = {k: v for k, v in spec.configs.items() if have.configs.get(k) != v}
        if diffs:
            detail = ", ".join(f"{k}: {have.configs.get(k, '(default)')} -> {v}" for k, v in sorted(diffs.items()))
            actions.append(Action("alter_configs", spec.name, detail, configs=dict(spec.configs)))
    if capped:
        actions.append(Action("notice", "*", f"replication capped at {max(broker_count, 1)}: the cluster has "
                                             f"{broker_count} broker(s)"))
    return Plan(actions=tuple(actions), topics=len(specs))


def format_plan(result: Plan) -> str:
    lines = []
    for action in result.actions:
        marker = {"create": "+", "add_partitions": "~", "alter_configs": "~", "notice": "!"}[action.kind]
        lines.append(f"{marker} {action.topic}: {action.detail}")
    if not result.changes:
        lines.append(f"no changes: all {result.topics} topics match the catalog")
    else:
        lines.append(f"{len(result.changes)} change(s) for {result.topics} catalog topics")
    return "\n".join(lines)


# -- the cluster side (aiokafka admin) ---------------------------------------------------------

async def observe(admin, names: Sequence[str]) -> tuple[dict[str, ObservedTopic], int]:
    """Partitions, replication and the catalog-managed configs of the named topics that exist."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    cluster = await admin.describe_cluster()
    broker_count = len(cluster.get("brokers", []))
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    observed: dict[str, ObservedTopic] = {}
    if not present:
        return observed, broker_count
    described = await admin.describe_topics(present)
    shapes = {}
    for topic in described:
        partitions = topic["partitions"]
        rf = max((len(p["replicas"]) for p in partitions), default=0)
        shapes[topic["topic"]] = (len(partitions), rf)
    configs: dict[str, dict[str, str]] = {n: {} for n in present}
    for chunk_start in range(0, len(present), 100):
        chunk = present[chunk_start:chunk_start + 100]
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in chunk])
        for response in responses:
            for resource in response.resources:
                error_code, error_message, _rtype, name, entries = resource[:5]
                if error_code:
                    raise RuntimeError(f"describe_configs {name}: error {error_code} {error_message}")
                configs[name] = {e[0]: e[1] for e in entries if e[1] is not None}
    for name in present:
        partitions, rf = shapes[name]
        observed[name] = ObservedTopic(name=name, partitions=partitions, replication_factor=rf,
                                       configs=configs[name])
    return observed, broker_count


async def apply_plan(admin, result: Plan) -> None:
    """Carry out a plan's changes: create, add partitions, set configs (catalog keys only)."""
    from aiokafka.admin import NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import TopicAlreadyExistsError

    creates = [a.spec for a in result.changes if a.kind == "create"]
    if creates:
        new_topics = [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs)
                      for s in creates]
        response = await admin.create_topics(new_topics)
        for item in response.topic_errors:
            name, code = item[0], item[1]
            message = item[2] if len(item) > 2 else ""
            if code and code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"create topic {name}: Kafka error {code} {message}")
        await _wait_visible(admin, [s.name for s in creates])
    grow = {a.topic: NewPartitions(a.partitions) for a in result.changes if a.kind == "add_partitions"}
    if grow:
        await admin.create_partitions(grow)
    alters = [a for a in result.changes if a.kind == "alter_configs"]
    if alters:
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, a.topic, a.configs) for a in alters])
        for response in responses:
            for resource in response.resources:
                if resource[0]:
                    raise RuntimeError(f"alter configs {resource[3]}: Kafka error {resource[0]} {resource[1]}")


async def _wait_visible(admin, names: Sequence[str], timeout_s: float = 30.0) -> None:
    """Wait until created topics show in broker metadata (KRaft propagates them asynchronously)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout_s
    missing = set(names)
    while missing:
        missing -= set(await admin.list_topics())
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"created topics not visible after {timeout_s:.0f}s: {sorted(missing)[:5]}")
        await asyncio.sleep(0.2)


# -- plan and apply against a cluster ------------------------------------------------------------

async def _plan(bootstrap: str, specs):
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        observed, broker_count = await observe(admin, [s.name for s in specs])
        return plan(specs, observed, broker_count), admin
    except BaseException:
        await admin.close()
        raise


async def plan_topics(bootstrap: str, specs):
    result, admin = await _plan(bootstrap, specs)
    await admin.close()
    return result


async def apply_topics(bootstrap: str, specs):
    """Apply the catalog; return (plan before, plan after)."""
    before, admin = await _plan(bootstrap, specs)
    try:
        await apply_plan(admin, before)
    finally:
        await admin.close()
    after = await plan_topics(bootstrap, specs)
    return before, after
