"""The token store of the HTTP doors: one bearer token per subject (``owner:<id>`` or ``orion:<id>``), kept as the
SHA-256 of its secret in a 0600 JSON file outside the repo.

``issue`` returns the token once (issuing again rotates it), ``revoke`` removes it. The gateway re-reads the
file when it changes, so both apply at once.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from streams.kernel.errors import ConfigError
from streams.platform.secret_files import check_private, write_secret
from streams.platform.settings import cache_dir
from streams.security.tokens import TOKEN_PREFIX, secret_hash, token_matches

ENV_TOKENS = "BOSAI_GATEWAY_TOKENS"


def default_tokens_path() -> Path:
    """``BOSAI_GATEWAY_TOKENS``, else the cache folder (outside the repo)."""
    return (
        Path(os.environ[ENV_TOKENS]).expanduser()
        if os.environ.get(ENV_TOKENS)
        else cache_dir() / "gateway" / "tokens.json"
    )


class TokenStore:
    """Hashed bearer tokens in a 0600 JSON file: ``{"tokens": {token id: {subject, sha256, issued_at}}}``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, str]]:
        """The stored tokens; a store others may read or write is refused (anyone who can write it can let
        themselves in)."""
        if not self.path.exists():
            return {}
        check_private(self.path, "the gateway's token store")
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            tokens = document["tokens"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                self.path, f"not a token store: {exc}", expected='{"tokens": {...}} written by bosai'
            ) from exc
        if not isinstance(tokens, dict):
            raise ConfigError(self.path, "tokens is not a mapping", expected='{"tokens": {...}}')
        return tokens

    def mtime_ns(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def _save(self, tokens: Mapping[str, Mapping[str, str]]) -> None:
        write_secret(self.path, json.dumps({"tokens": tokens}, indent=2, sort_keys=True))

    def issue(self, subject: str) -> str:
        """A new token for the subject (any previous one stops working); returned once, stored hashed."""
        tokens = {k: v for k, v in self.load().items() if v.get("subject") != subject}
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        tokens[token_id] = {
            "subject": subject,
            "sha256": secret_hash(secret),
            "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._save(tokens)
        return f"{TOKEN_PREFIX}.{token_id}.{secret}"

    def revoke(self, subject: str) -> bool:
        tokens = self.load()
        kept = {k: v for k, v in tokens.items() if v.get("subject") != subject}
        if len(kept) == len(tokens):
            return False
        self._save(kept)
        return True

    def has(self, subject: str) -> bool:
        return any(v.get("subject") == subject for v in self.load().values())

    def holds(self, subject: str, token: str) -> bool:
        """Whether token is the subject's current one (used by the idempotent Orion subscription)."""

        return token_matches(token, self.load()) == subject
