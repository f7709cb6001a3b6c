"""What the Orion integration tests share: the Orion under test (the stand-in, or a real one at
BOSAI_ORION_URL in a throwaway Fiware-Service, cleaned up afterwards) and a gateway in the test's loop.

To run the same tests against a real Orion (a municipality's, or `docker run fiware/orion`):

    BOSAI_ORION_URL=http://orion.example.jp:1026 \\
    BOSAI_GATEWAY_PUBLIC_URL=http://<this machine as Orion reaches it> \\
    BOSAI_ORION_AUTH_HEADER=X-Auth-Token BOSAI_ORION_AUTH_VALUE=… \\
    pytest tests/integration/test_orion_bridge.py

The tests then write only under a new service ``bosaitest_<random>`` and delete every entity and
subscription they made there at the end.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, replace

import aiohttp

from streams.fiware.bridge_file import OrionAuth, OrionTarget
from streams.fiware.ngsi_schemas import schema_errors
from streams.fiware.orion import OrionClient
from tests.support.orion_standin import OrionStandIn

ENV_URL = "BOSAI_ORION_URL"
ENV_PUBLIC = "BOSAI_GATEWAY_PUBLIC_URL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def real_orion() -> str | None:
    return os.environ.get(ENV_URL, "").rstrip("/") or None


@dataclass
class OrionUnderTest:
    url: str
    service: str
    standin: OrionStandIn | None  # None against a real Orion
    auth: OrionAuth | None = None

    @property
    def real(self) -> bool:
        return self.standin is None

    def gateway_host(self) -> tuple[str, str]:
        """(address to bind the gateway on, base URL the Orion reaches it at)."""
        port = free_port()
        if self.real:
            public = os.environ.get(ENV_PUBLIC, "").rstrip("/")
            if not public:
                raise RuntimeError(f"{ENV_PUBLIC} must say where the Orion at {self.url} reaches this machine")
            return "0.0.0.0", f"{public}:{port}"
        return "127.0.0.1", f"http://127.0.0.1:{port}"

    async def entities(self, target: OrionTarget, entity_type: str, service_path: str | None = None) -> list[dict]:
        """Every entity of the type under the path, as keyValues, read back over NGSI-v2."""
        path = service_path or target.service_path
        out = []
        async with aiohttp.ClientSession() as session:
            client = OrionClient(session, target)
            while True:
                async with session.get(
                    f"{self.url}/v2/entities",
                    params={"type": entity_type, "options": "keyValues", "limit": "100", "offset": str(len(out))},
                    headers=client.headers(path),
                ) as answer:
                    page = await answer.json()
                out += page
                if len(page) < 100:
                    return out

    async def cleanup(self, target: OrionTarget, paths: list[str], types: list[str]) -> None:
        """Delete what the test made (a real Orion keeps nothing of it)."""
        async with aiohttp.ClientSession() as session:
            client = OrionClient(session, target)
            for path in paths:
                for sub in await client.subscriptions(path):
                    await client.delete_subscription(sub.id, path)
                for entity_type in types:
                    for entity in await self.entities(target, entity_type, path):
                        await client.delete_entity(entity["id"], entity_type, service_path=path)


async def start_orion() -> OrionUnderTest:
    url = real_orion()
    if url:
        auth = None
        if os.environ.get("BOSAI_ORION_AUTH_HEADER"):
            auth = OrionAuth(os.environ["BOSAI_ORION_AUTH_HEADER"], os.environ.get("BOSAI_ORION_AUTH_VALUE", ""))
        return OrionUnderTest(url, f"bosaitest_{uuid.uuid4().hex[:10]}", None, auth)
    standin = OrionStandIn()
    return OrionUnderTest(await standin.start(), "nasushiobara", standin)


def schema_problems(entities: list[dict]) -> dict[str, list[str]]:
    return {e["id"]: errors for e in entities if (errors := schema_errors(e))}


def with_auth(target: OrionTarget, orion: OrionUnderTest) -> OrionTarget:
    return replace(target, auth=orion.auth) if orion.auth else target
