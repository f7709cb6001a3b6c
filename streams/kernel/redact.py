"""Secrets out of text that may reach a log, an error, a dead letter or a metric (pure).

Used where text from outside (an HTTP library's error, an Orion's answer) is put into our own messages:
the known secrets of that context are replaced (with their base64 forms, as an Authorization header
carries them), and so are whatever looks like one — a bearer or basic credential, a gateway token's
secret part, a URL's user information.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

REDACTED = "[redacted]"
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
_GATEWAY_TOKEN = re.compile(r"\b(bst\.[0-9a-f]+\.)[A-Za-z0-9_-]+")
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/@\s?#]*@", re.IGNORECASE)
_ORIGIN = re.compile(r"^([a-z][a-z0-9+.-]*://)(?:[^/@?#]*@)?([^/?#]*)", re.IGNORECASE)


def forms(secret: str) -> set[str]:
    """The secret and the base64 forms it travels in (standard and URL-safe, with and without padding)."""
    raw = secret.encode("utf-8")
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {secret} | encoded | {e.rstrip("=") for e in encoded}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with the given secrets (and anything that looks like a credential) replaced by [redacted]."""
    for value in sorted({f for s in secrets if s and len(s) >= 4 for f in forms(s)}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m[1]} {REDACTED}", text)
    text = _GATEWAY_TOKEN.sub(lambda m: m[1] + REDACTED, text)
    return _USERINFO.sub(lambda m: m[1] + REDACTED + "@", text)


def url_origin(url: str) -> str:
    """``scheme://host:port`` of a URL, without user, path or query: all a log needs of a URL that may carry a
    secret (a webhook URL often does, in its path or query)."""
    found = _ORIGIN.match(url)
    return f"{found[1]}{found[2]}" if found else "(a URL)"
