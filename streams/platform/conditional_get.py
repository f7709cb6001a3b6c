"""Conditional GET for the HTTP doors (the feed, the map): ETag of the body and Last-Modified, 304 when the client's
copy is current (If-None-Match first; If-Modified-Since only without it, RFC 9110 13.2.2)."""

from __future__ import annotations

import hashlib
from email.utils import formatdate, parsedate_to_datetime

from aiohttp import web


def _matches(etag: str, if_none_match: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal to ours (weak comparison)."""
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


def _not_modified_since(header: str, last_modified_s: float) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # a date we cannot read: answer in full
    return int(last_modified_s) <= since


def conditional(
    request: web.Request,
    body: bytes,
    content_type: str,
    *,
    last_modified_s: float | None,
    cache_control: str = "private, no-cache",
) -> web.Response:
    """A response with ETag (of the body) and Last-Modified, or 304 when the client's copy is current:
    If-None-Match first; If-Modified-Since only without it (RFC 9110 13.2.2)."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Authorization"}
    if last_modified_s is not None:
        headers["Last-Modified"] = formatdate(last_modified_s, usegmt=True)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        fresh = _matches(etag, if_none_match)
    else:
        since = request.headers.get("If-Modified-Since")
        fresh = since is not None and last_modified_s is not None and _not_modified_since(since, last_modified_s)
    if fresh:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type=content_type, charset="utf-8")
