"""OASIS CAP 1.2 (Common Alerting Protocol) rendering of alert events (validated against the XSD by
:mod:`streams.delivery.cap_schema`).

One alert event (an ``Alert`` record) is one CAP message: ``identifier`` is ``<alert_id>.<sequence>``,
``msgType`` Alert/Update/Cancel, ``references`` names the message it follows as CAP's
``sender,identifier,sent`` triple, ``scope`` comes from the sharing level (データ共有の必要度):
public → Public, municipal → Restricted (the concerned municipalities and the prefecture),
internal → Private (addressed to the prefecture). Times are event times in JST (``+09:00``: the XSD
rejects ``Z``), so the same alert always renders the same bytes.

Who sends is configuration (:class:`CapIdentity`, from ``BOSAI_CAP_AUTHORITY`` — a domain the operator owns
— and optional sender templates; :mod:`streams.delivery.cap_identity`): the hub's own alerts as
``bosai-<region>@<authority>``, its relay of JMA's as ``jma-relay-<region>@<authority>``; the Atom ids of the
feeds are ``urn:uuid:`` names derived from the authority. Every message has a ``ja-JP`` and an ``en-US`` info
block (:mod:`streams.delivery.cap_english`).

Relayed official reports (``source`` jma) render as JMA's, never as the hub's own: the sender is the
relay's, ``sent`` is the report's ReportDateTime (+09:00),
``status`` is the report's (Exercise / Test for 訓練 / 試験), ``expires`` is set where the alert ends by
itself, and the text is JMA's headline and wording, credited 「出典：気象庁」, with EventID, Serial and
InfoType as parameters. The hub adds no instruction of its own to JMA's words.

Pure: no Kafka. ``zone_polygons`` (zone id → lon/lat ring) is passed in by callers that hold a pack.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.delivery import cap_english as en
from streams.delivery.cap_english import CapEnglish
from streams.kernel.alerts import CAP_MSG_TYPE
from streams.kernel.messages import AvroRecord
from streams.kernel.times import jst

if TYPE_CHECKING:
    from streams.kernel.region import RegionPack

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
GEOCODE_NAME = "JIS X 0402"

_SCOPE = {"PUBLIC": "Public", "MUNICIPAL": "Restricted", "INTERNAL": "Private"}
# 警戒レベル (5-level alert level) → what people should do (CAP responseType).
_RESPONSE: dict[int | None, str] = {2: "Monitor", 3: "Prepare", 4: "Evacuate", 5: "Execute"}
_INSTRUCTION = {
    2: "警戒レベル2相当: ハザードマップ等で避難行動を確認してください。(Check evacuation routes.)",
    3: "警戒レベル3相当: 高齢者等は危険な場所から避難してください。(Elderly and others evacuate.)",
    4: "警戒レベル4相当: 危険な場所から全員避難してください。(Everyone evacuate from dangerous places.)",
    5: "警戒レベル5相当: 命の危険、直ちに安全確保してください。(Secure your safety immediately.)",
}

ZonePolygons = Callable[[Sequence[str]], list[list[tuple[float, float]]]]


def cap_identifier(alert_id: str, sequence: int) -> str:
    return f"{alert_id}.{sequence}"


JMA_CREDIT = "出典：気象庁"
# CAP geocode names of JMA's area codes, by rule
JMA_GEOCODES = {
    "jma_landslide": "JMA 市町村等",
    "jma_flood": "JMA 指定河川洪水予報（予報区域）",
    "jma_record_rain": "JMA 府県予報区・細分区域等",
    "jma_warning": "JMA 市町村等",
    "jma_earthquake": "JMA 市町村等 / 震央地名",
    "jma_tsunami": "JMA 津波予報区",
    "jma_tornado": "JMA 府県予報区・細分区域等",
}
# CAP category: earthquakes and tsunami are geophysical, the rest meteorological
GEO_RULES = frozenset({"jma_earthquake", "jma_tsunami"})


DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
SENDER_CHARS = re.compile(r"^[^\s,<&]+$")  # CAP 1.2: no spaces, commas or restricted characters (< &)
UNOWNED = "bosai-hub.invalid"  # RFC 2606's reserved TLD: the default says plainly that nobody owns it


@dataclass(frozen=True)
class CapIdentity:
    """Who sends the hub's CAP messages, and the naming authority of its identifiers (a domain the operator
    owns). Templates may use ``{region}`` and ``{authority}``; :meth:`problems` says what is wrong."""

    authority: str = UNOWNED
    sender_template: str = "bosai-{region}@{authority}"
    relay_template: str = "jma-relay-{region}@{authority}"

    def sender(self, region: str, source: str = "hub") -> str:
        template = self.relay_template if source == "jma" else self.sender_template
        return template.format(region=region, authority=self.authority)

    def urn(self, name: str) -> str:
        """A stable, globally unique id for a feed or entry (``urn:uuid:``, derived from the authority)."""
        return uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_DNS, self.authority), name).urn

    def problems(self) -> list[str]:
        found = [] if DOMAIN.match(self.authority) else [f"authority {self.authority!r} is not a DNS domain name"]
        for name, template in (("sender", self.sender_template), ("relay sender", self.relay_template)):
            try:
                text = template.format(region="tochigi", authority=self.authority)
            except (KeyError, IndexError, ValueError) as exc:
                found.append(f"{name} template {template!r}: only {{region}} and {{authority}} ({exc})")
                continue
            if not SENDER_CHARS.match(text) or self.authority not in text:
                found.append(f"{name} template {template!r}: no spaces, commas, < or &, and it names the authority")
        if self.sender_template == self.relay_template:
            found.append("the relay of JMA's reports needs a sender of its own (never the hub's)")
        return found


DEFAULT_IDENTITY = CapIdentity()


def is_relayed(alert: AvroRecord) -> bool:
    """A relayed official report (JMA's words), not one of the hub's own threshold alerts."""
    return alert.get("source") == "jma" and alert.get("official") is not None


def cap_time(epoch_ms: int) -> str:
    return jst(epoch_ms).isoformat(timespec="seconds")


def references_triple(alert: AvroRecord, identity: CapIdentity = DEFAULT_IDENTITY) -> str | None:
    """CAP references (sender,identifier,sent) of the message this one follows."""
    if not alert.get("references") or alert.get("references_observed_at") is None:
        return None
    alert_id, _, sequence = alert["references"].rpartition("/")
    return ",".join(
        (
            identity.sender(alert["region"], alert.get("source", "hub")),
            cap_identifier(alert_id, int(sequence)),
            cap_time(alert["references_observed_at"]),
        )
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _head(
    root: ET.Element, alert: AvroRecord, status: str, prefecture_principal: str | None, identity: CapIdentity
) -> None:
    """identifier … incidents: who sent what, when, to whom."""
    _sub(root, "identifier", cap_identifier(alert["alert_id"], alert["sequence"]))
    _sub(root, "sender", identity.sender(alert["region"], alert.get("source", "hub")))
    _sub(root, "sent", cap_time(alert["observed_at"]))
    _sub(root, "status", alert.get("status") or status)
    _sub(root, "msgType", CAP_MSG_TYPE[alert["msg_type"]])
    if is_relayed(alert):
        official = alert["official"]
        _sub(
            root,
            "source",
            f"気象庁防災情報XML {official['info_kind']} EventID={official['event_id']} Serial={official['serial']} "
            f"InfoType={official['info_type']} ({official['publishing_office']}; relayed by bosai hub; {JMA_CREDIT})",
        )
    else:
        _sub(root, "source", f"bosai hub rule {alert['rule']}, station {alert['station_id']}")
    sharing = alert["sharing_level"]
    _sub(root, "scope", _SCOPE[sharing])
    if sharing == "MUNICIPAL":
        _sub(
            root,
            "restriction",
            "関係市町村と県のみ (the concerned municipalities and the prefecture only): "
            + " ".join(alert["municipality_codes"]),
        )
    elif sharing == "INTERNAL":
        _sub(root, "addresses", prefecture_principal or f"pref-{alert['region']}")
    references = references_triple(alert, identity)
    if references:
        _sub(root, "references", references)
    _sub(root, "incidents", alert["alert_id"])


def _parameters(info: ET.Element, alert: AvroRecord) -> None:
    parameters = [
        ("level", alert["level"]),
        ("level_rank", str(alert["level_rank"])),
        ("transition", alert["transition"]),
        ("sharing_level", alert["sharing_level"].lower()),
        ("station_id", alert["station_id"]),
    ]
    if alert.get("warning_level") is not None:
        parameters.insert(0, ("警戒レベル", str(alert["warning_level"])))
    if alert.get("value") is not None:
        parameters.append(("value", f"{_fmt(alert['value'])} {alert.get('unit', '')}".strip()))
    for name, value in parameters:
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", name)
        _sub(parameter, "value", value)


def _official_parameters(info: ET.Element, alert: AvroRecord) -> None:
    official = alert["official"]
    parameters = [
        ("EventID", official["event_id"]),
        ("Serial", official["serial"]),
        ("InfoType", official["info_type"]),
        ("InfoKind", official["info_kind"]),
        ("JMA area", f"{official.get('area_name', '')} {' '.join(official.get('area_codes') or [])}".strip()),
        ("JMA level", alert["level"]),
        ("condition", official.get("condition") or ""),
        ("credit", official.get("credit") or JMA_CREDIT),
    ]
    if alert.get("warning_level") is not None:
        parameters.insert(0, ("警戒レベル相当", str(alert["warning_level"])))
    for name, value in parameters:
        if value:
            parameter = _sub(info, "parameter")
            _sub(parameter, "valueName", name)
            _sub(parameter, "value", value)


def _info_head(root: ET.Element, alert: AvroRecord, language: str, event: str, code: tuple[str, str]) -> ET.Element:
    """language … effective: what kind of event, how bad, since when (the same in every language)."""
    info = _sub(root, "info")
    _sub(info, "language", language)
    _sub(info, "category", "Geo" if alert.get("rule") in GEO_RULES else "Met")
    _sub(info, "event", event)
    if alert["msg_type"] == "CANCEL":
        _sub(info, "responseType", "AllClear")
    else:
        _sub(info, "responseType", _RESPONSE.get(alert.get("warning_level"), "Monitor"))
    _sub(info, "urgency", alert["urgency"])
    _sub(info, "severity", alert["severity"])
    _sub(info, "certainty", alert["certainty"])
    event_code = _sub(info, "eventCode")
    _sub(event_code, "valueName", code[0])
    _sub(event_code, "value", code[1])
    _sub(info, "effective", cap_time(alert["observed_at"]))
    return info


def _relayed_info(root: ET.Element, alert: AvroRecord, language: str) -> ET.Element:
    """JMA's report as JMA's: its headline and wording, credited; no instruction of the hub's own. In English,
    a headline saying whose information it is, and JMA's words as they are (Japanese)."""
    official = alert["official"]
    english = language != "ja-JP"
    code = ("JMA:InfoKind/Kind", f"{official['info_kind']}/{official.get('kind_code') or ''}".rstrip("/"))
    event = f"{en.relayed_event(official)} (JMA)" if english else alert["event"]
    info = _info_head(root, alert, language, event, code)
    if alert.get("expires") is not None:
        _sub(info, "expires", cap_time(alert["expires"]))
    office = official["publishing_office"]
    if english:
        _sub(info, "senderName", f"Japan Meteorological Agency, {office} ({en.SOURCE_JMA}; relayed by bosai hub)")
        _sub(info, "headline", en.relayed_headline(official, alert["msg_type"] == "CANCEL"))
    else:
        _sub(info, "senderName", f"気象庁 {office}（{JMA_CREDIT}; relayed by bosai hub）")
        _sub(info, "headline", alert["headline"])
    words = [official.get("headline") or "", official.get("text") or ""]
    japanese = "\n".join(w for w in words if w) + (
        f"\n\n[{official['head_title']} {official.get('area_name', '')} {official.get('condition', '')}; "
        f"EventID {official['event_id']}, Serial {official['serial']}, InfoType {official['info_type']}] {JMA_CREDIT}"
    )
    _sub(info, "description", en.relayed_description(japanese) if english else japanese)
    _official_parameters(info, alert)
    return info


def _info(root: ET.Element, alert: AvroRecord, sender_name: str, language: str, english: CapEnglish) -> ET.Element:
    """What happened, how bad, what to do (the hub's own alert, in Japanese or in English)."""
    if is_relayed(alert):
        return _relayed_info(root, alert, language)
    in_english = language != "ja-JP"
    event = english.event(alert) if in_english else alert["event"]
    info = _info_head(root, alert, language, event, ("bosai:rule", f"{alert['rule']}/{alert['level']}"))
    if sender_name:
        _sub(info, "senderName", f"{sender_name} (bosai hub)" if in_english else sender_name)
    unit = alert.get("unit", "")
    value, threshold = f"{_fmt(alert.get('value'))} {unit}".strip(), f"{_fmt(alert.get('threshold'))} {unit}".strip()
    sent = cap_time(alert["observed_at"])
    if in_english:
        _sub(info, "headline", english.headline(alert, value))
        _sub(info, "description", english.description(alert, value, threshold, sent))
    else:
        _sub(info, "headline", alert["headline"])
        _sub(
            info,
            "description",
            f"{alert['event']}: {value} (threshold {threshold}) at station {alert['station_id']}, {sent}; "
            f"{alert['transition'].lower()}.",
        )
    instructions = en.INSTRUCTIONS_EN if in_english else _INSTRUCTION
    if alert["msg_type"] != "CANCEL" and alert.get("warning_level") in instructions:
        _sub(info, "instruction", instructions[alert["warning_level"]])
    _parameters(info, alert)
    return info


def _area(info: ET.Element, alert: AvroRecord, zone_polygons: ZonePolygons | None) -> None:
    """Where: the municipality names and codes, the station, the linked hazard zones."""
    area = alert["area"]
    area_element = _sub(info, "area")
    _sub(area_element, "areaDesc", area["description"] or " ".join(alert["municipality_codes"]))
    zone_ids = list(area.get("hazard_zone_ids") or [])
    if zone_ids and zone_polygons is not None:
        for ring in zone_polygons(zone_ids):
            _sub(area_element, "polygon", " ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in ring))
    point = area.get("point")
    if point:
        _sub(area_element, "circle", f"{point['lat']:.5f},{point['lon']:.5f} 0")
    for municipality_code in alert["municipality_codes"]:
        geocode = _sub(area_element, "geocode")
        _sub(geocode, "valueName", GEOCODE_NAME)
        _sub(geocode, "value", municipality_code)
    if is_relayed(alert):
        for area_code in alert["official"].get("area_codes") or []:
            geocode = _sub(area_element, "geocode")
            _sub(geocode, "valueName", JMA_GEOCODES.get(alert["rule"], "JMA area"))
            _sub(geocode, "value", area_code)


def render(
    alert: AvroRecord,
    *,
    sender_name: str = "",
    status: str = "Actual",
    prefecture_principal: str | None = None,
    zone_polygons: ZonePolygons | None = None,
    identity: CapIdentity = DEFAULT_IDENTITY,
    english: CapEnglish | None = None,
) -> bytes:
    """The CAP 1.2 XML of one alert event (UTF-8, with XML declaration): a ``ja-JP`` and an ``en-US`` info block."""
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _head(root, alert, status, prefecture_principal, identity)
    for language in ("ja-JP", "en-US"):
        _area(_info(root, alert, sender_name, language, english or CapEnglish()), alert, zone_polygons)
    ET.register_namespace("", CAP_NS)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def zone_polygons_of(pack: RegionPack, max_points: int = 200) -> ZonePolygons:
    """A ZonePolygons for a region pack: each zone's outer ring(s), simplified to at most ~max_points."""
    return lambda zone_ids: pack.zone_rings(zone_ids, max_points)
