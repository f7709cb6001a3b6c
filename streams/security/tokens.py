"""Bearer tokens of the HTTP doors (the sensor gateway, Orion's notifications): their shape and check (pure).

A token is ``bst.<token id>.<secret>``; stores keep only the SHA-256 of the secret
(:mod:`streams.security.token_store`), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TOKEN_PREFIX = "bst"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or len(parts[2]) < 20:
        return None
    return parts[1], parts[2]


def token_matches(token: str, stored: Mapping[str, Mapping[str, str]]) -> str | None:
    """The subject (``owner:<id>`` / ``orion:<id>``) a token authenticates, or None."""
    parts = split_token(token)
    if parts is None:
        return None
    entry = stored.get(parts[0])
    if entry is None or not hmac.compare_digest(entry["sha256"], secret_hash(parts[1])):
        return None
    return entry["subject"]
