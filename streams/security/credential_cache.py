"""Answers for credentials checked recently, so a door asks the broker as little as it must (pure).

Keyed by a keyed hash (HMAC-SHA256 with a random key the process holds in memory only) of the user name
and password: the cache never holds a password, and its keys are worthless outside the process. A
right credential is remembered ``ok_s`` (rotation and revocation apply within that time), a wrong one
``refused_s`` (a client retrying a rotated password costs the broker one handshake per ``refused_s``).
At most ``max_keys`` answers are kept; the oldest go first.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from itertools import islice


class CredentialCache:
    def __init__(self, key: bytes, *, ok_s: float, refused_s: float, max_keys: int = 10_000):
        if len(key) < 16:
            raise ValueError("the cache key must be at least 16 random bytes")
        self._key = key
        self.ok_s, self.refused_s, self.max_keys = ok_s, refused_s, max_keys
        self._answers: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def __repr__(self) -> str:
        return f"CredentialCache({len(self._answers)} answers, ok {self.ok_s:g}s, refused {self.refused_s:g}s)"

    def fingerprint(self, username: str, password: str) -> bytes:
        """The keyed hash of a credential: what the cache (and the login limits) hold instead of it."""
        message = username.encode("utf-8", "surrogatepass") + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, fingerprint: bytes, now_s: float) -> bool | None:
        """True (right), False (wrong) or None (not known, or no longer)."""
        found = self._answers.get(fingerprint)
        if found is None:
            return None
        ok, expires_s = found
        if now_s >= expires_s:
            del self._answers[fingerprint]
            return None
        return ok

    def put(self, fingerprint: bytes, ok: bool, now_s: float) -> None:
        ttl = self.ok_s if ok else self.refused_s
        self._answers.pop(fingerprint, None)
        if ttl <= 0:
            return
        for old in list(islice(self._answers, 8)):  # amortised upkeep: expired answers from the oldest end
            if now_s >= self._answers[old][1]:
                del self._answers[old]
        while len(self._answers) >= self.max_keys:
            self._answers.popitem(last=False)
        self._answers[fingerprint] = (ok, now_s + ttl)
