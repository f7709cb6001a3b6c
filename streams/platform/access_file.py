"""The access file (``topics/access.yaml``): generated from the region packs, read and validated.

``generate`` writes who may read what from the packs and the catalog (``bosai access generate``;
a test fails when the committed file is out of date); ``load_access`` reads it back into an
:class:`AccessPolicy`, each mistake naming the file, the principal and the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from streams.kernel.access import (
    HUB_SCRATCH_PREFIXES,
    OPERATIONS,
    PATTERNS,
    PRINCIPAL_NAME,
    READ,
    RESOURCES,
    ROLES,
    AccessPolicy,
    Grant,
    Principal,
    municipal_readers,
)
from streams.kernel.errors import ConfigError
from streams.kernel.region import RegionPack
from streams.kernel.topics import Catalog, topic_name
from streams.platform.checks import Entry
from streams.platform.settings import project_root
from streams.platform.yamlfile import read_yaml

_CODE = re.compile(r"\d{5}")


def _reader(
    name: str, role: str, description: str, topics: Iterable[tuple[str, str]], **extra: object
) -> dict[str, object]:
    """A principal that reads the given (pattern, topic) and uses only consumer groups named ``<name>.…``."""
    grants = [
        {"resource": "topic", "pattern": pattern, "name": topic, "operations": list(READ)} for pattern, topic in topics
    ]
    grants.append({"resource": "group", "pattern": "prefixed", "name": f"{name}.", "operations": list(READ)})
    return {
        "name": name,
        "role": role,
        "description": description,
        **extra,
        "group_prefix": f"{name}.",
        "grants": grants,
    }


def _hub(prefix: str) -> dict[str, object]:
    """Exactly what the hub's processes need, by name prefix (they connect as ``hub`` in hardened mode).

    The live namespace (``<prefix>.``) is read and written, never created, altered or deleted: that is
    `bosai topics apply`'s, run as the admin. Replays and demos make namespaces of their own
    (``replay-<time>``, ``demo-<time>``), which the hub creates and deletes itself. Consumer groups are
    ``<prefix>-<region>-hub`` (workers), ``<prefix>-sink-<id>``, ``<prefix>-orion-<id>`` and a namespace's
    ``<namespace>-<region>-hub``; the workers' transactional ids are ``<group>.<topic>.<partition>``.
    No cluster-level right: an idempotent producer needs only write on a topic (Kafka 3+), and ACLs and
    credentials are the admin's.
    """
    live = ["read", "write", "describe", "describe_configs"]
    grants = [{"resource": "topic", "pattern": "prefixed", "name": f"{prefix}.", "operations": live}]
    grants += [
        {"resource": "topic", "pattern": "prefixed", "name": scratch, "operations": [*live, "create", "delete"]}
        for scratch in HUB_SCRATCH_PREFIXES
    ]
    for resource, operations in (("group", list(READ)), ("transactional_id", ["write", "describe"])):
        grants += [
            {"resource": resource, "pattern": "prefixed", "name": name, "operations": list(operations)}
            for name in (f"{prefix}-", *HUB_SCRATCH_PREFIXES)
        ]
    return {
        "name": "hub",
        "role": "hub",
        "description": "The hub's own processes (workers, replay, pollers, bridge, sink, feed, web): the only "
        "writer of readings and alerts. Hardened mode: every hub process connects as hub.",
        "grants": grants,
    }


def _region_readers(pack: RegionPack, catalog: Catalog) -> list[dict[str, object]]:
    """The prefecture, and each municipality (a designated city reading all its wards)."""

    def topic(topic_id: str, code: str | None = None) -> str:
        return topic_name(catalog, topic_id, pack.name, prefecture_code=pack.prefecture_code, municipality_code=code)

    readers = [
        _reader(
            f"pref-{pack.name}",
            "prefecture",
            f"{pack.prefecture_name}: every alert event of the prefecture, the readings, the official reports.",
            [
                ("prefixed", topic("alerts")),
                ("literal", topic("readings.raw")),
                ("literal", topic("readings.enriched")),
                ("literal", topic("official.raw")),
            ],
            region=pack.name,
        )
    ]
    for code, name in municipal_readers(pack):
        codes = pack.codes_read_by(code)
        whole = " (all its wards)" if code in pack.designated_cities else ""
        readers.append(
            _reader(
                f"muni-{code}",
                "municipality",
                f"{name}: its own alert events{whole}",
                [("literal", topic("alerts.municipality", c)) for c in codes],
                region=pack.name,
                municipality_codes=list(codes),
            )
        )
    return readers


def generate(packs: Sequence[RegionPack], catalog: Catalog) -> dict[str, Any]:
    """The access document for these packs (what ``topics/access.yaml`` holds)."""
    ordered = sorted(packs, key=lambda p: p.name)
    principals = [_hub(catalog.prefix), *(r for pack in ordered for r in _region_readers(pack, catalog))]
    principals.append(
        _reader(
            "public",
            "public",
            "Open data: alert events whose sharing level is public, every prefecture.",
            [
                ("literal", topic_name(catalog, "alerts.public", p.name, prefecture_code=p.prefecture_code))
                for p in ordered
            ],
        )
    )
    return {"version": 1, "prefix": catalog.prefix, "principals": principals}


HEADER = """\
# Who may do what on the cluster's authenticated listener (SASL/SCRAM-SHA-512 over TLS).
# GENERATED from regions/* and topics/catalog.yaml by `bosai access generate`; do not edit by hand
# (a test checks this file equals what the packs generate). `bosai access plan` shows how the
# cluster's ACLs differ, `bosai access apply` makes them equal: bindings not listed here are removed.
# Credentials are not here: `bosai access issue <principal|JIS code|name>` creates or rotates one.
"""


class _Dumper(yaml.SafeDumper):
    """Lists of plain values (operations, codes) on one line: the file stays readable."""


def _list(dumper: yaml.SafeDumper, items: list[object]) -> yaml.Node:
    flow = all(isinstance(item, (str, int)) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)


_Dumper.add_representer(list, _list)


def render(document: dict[str, Any]) -> str:
    return HEADER + yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)


def default_access_path() -> Path:
    return project_root() / "topics" / "access.yaml"


def _grant(raw: object, where: str, path: Path, role: str) -> Grant:
    entry = Entry(raw, path, where, expected="a mapping with resource, name, operations")
    resource = entry.choice("resource", RESOURCES, default=None)
    pattern = entry.choice("pattern", PATTERNS, default="literal")
    resource_name = entry.text("name", expected="the topic/group name (or prefix)")
    allowed = [op for op in OPERATIONS if op not in ("any", "all")]
    operations = entry.get("operations")
    if not isinstance(operations, list) or not operations or any(op not in allowed for op in operations):
        raise entry.error(f"operations is {operations!r}", f"a list of {', '.join(allowed)}")
    if role != "hub" and resource == "topic" and set(operations) - set(READ):
        raise entry.error(f"only the hub may write or create topics; {role} principals read", "read, describe")
    return Grant(resource=resource, name=resource_name, operations=tuple(operations), pattern=pattern)


def _principal(raw: object, i: int, path: Path) -> Principal:
    entry = Entry(raw, path, f"principals[{i}]", expected="a mapping with name, role, grants")
    name = entry.text(
        "name",
        pattern=PRINCIPAL_NAME,
        expected="lower-case letters, digits, '.', '_' or '-' (it is the SCRAM user name)",
    )
    entry = entry.at(f"principal {name}")
    role = entry.choice("role", ROLES)
    grants = tuple(
        _grant(g, f"principal {name} grants[{j}]", path, role) for j, g in enumerate(entry.get("grants") or [])
    )
    codes = entry.strings("municipality_codes", pattern=_CODE, expected="5-digit JIS X 0402 codes")
    if role == "municipality" and not codes:
        raise entry.error("no municipality_codes", "the 5-digit JIS X 0402 codes it reads")
    return Principal(
        name=name,
        role=role,
        description=str(entry.get("description", "")),
        grants=grants,
        region=entry.get("region"),
        municipality_codes=codes,
        group_prefix=entry.get("group_prefix", ""),
    )


def load_access(path: Path) -> AccessPolicy:
    """Read and validate an access file; every problem names the file, the principal and the key."""
    raw = read_yaml(path, "access file", hint="; generate it with `bosai access generate`")
    document = Entry(raw, path, expected="a mapping with version: 1")
    if document.get("version") != 1:
        raise document.error(f"version is {document.get('version')!r}", "version: 1")
    prefix = document.text("prefix", expected="the topic prefix of topics/catalog.yaml, e.g. bosai")
    principals: list[Principal] = []
    for i, entry in document.entries("principals", expected="a non-empty list"):
        principal = _principal(entry, i, path)
        if any(p.name == principal.name for p in principals):
            raise ConfigError(path, "declared twice", where=f"principal {principal.name}", expected="unique names")
        principals.append(principal)
    return AccessPolicy(path=str(path), prefix=prefix, principals=tuple(principals))
