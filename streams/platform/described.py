"""Every HTTP door serves its own OpenAPI 3.1 document at ``/openapi.json`` (``openapi/<door>.yaml``)."""

from __future__ import annotations

import json

from aiohttp import web

from streams.platform.openapi_docs import load_openapi


def add_openapi(app: web.Application, door: str) -> None:
    """``GET /openapi.json``: the door's document, read once when the app is built."""
    body = json.dumps(load_openapi(door), ensure_ascii=False, default=str).encode()

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/openapi.json", openapi)
