"""The gateway's files: its sensor owners (``--owners``) and its token store (``--tokens``).

Owners file (``deploy/gateway-owners.example.yaml``): each owner — a municipality's department, a
contractor running gauges — may send readings of its own stations only, at a bounded rate::

    version: 1
    defaults: {rate_per_s: 50, burst: 500}
    owners:
      - id: nasushiobara-kensetsu
        name: 那須塩原市 建設課
        region: tochigi
        stations: ["R-09-213-01", "R-09-213-02"]

Token store: one token per subject (``owner:<id>`` or ``orion:<id>``), kept as the SHA-256 of its
secret in a 0600 JSON file outside the repo; ``issue`` returns the token once (issuing again rotates
it), ``revoke`` removes it. The gateway re-reads the file when it changes, so both apply at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.kernel.errors import ConfigError
from streams.kernel.region import RegionPack
from streams.platform.checks import Entry
from streams.platform.yamlfile import read_yaml

OWNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ENV_TOKENS = "BOSAI_GATEWAY_TOKENS"


@dataclass(frozen=True)
class Owner:
    id: str
    name: str
    region: str
    stations: frozenset[str]
    rate_per_s: float
    burst: float


def _owner(raw: object, i: int, path: Path, defaults: Entry, packs: Sequence[RegionPack]) -> Owner:
    entry = Entry(raw, path, f"owners[{i}]", expected="a mapping with id, region, stations")
    owner_id = entry.text("id", pattern=OWNER_ID, expected="lower-case letters, digits, '_' or '-'")
    entry = entry.at(f"owner {owner_id}")
    by_name = {p.name: p for p in packs}
    region = entry.choice("region", sorted(by_name))
    stations = entry.strings("stations", expected="a list of the owner's station ids")
    if not stations:
        raise entry.error("no stations", "the station ids this owner may send readings of")
    unknown = [s for s in stations if s not in by_name[region].stations]
    if unknown:
        raise entry.error(
            f"stations {unknown} are not in the {region} pack", "station ids of regions/<region>/stations.csv"
        )
    rate = entry.number("rate_per_s", minimum=0.001, default=defaults.get("rate_per_s", 50.0))
    burst = entry.number("burst", minimum=1, default=defaults.get("burst", max(rate * 10, 100.0)))
    return Owner(owner_id, str(entry.get("name", owner_id)), region, frozenset(stations), float(rate), float(burst))


def load_owners(path: Path, packs: Sequence[RegionPack]) -> dict[str, Owner]:
    """Read and validate the owners file; a station belongs to at most one owner."""
    document = Entry(
        read_yaml(path, "gateway owners file"), path, expected="a mapping with version: 1 and owners: [...]"
    )
    if document.get("version") != 1:
        raise document.error(f"version is {document.get('version')!r}", "version: 1 and owners: [...]")
    defaults = document.child("defaults")
    owners: dict[str, Owner] = {}
    claimed: dict[str, str] = {}
    for i, raw in document.entries("owners", expected="a non-empty list of sensor owners"):
        owner = _owner(raw, i, path, defaults, packs)
        if owner.id in owners:
            raise ConfigError(path, "declared twice", where=f"owner {owner.id}", expected="unique ids")
        for station in sorted(owner.stations):
            if station in claimed:
                raise ConfigError(
                    path,
                    f"station {station} is also {claimed[station]}'s",
                    where=f"owner {owner.id}",
                    expected="one owner per station",
                )
            claimed[station] = owner.id
        owners[owner.id] = owner
    return owners
