"""Webhook subscriptions (pure part): the config file, signing, retry schedule, request bodies.

A subscription delivers one municipality's alert events (a designated city: all its wards) to an HTTP
endpoint, as JSON or CAP 1.2 XML. Every request is signed:

    X-Bosai-Timestamp: <unix seconds>
    X-Bosai-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

and carries ``X-Bosai-Alert-Id`` / ``X-Bosai-Sequence`` so the receiver applies each message once
(a retried or redriven delivery repeats them). Secrets are never in the config file itself: it names
an environment variable (``secret_env``) or a file outside the repo (``secret_file``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from streams.configfile import read_yaml
from streams.errors import ConfigError

FORMATS = ("json", "cap")
# Client errors a retry cannot fix: go straight to the sink dead-letter topic.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Wait before attempt number ``attempt + 1`` (attempt >= 1): exponential, with equal jitter."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Subscription:
    id: str
    region: str
    municipality_code: str
    url: str
    secret: str = field(default="", repr=False)   # never printed
    format: str = "json"
    retry: RetryPolicy = RetryPolicy()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


def json_body(alert: Mapping) -> bytes:
    return json.dumps(alert, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def headers(subscription: Subscription, alert: Mapping, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8" if subscription.format == "json"
        else "application/cap+xml; charset=utf-8",
        "User-Agent": "bosai-hub-webhook/1",
        "X-Bosai-Subscription": subscription.id,
        "X-Bosai-Alert-Id": alert["alert_id"],
        "X-Bosai-Sequence": str(alert["sequence"]),
        "X-Bosai-Timestamp": str(timestamp),
        "X-Bosai-Signature": sign(subscription.secret, timestamp, body),
    }


# -- the config file ---------------------------------------------------------------------------------

def load_subscriptions(path: Path, packs: Sequence, *, environ: Mapping[str, str] | None = None) -> list[Subscription]:
    """Read and validate a subscriptions file; resolve each secret from its env var or file."""
    environ = os.environ if environ is None else environ
    document = read_yaml(path, "subscriptions file")
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ConfigError(path, "expected a mapping with version: 1 and subscriptions: [...]")
    defaults = document.get("defaults") or {}
    entries = document.get("subscriptions")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(path, "key 'subscriptions': expected a non-empty list")
    out, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"subscriptions[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, "expected a mapping with id, municipality, url, secret_env|secret_file",
                              where=where)
        sub_id = entry.get("id")
        if not isinstance(sub_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", sub_id):
            raise ConfigError(path, f"key 'id' is {sub_id!r}", where=where,
                              expected="lower-case letters, digits, '_' or '-' (it names the consumer group)")
        where = f"subscription {sub_id}"
        if sub_id in seen:
            raise ConfigError(path, "declared twice", where=where)
        seen.add(sub_id)
        if "secret" in entry:
            raise ConfigError(path, "key 'secret': secrets do not belong in this file", where=where,
                              expected="secret_env (an environment variable) or secret_file (a file outside the repo)")
        query = str(entry.get("municipality", ""))
        found = [(pack, pack.find_municipality(query)) for pack in packs]
        found = [(pack, code) for pack, code in found if code]
        if len(found) != 1:
            raise ConfigError(path, f"key 'municipality' is {query!r}", where=where,
                              expected="a JIS X 0402 code or name of a municipality in the region packs")
        pack, code = found[0]
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise ConfigError(path, f"key 'url' is {url!r}", where=where, expected="an http:// or https:// URL")
        fmt = entry.get("format", defaults.get("format", "json"))
        if fmt not in FORMATS:
            raise ConfigError(path, f"key 'format' is {fmt!r}", where=where, expected="json or cap")
        secret = _secret(path, where, entry, environ)
        retry_doc = {**(defaults.get("retry") or {}), **(entry.get("retry") or {})}
        try:
            retry = RetryPolicy(**{k: (int(v) if k == "max_attempts" else float(v)) for k, v in retry_doc.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(path, f"key 'retry': {exc}", where=where,
                              expected="max_attempts, initial_backoff_s, max_backoff_s, timeout_s") from exc
        if retry.max_attempts < 1 or retry.timeout_s <= 0:
            raise ConfigError(path, "key 'retry': max_attempts must be >= 1 and timeout_s > 0", where=where)
        out.append(Subscription(id=sub_id, region=pack.name, municipality_code=code, url=url, secret=secret,
                                format=fmt, retry=retry))
    return out


def _secret(path: Path, where: str, entry: dict[str, Any], environ: Mapping[str, str]) -> str:
    if entry.get("secret_env"):
        value = environ.get(entry["secret_env"], "")
        if not value:
            raise ConfigError(path, f"environment variable {entry['secret_env']} (secret_env) is not set", where=where)
        return value
    if entry.get("secret_file"):
        secret_path = Path(entry["secret_file"]).expanduser()
        try:
            value = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(path, f"secret_file {secret_path}: {exc.strerror}", where=where) from exc
        if not value:
            raise ConfigError(path, f"secret_file {secret_path} is empty", where=where)
        return value
    raise ConfigError(path, "no secret", where=where, expected="secret_env or secret_file")
