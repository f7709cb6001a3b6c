"""What `bosai web` sends over HTTP besides the live stream: bodies held in memory with their validators,
the page's files, and the security headers every response carries."""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from streams.kernel.errors import BosaiError


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Body:
    """A response body held in memory, with its validator and a gzip copy for large ones."""

    data: bytes
    content_type: str
    etag: str
    cache_control: str = "no-cache"
    gzipped: bytes | None = None

    @classmethod
    def of(cls, data: bytes, content_type: str, *, cache_control: str = "no-cache", etag: str | None = None) -> Body:
        tag = etag or '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        packed = gzip.compress(data, 6, mtime=0) if len(data) > 4096 else None
        return cls(data, content_type, tag, cache_control, packed)

    def respond(self, request: web.Request) -> web.Response:
        headers = {"ETag": self.etag, "Cache-Control": self.cache_control, "Vary": "Accept-Encoding"}
        if self.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        if self.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=self.gzipped, headers=headers, content_type=self.content_type)
        return web.Response(body=self.data, headers=headers, content_type=self.content_type)


def load_assets(folder: Path) -> dict[str, Body]:
    """Every file of the page (web/), read once into memory: name -> body."""
    if not (folder / "index.html").is_file():
        raise BosaiError(f"{folder}: no index.html (the residents' map's page ships in the checkout's web/ folder)")
    assets = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        cache = "no-cache" if name == "index.html" else "public, max-age=3600"
        assets[name] = Body.of(path.read_bytes(), content_type, cache_control=cache)
    return assets


def security_headers(tile_url: str | None) -> dict[str, str]:
    tiles = ""
    if tile_url:  # the tile server's origin; Leaflet's {s} subdomains become a wildcard
        parts = urlsplit(tile_url)
        tiles = f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
