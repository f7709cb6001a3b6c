"""The Orion bridge file (``bosai bridge orion --config``): each Orion platform the hub connects to.

Per Orion: its base URL, ``Fiware-Service``, the ``Fiware-ServicePath`` the hub writes under (its own,
default ``/bosai``, so it never reads back what it wrote) and the one its sensors are under, the
region and the municipalities (or the whole prefecture) it serves — resolved to principals of the
access file, so an Orion sees what those principals may see — and the auth header, whose value comes
from an environment variable or a file, never from this file. See ``deploy/orion-bridge.example.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.delivery.subscriptions import retry_policy
from streams.delivery.webhooks import RetryPolicy
from streams.fiware.ngsi import READINGS_ALL, READINGS_CHOICES, READINGS_NONE
from streams.kernel.access import AccessPolicy, Principal
from streams.kernel.errors import ConfigError
from streams.kernel.region import RegionPack
from streams.platform.checks import Entry
from streams.platform.secret_files import read_secret, shown_env_name
from streams.platform.yamlfile import read_yaml

ORION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}")
URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
# Orion: a service (tenant) is alphanumeric and '_', up to 50; a path has up to 10 levels of the same.
SERVICE = re.compile(r"[a-z0-9_]{1,50}")
SERVICE_PATH = re.compile(r"/|(/[A-Za-z0-9_]{1,50}){1,10}")
HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
DEFAULT_WRITE_PATH = "/bosai"


@dataclass(frozen=True)
class OrionAuth:
    header: str
    value: str = field(repr=False)  # never printed


@dataclass(frozen=True)
class OrionTarget:
    """One Orion platform: where it is, whose it is, what it may see."""

    id: str
    url: str
    service: str
    service_path: str  # where the hub writes
    sensor_service_path: str | None  # where its sensors are (the subscription watches only this)
    region: str
    municipality_codes: tuple[str, ...]  # empty for a prefecture's Orion
    principals: tuple[Principal, ...]
    readings: str  # none | own_stations | all
    auth: OrionAuth | None = None
    notify_url: str | None = None  # where Orion reaches the gateway (bosai bridge orion subscribe)
    retry: RetryPolicy = RetryPolicy()
    batch_size: int = 100

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c for p in self.principals for c in (*p.municipality_codes, p.name.removeprefix("muni-")))


@dataclass(frozen=True)
class BridgeConfig:
    path: str
    orions: tuple[OrionTarget, ...]

    def orion(self, orion_id: str) -> OrionTarget:
        for target in self.orions:
            if target.id == orion_id:
                return target
        raise ConfigError(self.path, f"no Orion {orion_id!r}", expected=", ".join(t.id for t in self.orions))


def _auth(entry: Entry, environ: Mapping[str, str]) -> OrionAuth | None:
    if "auth" not in entry:
        return None
    auth = entry.child("auth", expected="a mapping with header and env|file")
    if "value" in auth or "token" in auth:
        raise auth.error("the auth value is in the file: secrets do not belong here", "env: VARIABLE or file: PATH")
    header = auth.text("header", pattern=HEADER, expected="an HTTP header name, e.g. X-Auth-Token or Authorization")
    prefix = str(auth.get("prefix", ""))
    if auth.get("env"):
        name = str(auth.get("env"))
        value = environ.get(name, "").strip()
        if not value:
            raise auth.error(
                f"environment variable {shown_env_name(name)} is not set", "the variable set for the bridge"
            )
    elif auth.get("file"):
        where = f"{auth.where}: file of {auth.file}"
        value = read_secret(Path(str(auth.get("file"))), "the Orion credential file", where=where)
    else:
        raise auth.error("no env or file", "env: VARIABLE or file: PATH (the header value, never inline)")
    return OrionAuth(header=header, value=f"{prefix} {value}".strip())


def _principals(
    entry: Entry, pack: RegionPack, policy: AccessPolicy
) -> tuple[tuple[str, ...], tuple[Principal, ...], str]:
    """The municipalities' principals (or the prefecture's), and the default readings policy."""
    if entry.get("prefecture") is True:
        if "municipalities" in entry:
            raise entry.error("both prefecture: true and municipalities", "one of them")
        principal = policy.principal(f"pref-{pack.name}")
        if principal is None:
            raise entry.error(f"no principal pref-{pack.name} in {policy.path}", "bosai access generate")
        return (), (principal,), READINGS_ALL
    names = entry.strings("municipalities", expected="a list of municipality names or JIS X 0402 codes")
    if not names:
        raise entry.error("no municipalities", "municipalities: [names or codes], or prefecture: true")
    codes: list[str] = []
    principals: list[Principal] = []
    for name in names:
        code = pack.find_municipality(name)
        principal = policy.principal(f"muni-{code}") if code else None
        if principal is None or code is None:
            raise entry.error(
                f"municipality {name!r} has no principal in {policy.path}",
                f"a municipality of {pack.name} with its own principal (a designated city, not a ward)",
            )
        codes.append(code)
        principals.append(principal)
    return tuple(codes), tuple(principals), READINGS_NONE


def _paths(entry: Entry, defaults: Entry) -> tuple[str, str | None]:
    write = entry.get("service_path", defaults.get("service_path", DEFAULT_WRITE_PATH))
    if not isinstance(write, str) or not SERVICE_PATH.fullmatch(write) or write == "/":
        raise entry.error(f"service_path is {write!r}", "the hub's own path such as /bosai (not /)")
    sensors = entry.get("sensor_service_path")
    if sensors is not None:
        if not isinstance(sensors, str) or not SERVICE_PATH.fullmatch(sensors) or sensors == "/":
            raise entry.error(f"sensor_service_path is {sensors!r}", "the sensors' own path such as /sensors")
        if sensors == write or sensors.startswith(write + "/") or write.startswith(sensors + "/"):
            raise entry.error(
                f"sensor_service_path {sensors} overlaps service_path {write}",
                "separate paths, so the hub never reads back what it wrote",
            )
    return write, sensors


def _target(
    raw: object,
    i: int,
    path: Path,
    defaults: Entry,
    packs: Sequence[RegionPack],
    policy: AccessPolicy,
    environ: Mapping[str, str],
) -> OrionTarget:
    entry = Entry(raw, path, f"orions[{i}]", expected="a mapping with id, url, service, region, municipalities")
    orion_id = entry.text("id", pattern=ORION_ID, expected="lower-case letters, digits, '_' or '-' (it names a group)")
    entry = entry.at(f"orion {orion_id}")
    by_name = {p.name: p for p in packs}
    region = entry.choice("region", sorted(by_name))
    codes, principals, default_readings = _principals(entry, by_name[region], policy)
    write, sensors = _paths(entry, defaults)
    readings = entry.choice("readings", READINGS_CHOICES, default=default_readings)
    if codes and readings == READINGS_ALL:
        raise entry.error(
            "readings: all for a municipality's Orion",
            "none or own_stations (all is the prefecture's, as in the access file)",
        )
    notify_url = entry.get("notify_url")
    if notify_url is not None and not (isinstance(notify_url, str) and URL.fullmatch(notify_url)):
        raise entry.error(f"notify_url is {notify_url!r}", "the gateway's URL as Orion reaches it, http(s)://…")
    return OrionTarget(
        id=orion_id,
        url=entry.text("url", pattern=URL, expected="Orion's base URL, http(s)://host[:port][/prefix]").rstrip("/"),
        service=entry.text("service", pattern=SERVICE, expected="the Fiware-Service: a-z, 0-9, '_' (≤ 50)"),
        service_path=write,
        sensor_service_path=sensors,
        region=region,
        municipality_codes=codes,
        principals=principals,
        readings=readings,
        auth=_auth(entry, environ),
        notify_url=notify_url,
        retry=retry_policy(entry, defaults),
        batch_size=entry.integer(
            "batch_size", expected="entities per update, 1..1000", minimum=1, default=defaults.get("batch_size", 100)
        ),
    )


def load_bridge_config(
    path: Path, packs: Sequence[RegionPack], policy: AccessPolicy, *, environ: Mapping[str, str] | None = None
) -> BridgeConfig:
    """Read and validate the bridge file; resolve each auth value from its environment variable or file."""
    environ = os.environ if environ is None else environ
    document = Entry(read_yaml(path, "Orion bridge file"), path, expected="a mapping with version: 1 and orions: [...]")
    if document.get("version") != 1:
        raise document.error(f"version is {document.get('version')!r}", "version: 1 and orions: [...]")
    defaults = document.child("defaults")
    orions: list[OrionTarget] = []
    for i, raw in document.entries("orions", expected="a non-empty list of Orion platforms"):
        target = _target(raw, i, path, defaults, packs, policy, environ)
        if any(t.id == target.id for t in orions):
            raise ConfigError(path, "declared twice", where=f"orion {target.id}", expected="unique ids")
        if target.batch_size > 1000:
            raise ConfigError(path, f"batch_size is {target.batch_size}", where=f"orion {target.id}", expected="≤ 1000")
        orions.append(target)
    return BridgeConfig(path=str(path), orions=tuple(orions))
