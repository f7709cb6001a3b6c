"""Atom feeds of current CAP messages, per municipality, per prefecture and public (pure part).

Like JMA's XML feed (気象庁防災情報XML) and L-Alert's intake: an Atom feed lists the current messages,
each entry linking to its CAP document. ``CurrentAlerts`` keeps the latest message of every alert
episode; a Cancel stays listed for ``cancel_retention_ms`` of event time so readers see the all-clear,
and an alert with ``expires`` (a relayed 記録的短時間大雨情報) is treated as ended from then on. Episodes that
ended longer ago than that are forgotten, with their CAP messages, so a feed that runs for months holds
only what it can still list (the soak, `bosai bench soak`, found it growing with every alert ever). Entries of
relayed JMA reports name JMA as their author, with its credit.
Who sees what follows the sharing level and the access file's principals (``visible``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.delivery.cap import DEFAULT_IDENTITY, JMA_CREDIT, CapIdentity, cap_identifier, cap_time, is_relayed
from streams.kernel.access import Principal, visible
from streams.kernel.messages import AvroRecord
from streams.kernel.times import HOUR_MS

ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass
class CurrentAlerts:
    """The latest message of each alert episode, fed in any order (older sequences are ignored)."""

    cancel_retention_ms: int = 6 * HOUR_MS
    latest: dict[str, AvroRecord] = field(default_factory=dict)  # alert_id -> record
    by_identifier: dict[str, AvroRecord] = field(default_factory=dict)  # CAP identifier -> record (every message)
    newest_event_ms: dict[str, int] = field(default_factory=dict)  # region -> newest observed_at
    prune_every: int = 256  # applied messages between two prunes
    _applied: int = field(default=0, repr=False)

    def apply(self, record: AvroRecord) -> list[str]:
        """Take one alert event; returns the alert ids this call forgot (see :meth:`prune`), usually none."""
        self.by_identifier[cap_identifier(record["alert_id"], record["sequence"])] = record
        current = self.latest.get(record["alert_id"])
        if current is None or record["sequence"] > current["sequence"]:
            self.latest[record["alert_id"]] = record
        region = record["region"]
        self.newest_event_ms[region] = max(self.newest_event_ms.get(region, 0), record["observed_at"])
        self._applied += 1
        return self.prune() if self._applied % self.prune_every == 0 else []

    def prune(self) -> list[str]:
        """Forget the episodes no feed lists any more, for good: cancelled, or past their ``expires``, more
        than ``cancel_retention_ms`` of their region's event time ago; their CAP messages go with them.
        Messages of one episode arrive in order (keyed by alert id), so none of a forgotten one comes later."""
        gone: list[str] = []
        for alert_id, record in list(self.latest.items()):
            horizon = self.newest_event_ms.get(record["region"], 0) - self.cancel_retention_ms
            cancelled = record["msg_type"] == "CANCEL" and record["observed_at"] < horizon
            if cancelled or (record.get("expires") is not None and record["expires"] < horizon):
                del self.latest[alert_id]
                for sequence in range(record["sequence"] + 1):
                    self.by_identifier.pop(cap_identifier(alert_id, sequence), None)
                gone.append(alert_id)
        return gone

    def current(self, now_ms: int | None = None) -> list[AvroRecord]:
        """Open episodes' latest messages, and recent cancels; newest first. An alert whose ``expires`` has
        passed (by the region's newest event time, or ``now_ms`` when given) has ended and is left out."""
        out: list[AvroRecord] = []
        for record in self.latest.values():
            newest = self.newest_event_ms.get(record["region"], 0)  # cancels stay for a while in event time
            if record["msg_type"] == "CANCEL" and record["observed_at"] < newest - self.cancel_retention_ms:
                continue
            if record.get("expires") is not None and record["expires"] <= max(newest, now_ms or 0):
                continue
            out.append(record)
        return sorted(out, key=lambda r: (r["observed_at"], r["alert_id"]), reverse=True)


def feed_entries(
    alerts: CurrentAlerts,
    principal: Principal,
    *,
    region: str | None = None,
    municipality_code: str | None = None,
    public_only: bool = False,
    now_ms: int | None = None,
) -> list[AvroRecord]:
    out: list[AvroRecord] = []
    for record in alerts.current(now_ms):
        if not visible(principal, record):
            continue
        if region is not None and record["region"] != region:
            continue
        if municipality_code is not None and (
            municipality_code not in record["municipality_codes"] or record["sharing_level"] == "INTERNAL"
        ):
            continue
        if public_only and record["sharing_level"] != "PUBLIC":
            continue
        out.append(record)
    return out


def render_atom(
    entries: Iterable[AvroRecord],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    cap_url: str,
    identity: CapIdentity = DEFAULT_IDENTITY,
) -> bytes:
    """An Atom 1.0 feed; each entry links to its CAP 1.2 document (``cap_url`` formats the identifier) and has
    a stable id of the operator's naming authority (``urn:uuid:``, :meth:`CapIdentity.urn`)."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    entries = list(entries)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "title", title)
    sub(feed, "id", feed_id)
    sub(feed, "updated", cap_time(max((e["observed_at"] for e in entries), default=0)))
    author = sub(feed, "author")
    sub(author, "name", "bosai hub")
    sub(feed, "link", rel="self", href=self_url)
    for record in entries:
        identifier = cap_identifier(record["alert_id"], record["sequence"])
        entry = sub(feed, "entry")
        sub(entry, "title", record["headline"])
        sender = identity.sender(record["region"], record.get("source", "hub"))
        sub(entry, "id", identity.urn(f"cap:{sender}:{identifier}"))  # CAP's (sender, identifier) is unique
        sub(entry, "updated", cap_time(record["observed_at"]))
        if is_relayed(record):
            relayed_by = sub(entry, "author")
            sub(relayed_by, "name", f"気象庁 {record['official']['publishing_office']}（{JMA_CREDIT}）")
        sub(entry, "link", rel="alternate", type="application/cap+xml", href=cap_url.format(identifier=identifier))
        sub(entry, "category", term=record["msg_type"].title())
        sub(
            entry,
            "content",
            f"{record['msg_type'].title()}: {record['headline']} ({' '.join(record['municipality_codes'])})",
            type="text",
        )
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
