"""`bosai bridge orion subscribe`: one NGSI-v2 subscription per Orion, pointing at the gateway. Idempotent.

The subscription is made under the Orion's *sensors'* ``Fiware-ServicePath`` only (never the path the
hub writes under), names exactly the entities of the region pack's Orion table, and carries the
Orion's own bearer token in ``httpCustom.headers``: the gateway's Orion door requires it. The token is
issued into the gateway's token store (hashed) and handed to nobody but the Orion. Running the command
again changes nothing when the Orion already holds the same subscription with a token that is still
valid; a changed table, URL or a revoked/rotated token is PATCHed; extra copies (ours, by description)
are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from streams.fiware.bridge_file import OrionTarget
from streams.fiware.ngsi_in import NORMALIZED, EntityMapping
from streams.fiware.orion import OrionClient
from streams.kernel.errors import BosaiError
from streams.security.token_store import TokenStore

Progress = Callable[[str], None]
TOKEN_HEADER = "Authorization"


def description_of(target: OrionTarget) -> str:
    return f"bosai hub {target.id}: sensors of {target.service}{target.sensor_service_path} to the hub gateway"


def subscription_body(target: OrionTarget, mappings: Iterable[EntityMapping], token: str) -> dict[str, Any]:
    entities = sorted({(m.entity_id, m.entity_type) for m in mappings if m.orion == target.id})
    if not entities:
        raise BosaiError(
            f"orion {target.id}: the region pack's Orion table lists no entity of it (files.orion_entities)"
        )
    return {
        "description": description_of(target),
        "subject": {"entities": [{"id": i, "type": t} for i, t in entities]},
        "notification": {
            "httpCustom": {"url": target.notify_url, "headers": {TOKEN_HEADER: f"Bearer {token}"}},
            "attrsFormat": NORMALIZED,
        },
    }


def _same(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether the Orion's subscription does what we want (its token checked separately)."""
    notification = existing.get("notification") or {}
    return (
        existing.get("description") == wanted["description"]
        and existing.get("subject", {}).get("entities") == wanted["subject"]["entities"]
        and (notification.get("httpCustom") or {}).get("url") == wanted["notification"]["httpCustom"]["url"]
        and notification.get("attrsFormat", NORMALIZED) == NORMALIZED
        and existing.get("status", "active") in ("active", "failed")
    )


def _token_in(existing: Mapping[str, Any]) -> str:
    """The token the Orion's subscription sends (empty when it sends none, or the document has another shape)."""
    headers = ((existing.get("notification") or {}).get("httpCustom") or {}).get("headers") or {}
    header = headers.get(TOKEN_HEADER, "") if isinstance(headers, dict) else ""
    return header.removeprefix("Bearer ").strip() if isinstance(header, str) else ""


@dataclass(frozen=True)
class SubscribeResult:
    orion: str
    action: str  # created | updated | unchanged
    subscription_id: str
    removed: tuple[str, ...] = ()


async def subscribe(
    target: OrionTarget, mappings: Iterable[EntityMapping], store: TokenStore, *, rotate: bool = False
) -> SubscribeResult:
    """Make the Orion hold exactly one subscription of ours, as wanted; returns what was done."""
    if not target.sensor_service_path or not target.notify_url:
        raise BosaiError(f"orion {target.id}: subscribe needs sensor_service_path and notify_url in the bridge file")
    subject = f"orion:{target.id}"
    path = target.sensor_service_path
    async with aiohttp.ClientSession() as session:
        client = OrionClient(session, target)
        ours = [s for s in await client.subscriptions(path) if s.body.get("description") == description_of(target)]
        keep = ours[0] if ours else None
        removed = tuple(s.id for s in ours[1:])
        for extra in removed:
            await client.delete_subscription(extra, path)
        held = _token_in(keep.body) if keep is not None else ""
        token_ok = keep is not None and not rotate and store.holds(subject, held)
        token = held if token_ok else store.issue(subject)
        wanted = subscription_body(target, mappings, token)
        if keep is None:
            created = await client.create_subscription(wanted, path)
            return SubscribeResult(target.id, "created", created, removed)
        if token_ok and _same(keep.body, wanted):
            return SubscribeResult(target.id, "unchanged", keep.id, removed)
        await client.update_subscription(keep.id, {**wanted, "status": "active"}, path)
        return SubscribeResult(target.id, "updated", keep.id, removed)
