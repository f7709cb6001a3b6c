"""Webhook subscriptions (pure part): signing, retry schedule, request bodies (the file: config/subscriptions.py).

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
import random
from dataclasses import dataclass, field

from streams.kernel.messages import AvroRecord

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
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** (attempt - 1))
        jitter = random.uniform(0, ceiling / 2) if rng is None else rng.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


@dataclass(frozen=True)
class Subscription:
    id: str
    region: str
    municipality_code: str
    url: str
    secret: str = field(default="", repr=False)  # never printed
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


def json_body(alert: AvroRecord) -> bytes:
    return json.dumps(alert, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def headers(subscription: Subscription, alert: AvroRecord, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8"
        if subscription.format == "json"
        else "application/cap+xml; charset=utf-8",
        "User-Agent": "bosai-hub-webhook/1",
        "X-Bosai-Subscription": subscription.id,
        "X-Bosai-Alert-Id": alert["alert_id"],
        "X-Bosai-Sequence": str(alert["sequence"]),
        "X-Bosai-Timestamp": str(timestamp),
        "X-Bosai-Signature": sign(subscription.secret, timestamp, body),
    }
