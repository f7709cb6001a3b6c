"""The topic catalog as values: concrete topic names, what a region needs, and the plan to get there.

The catalog is data (``topics/catalog.yaml``, loaded by :mod:`streams.platform.topic_catalog`).
``expand`` turns it into concrete :class:`TopicSpec` s for the region packs in use (one alerts topic
per municipality of each region); ``plan`` compares those specs with what the cluster has;
:mod:`streams.platform.kafka_admin` observes the cluster and carries a plan out. Applying twice changes
nothing. :class:`HubTopics` names one region's topics, and says which alert topics a municipality reads.

Topic names carry the region (``bosai.tochigi.alerts``), so several prefectures share one cluster.
The catalog owns every topic-level config it declares: ``apply`` sets exactly those keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streams.kernel.errors import ConfigError

if TYPE_CHECKING:  # the region imports this module
    from streams.kernel.region import RegionPack

CLEANUP_POLICIES = ("compact", "compact,delete", "delete")
# How an Avro value is framed: Avro single-object encoding (C3 01 + fingerprint), or the Confluent wire format
# (00 + schema id) that standard tooling (Confluent's deserializers, kcat -s avro, Kafka UIs) reads with a
# schema registry. The hub's decoder reads both, whatever a topic says.
FRAMINGS = ("single-object", "confluent")
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
PLACEHOLDERS = ("municipality_code", "prefecture_code", "prefix", "region")


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
    partitioned_like: str | None = None  # another entry's id: same partition count, same partition per key
    framing: str = "single-object"  # one of FRAMINGS (Avro values only)


@dataclass(frozen=True)
class Catalog:
    file: str  # where it was read from (for messages)
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
    framing: str = "single-object"


def topic_name(
    catalog: Catalog, topic_id: str, region: str, *, prefecture_code: str = "", municipality_code: str | None = None
) -> str:
    """The concrete name of one catalog topic for a region (and municipality)."""
    template = catalog.template(topic_id)
    return template.name.format(
        prefix=catalog.prefix, region=region, prefecture_code=prefecture_code, municipality_code=municipality_code or ""
    )


def expand(catalog: Catalog, regions: Iterable[RegionTopics]) -> list[TopicSpec]:
    """Concrete topics for the regions: the fixed ones, plus one per municipality where for_each says so."""
    specs: list[TopicSpec] = []
    for region in regions:
        for template in catalog.templates:
            configs = {
                "cleanup.policy": template.cleanup_policy,
                "retention.ms": str(template.retention_ms),
                "min.insync.replicas": str(catalog.min_insync_replicas),
                **dict(template.configs),
            }
            codes: Sequence[str | None] = region.municipality_codes if template.for_each else [None]
            for code in codes:
                name = template.name.format(
                    prefix=catalog.prefix,
                    region=region.name,
                    prefecture_code=region.prefecture_code,
                    municipality_code=code or "",
                )
                if not TOPIC_NAME.match(name):
                    raise ConfigError(
                        catalog.file,
                        f"topic name {name!r} is not a valid Kafka topic name",
                        where=f"id={template.id} region={region.name}",
                        expected="letters, digits, '.', '_' or '-', at most 249 characters",
                    )
                specs.append(
                    TopicSpec(
                        name=name,
                        catalog_id=template.id,
                        region=region.name,
                        partitions=template.partitions,
                        replication_factor=catalog.replication_factor,
                        configs=dict(configs),
                        key_schema=template.key_schema,
                        value_schema=template.value_schema,
                        municipality_code=code,
                        framing=template.framing,
                    )
                )
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

    @property
    def creates(self) -> list[TopicSpec]:
        """The topics to create (a create action always carries its spec)."""
        return [a.spec for a in self.actions if a.kind == "create" and a.spec is not None]


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
            actions.append(
                Action(
                    "create",
                    spec.name,
                    f"create: {spec.partitions} partitions, replication {spec.replication_factor}, "
                    + ", ".join(f"{k}={v}" for k, v in sorted(spec.configs.items())),
                    spec=spec,
                )
            )
            continue
        if have.partitions < spec.partitions:
            actions.append(
                Action(
                    "add_partitions",
                    spec.name,
                    f"partitions {have.partitions} -> {spec.partitions}",
                    partitions=spec.partitions,
                )
            )
        elif have.partitions > spec.partitions:
            actions.append(
                Action(
                    "notice",
                    spec.name,
                    f"has {have.partitions} partitions, catalog says {spec.partitions}: "
                    f"Kafka cannot reduce partitions; update the catalog or recreate the topic",
                )
            )
        if have.replication_factor != spec.replication_factor:
            actions.append(
                Action(
                    "notice",
                    spec.name,
                    f"replication factor {have.replication_factor}, catalog wants "
                    f"{spec.replication_factor}: reassign partitions with kafka-reassign-partitions",
                )
            )
        diffs = {k: v for k, v in spec.configs.items() if have.configs.get(k) != v}
        if diffs:
            detail = ", ".join(f"{k}: {have.configs.get(k, '(default)')} -> {v}" for k, v in sorted(diffs.items()))
            actions.append(Action("alter_configs", spec.name, detail, configs=dict(spec.configs)))
    if capped:
        actions.append(
            Action(
                "notice", "*", f"replication capped at {max(broker_count, 1)}: the cluster has {broker_count} broker(s)"
            )
        )
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


@dataclass(frozen=True)
class HubTopics:
    """The concrete topic names of one region under one prefix."""

    raw: str
    enriched: str
    alerts: str
    public: str
    deadletter: str
    municipal: Mapping[str, str]  # JIS code -> that municipality's (or ward's) alerts topic
    official: str = ""  # official reports as received (JMA's XML)
    confluent: frozenset[str] = frozenset()  # the topics whose values carry the Confluent wire format

    @classmethod
    def for_region(cls, catalog: Catalog, pack: RegionPack) -> HubTopics:
        def name(topic_id: str, code: str | None = None) -> str:
            return topic_name(
                catalog, topic_id, pack.name, prefecture_code=pack.prefecture_code, municipality_code=code
            )

        municipal = {m.code: name("alerts.municipality", m.code) for m in pack.municipalities}
        confluent = {
            topic
            for template in catalog.templates
            if template.framing == "confluent"
            for topic in (municipal.values() if template.for_each else [name(template.id)])
        }
        return cls(
            raw=name("readings.raw"),
            enriched=name("readings.enriched"),
            alerts=name("alerts"),
            public=name("alerts.public"),
            deadletter=name("deadletter"),
            municipal=municipal,
            official=name("official.raw"),
            confluent=frozenset(confluent),
        )

    def alert_topics(self) -> list[str]:
        """Every topic alert events go to."""
        return [self.alerts, self.public, *self.municipal.values()]

    def read_by(self, pack: RegionPack, code: str) -> list[str]:
        """The alert topics a municipality reads: its own, or all its wards' for a designated city."""
        return [self.municipal[c] for c in pack.codes_read_by(code)]
