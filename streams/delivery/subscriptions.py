"""The webhook subscriptions file (``bosai sink --config``): read, validate, resolve each secret.

Secrets are never in the file itself: it names an environment variable (``secret_env``) or a file
outside the repo (``secret_file``). See ``deploy/subscriptions.example.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streams.delivery.webhooks import FORMATS, RetryPolicy, Subscription
from streams.kernel.errors import ConfigError
from streams.kernel.region import RegionPack
from streams.platform.checks import Entry
from streams.platform.secret_files import read_secret, shown_env_name
from streams.platform.yamlfile import read_yaml

SUBSCRIPTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
URL = re.compile(r"https?://\S+")
RETRY_KEYS = ("max_attempts", "initial_backoff_s", "max_backoff_s", "timeout_s")


def secret_of(
    entry: Entry, environ: Mapping[str, str], key: str = "secret", what: str = "the webhook secret file"
) -> str:
    """The secret an entry names by ``<key>_env`` (an environment variable) or ``<key>_file`` (a private file)."""
    if entry.get(f"{key}_env"):
        name = str(entry.get(f"{key}_env"))
        value = environ.get(name, "")
        if not value:
            raise entry.error(
                f"environment variable {shown_env_name(name)} ({key}_env) is not set",
                "the variable set in the sink's environment",
            )
        return value
    if entry.get(f"{key}_file"):
        where = f"{entry.where}: {key}_file of {entry.file}"
        return read_secret(Path(str(entry.get(f"{key}_file"))), what, where=where)
    raise entry.error(f"no {key}", f"{key}_env or {key}_file")


def retry_policy(entry: Entry, defaults: Entry) -> RetryPolicy:
    """An entry's ``retry`` over the file's defaults (webhook subscriptions, Orion targets)."""
    merged = Entry({**defaults.child("retry").value, **entry.child("retry").value}, entry.file, f"{entry.where} retry")
    unknown = set(merged.value) - set(RETRY_KEYS)
    if unknown:
        raise merged.error(f"unknown keys {sorted(unknown)}", ", ".join(RETRY_KEYS))
    values: dict[str, Any] = {key: merged.number(key, minimum=0) for key in merged.value}  # checked numbers
    if "max_attempts" in values:
        values["max_attempts"] = merged.integer("max_attempts", expected="an integer >= 1", minimum=1)
    retry = RetryPolicy(**values)
    if retry.timeout_s <= 0:
        raise merged.error(f"timeout_s is {retry.timeout_s}", "> 0 seconds")
    return retry


def municipality_of(entry: Entry, packs: Sequence[RegionPack]) -> tuple[RegionPack, str]:
    """The pack and JIS code of an entry's ``municipality`` (a code or a name), exactly one in the packs."""
    query = str(entry.get("municipality", ""))
    found = [(pack, code) for pack in packs if (code := pack.find_municipality(query))]
    if len(found) != 1:
        raise entry.error(
            f"municipality is {query!r}", "a JIS X 0402 code or name of a municipality in the region packs"
        )
    return found[0]


def _subscription(
    raw: object, i: int, path: Path, defaults: Entry, packs: Sequence[RegionPack], environ: Mapping[str, str]
) -> Subscription:
    entry = Entry(
        raw, path, f"subscriptions[{i}]", expected="a mapping with id, municipality, url, secret_env|secret_file"
    )
    sub_id = entry.text(
        "id", pattern=SUBSCRIPTION_ID, expected="lower-case letters, digits, '_' or '-' (it names the consumer group)"
    )
    entry = entry.at(f"subscription {sub_id}")
    if "secret" in entry:
        raise entry.error(
            "key 'secret': secrets do not belong in this file",
            "secret_env (an environment variable) or secret_file (a file outside the repo)",
        )
    pack, code = municipality_of(entry, packs)
    return Subscription(
        id=sub_id,
        region=pack.name,
        municipality_code=code,
        url=entry.text("url", pattern=URL, expected="an http:// or https:// URL"),
        secret=secret_of(entry, environ),
        format=entry.choice("format", FORMATS, default=defaults.get("format", "json")),
        retry=retry_policy(entry, defaults),
    )


def read_document(path: Path) -> Entry:
    """The subscriptions file as an Entry, its version checked."""
    document = Entry(
        read_yaml(path, "subscriptions file"),
        path,
        expected="a mapping with version: 1 and subscriptions: [...] and/or channels: [...]",
    )
    if document.get("version") != 1:
        raise document.error(
            f"version is {document.get('version')!r}", "version: 1 and subscriptions: [...] and/or channels: [...]"
        )
    return document


def load_subscriptions(
    path: Path, packs: Sequence[RegionPack], *, environ: Mapping[str, str] | None = None
) -> list[Subscription]:
    """Read and validate a subscriptions file's webhooks; resolve each secret from its env var or file.

    A file may hold only e-mail and chat ``channels`` (:mod:`streams.delivery.channels`): then no webhooks."""
    environ = os.environ if environ is None else environ
    document = read_document(path)
    defaults = document.child("defaults")
    out: list[Subscription] = []
    if "subscriptions" not in document and document.get("channels"):
        return out
    for i, raw in document.entries("subscriptions", expected="a non-empty list"):
        subscription = _subscription(raw, i, path, defaults, packs, environ)
        if any(s.id == subscription.id for s in out):
            raise ConfigError(path, "declared twice", where=f"subscription {subscription.id}", expected="unique ids")
        out.append(subscription)
    return out
