"""A FIWARE Orion Context Broker (NGSI-v2) client: exactly the requests the hub uses.

- ``POST /v2/op/update`` with ``actionType: append`` (create or update entities, in batches);
- ``GET /v2/entities/{id}`` (a redrive checks it never overwrites something newer);
- ``DELETE /v2/entities/{id}/attrs/{attr}`` (an observation lacking a model attribute its previous one
  had, e.g. ``waterLevel`` below the gauge's zero, must not keep the old value beside the new time);
- ``GET|POST /v2/subscriptions``, ``PATCH|DELETE /v2/subscriptions/{id}`` (the idempotent subscription);
- ``DELETE /v2/entities/{id}`` (tests that run against a real Orion clean up after themselves).

Every request carries ``Fiware-Service``, ``Fiware-ServicePath`` and the configured auth header.
Errors come back as :class:`OrionError` with Orion's ``error``/``description`` and whether a retry
can help (5xx, 408, 429, timeouts and connection errors can; a 400 cannot).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from streams.delivery.webhooks import PERMANENT_STATUSES
from streams.fiware.bridge_file import OrionTarget
from streams.fiware.ngsi import Entity
from streams.kernel import json_input
from streams.kernel.json_input import JsonInputError
from streams.kernel.redact import redact

BAD_ANSWER = "bad_answer"  # an answer the client cannot read (OrionError.error; a metric's result)
SUBSCRIPTION_PAGE, MAX_SUBSCRIPTION_PAGES = 100, 100


class OrionError(Exception):
    def __init__(self, status: int | None, error: str, description: str = ""):
        self.status, self.error, self.description = status, error, description
        where = f"HTTP {status} " if status is not None else ""
        super().__init__(f"{where}{error}{': ' + description if description else ''}")

    @property
    def permanent(self) -> bool:
        """A refusal a retry cannot change (bad request, not allowed, not found, too large …)."""
        return self.status in PERMANENT_STATUSES

    @property
    def result(self) -> str:
        """For metrics: ok is not an error; http_4xx, http_5xx, timeout, connection."""
        if self.status is None:
            return self.error
        return "http_4xx" if self.status < 500 else "http_5xx"


@dataclass(frozen=True)
class Subscription:
    id: str
    body: dict[str, Any] = field(repr=False)  # holds the gateway token Orion sends with each notification


class OrionClient:
    """One Orion, one tenant (Fiware-Service) and one service path per call."""

    def __init__(self, session: aiohttp.ClientSession, target: OrionTarget, *, timeout_s: float | None = None):
        self.session, self.target = session, target
        self.timeout = aiohttp.ClientTimeout(total=timeout_s or target.retry.timeout_s)

    def headers(self, service_path: str, *, body: bool = False) -> dict[str, str]:
        out = {"Fiware-Service": self.target.service, "Fiware-ServicePath": service_path, "Accept": "application/json"}
        if body:
            out["Content-Type"] = "application/json"
        if self.target.auth is not None:
            out[self.target.auth.header] = self.target.auth.value
        return out

    async def _request(
        self, method: str, path: str, service_path: str, *, payload: Any = None, params: Mapping[str, str] | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        try:
            async with self.session.request(
                method,
                f"{self.target.url}{path}",
                data=data,
                params=params,
                headers=self.headers(service_path, body=data is not None),
                timeout=self.timeout,
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise _error(response.status, body, self._secrets())
                return response.status, response.headers, body
        except TimeoutError:
            raise OrionError(None, "timeout", f"no answer within {self.timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise OrionError(None, "connection", redact(f"{type(exc).__name__}: {exc}", self._secrets())) from None

    def _secrets(self) -> list[str]:
        """What an error must never quote: the Orion credential (and, by pattern, any bearer token)."""
        return [self.target.auth.value] if self.target.auth is not None else []

    # -- entities ------------------------------------------------------------------------------------
    async def append(self, entities: Sequence[Entity], *, service_path: str | None = None) -> None:
        """Create or update the entities (normalized) in one batch: Orion answers 204."""
        await self._request(
            "POST",
            "/v2/op/update",
            service_path or self.target.service_path,
            payload={"actionType": "append", "entities": list(entities)},
        )

    async def entity(self, entity_id: str, entity_type: str, *, service_path: str | None = None) -> Entity | None:
        """The entity as keyValues, or None when Orion has none by that id."""
        try:
            _, _, body = await self._request(
                "GET",
                f"/v2/entities/{quote(entity_id, safe='')}",
                service_path or self.target.service_path,
                params={"type": entity_type, "options": "keyValues"},
            )
        except OrionError as exc:
            if exc.status == 404:
                return None
            raise
        document = _document(body, "the entity")
        if not isinstance(document, dict):
            raise OrionError(None, BAD_ANSWER, f"the entity is {str(document)[:80]!r}, not an object")
        return document

    async def delete_attribute(
        self, entity_id: str, entity_type: str, attribute: str, *, service_path: str | None = None
    ) -> bool:
        """``DELETE /v2/entities/{id}/attrs/{attr}``: True when removed, False when there was none (404)."""
        try:
            await self._request(
                "DELETE",
                f"/v2/entities/{quote(entity_id, safe='')}/attrs/{quote(attribute, safe='')}",
                service_path or self.target.service_path,
                params={"type": entity_type},
            )
        except OrionError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def delete_entity(self, entity_id: str, entity_type: str, *, service_path: str | None = None) -> None:
        await self._request(
            "DELETE",
            f"/v2/entities/{quote(entity_id, safe='')}",
            service_path or self.target.service_path,
            params={"type": entity_type},
        )

    # -- subscriptions --------------------------------------------------------------------------------
    async def subscriptions(self, service_path: str) -> list[Subscription]:
        """Every subscription of the tenant and path (paged, 100 at a time; at most MAX_SUBSCRIPTION_PAGES pages).

        The pages end at a short page or at Fiware-Total-Count, whichever comes first: an Orion (or a proxy)
        that answers the same full page with a count it never reaches cannot keep the client asking forever.
        """
        found: list[Subscription] = []
        for _page in range(MAX_SUBSCRIPTION_PAGES):
            _, headers, body = await self._request(
                "GET",
                "/v2/subscriptions",
                service_path,
                params={"limit": str(SUBSCRIPTION_PAGE), "offset": str(len(found)), "options": "count"},
            )
            page = _document(body, "the subscriptions")
            if not isinstance(page, list) or not all(
                isinstance(s, dict) and isinstance(s.get("id"), str) for s in page
            ):
                raise OrionError(None, BAD_ANSWER, f"the subscriptions are {str(page)[:80]!r}, not a list of them")
            found += [Subscription(s["id"], s) for s in page]
            count = headers.get("Fiware-Total-Count", "")
            total = int(count) if count.isascii() and count.isdigit() else len(found)
            if len(page) < SUBSCRIPTION_PAGE or len(found) >= total:
                return found
        raise OrionError(None, BAD_ANSWER, f"more than {len(found)} subscriptions in {service_path} (or a paging loop)")

    async def create_subscription(self, body: Mapping[str, Any], service_path: str) -> str:
        _, headers, _ = await self._request("POST", "/v2/subscriptions", service_path, payload=body)
        return headers.get("Location", "").rsplit("/", 1)[-1]

    async def update_subscription(self, subscription_id: str, body: Mapping[str, Any], service_path: str) -> None:
        await self._request("PATCH", f"/v2/subscriptions/{quote(subscription_id, safe='')}", service_path, payload=body)

    async def delete_subscription(self, subscription_id: str, service_path: str) -> None:
        await self._request("DELETE", f"/v2/subscriptions/{quote(subscription_id, safe='')}", service_path)


def _document(body: bytes, what: str) -> Any:
    """An Orion answer's JSON (strict, bounded depth); OrionError ``bad_answer`` when it is not JSON."""
    try:
        return json_input.loads(body)
    except JsonInputError as exc:
        raise OrionError(None, BAD_ANSWER, f"{what}: {exc}") from None


def _error(status: int, body: bytes, secrets: list[str]) -> OrionError:
    """Orion's error, bounded, with anything secret it might echo (a proxy quoting a header) redacted."""
    try:
        document = json_input.loads(body)
        error, description = str(document.get("error", ""))[:200], str(document.get("description", ""))[:500]
    except (JsonInputError, AttributeError):
        error, description = body[:200].decode("utf-8", "replace").strip() or "(no body)", ""
    return OrionError(status, redact(error, secrets), redact(description, secrets))
