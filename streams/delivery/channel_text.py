"""What an alert event says to people on an e-mail or chat channel, in Japanese (pure).

One :func:`context` per alert event and channel: the subject (municipality, level, transition), the lines of
the message and JMA's fields, the same for e-mail bodies (:mod:`streams.delivery.email_message`) and chat
payloads (:mod:`streams.delivery.chat_payloads`), built-in or an operator's template.

Relay, never impersonate (気象業務法): a relayed JMA report is worded as JMA's — its headline and text verbatim,
the issuing office, 「出典：気象庁」 — and the hub's own threshold alerts are observations (観測): they never say
警報, 注意報, 予報 or a bare 警戒レベルN (always 警戒レベルN相当). Nothing here reads the clock: the event times are
the alert's own.

Addresses are kept like credentials: :func:`redact_addresses` takes them (and anything that looks like one)
out of any text that may reach a log, a metric or a dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from streams.delivery.cap import JMA_CREDIT, is_relayed
from streams.kernel.messages import AvroRecord
from streams.kernel.times import jst

# What a transition is called in a subject: the hub's observations, and JMA's reports (発表 … 解除).
TRANSITION_HUB = {
    "RAISED": "発生",
    "ESCALATED": "引き上げ",
    "DEESCALATED": "引き下げ",
    "UPDATED": "更新",
    "CLEARED": "解除",
}
TRANSITION_JMA = {
    "RAISED": "発表",
    "ESCALATED": "切替（引き上げ）",
    "DEESCALATED": "切替（引き下げ）",
    "UPDATED": "更新",
    "CLEARED": "解除",
}
STATUS_MARK = {"Exercise": "【訓練】", "Test": "【試験】"}
# What people should do at an equivalent 警戒レベル (the hub's own alerts only; JMA's words stand alone).
INSTRUCTION_HUB = {
    2: "警戒レベル2相当: ハザードマップ等で避難行動を確認してください。",
    3: "警戒レベル3相当: 高齢者等は危険な場所から避難してください。",
    4: "警戒レベル4相当: 危険な場所から全員避難してください。",
    5: "警戒レベル5相当: 命の危険、直ちに安全確保してください。",
}
HUB_NATURE = "観測値が基準を超えたことをお知らせする防災データ連携基盤の観測情報です（気象庁の発表ではありません）。"
JMA_NATURE = f"気象庁が発表した情報を、防災データ連携基盤が気象庁の文言のまま中継しています（{JMA_CREDIT}）。"

ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")
ADDRESS_REDACTED = "[address]"


def redact_addresses(text: str, addresses: Iterable[str] = ()) -> str:
    """Text with the given addresses, and anything that looks like an e-mail address, replaced."""
    for address in sorted({a for a in addresses if a}, key=len, reverse=True):
        text = re.sub(re.escape(address), ADDRESS_REDACTED, text, flags=re.IGNORECASE)
    return ADDRESS.sub(ADDRESS_REDACTED, text)


def jst_text(epoch_ms: int) -> str:
    """An event time for people: 2023年9月4日 12時00分 (JST)."""
    t = jst(epoch_ms)
    return f"{t.year}年{t.month}月{t.day}日 {t.hour:02d}時{t.minute:02d}分"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


def level_label(alert: AvroRecord) -> str:
    """The equivalent 警戒レベル, if the alert's level stands for one: always 警戒レベルN相当."""
    level = alert.get("warning_level")
    return f"警戒レベル{level}相当" if level else ""


def subject(alert: AvroRecord, municipality: str) -> str:
    """The subject: whose information, the municipality, the event and level, the transition."""
    relayed = is_relayed(alert)
    mark = STATUS_MARK.get(alert.get("status", "Actual"), "")
    label = level_label(alert)
    what = f"{alert['event']}（{label}）" if label else alert["event"]
    if relayed:
        transition = TRANSITION_JMA.get(alert["transition"], alert["transition"])
        return f"{mark}【気象庁発表・{JMA_CREDIT}】{municipality} {what} {transition}"
    transition = TRANSITION_HUB.get(alert["transition"], alert["transition"])
    return f"{mark}【観測情報】{municipality} {what} {transition}"


def context(alert: AvroRecord, *, municipality: str, channel: str) -> dict[str, Any]:
    """Everything a channel's template may say of one alert event (the values of the built-in templates too)."""
    relayed = is_relayed(alert)
    cleared = alert["transition"] == "CLEARED"
    lines: list[tuple[str, str]] = []
    out: dict[str, Any] = {
        "channel": channel,
        "municipality": municipality,
        "subject": subject(alert, municipality),
        "title": subject(alert, municipality),
        "source": "jma" if relayed else "hub",
        "relayed": relayed,
        "credit": JMA_CREDIT if relayed else "",
        "nature": JMA_NATURE if relayed else HUB_NATURE,
        "headline": alert["headline"],
        "event": alert["event"],
        "level": level_label(alert),
        "transition": (TRANSITION_JMA if relayed else TRANSITION_HUB).get(alert["transition"], alert["transition"]),
        "transition_code": alert["transition"],
        "cleared": cleared,
        "area": alert["area"]["description"],
        "time": jst_text(alert["observed_at"]),
        "alert_id": alert["alert_id"],
        "sequence": alert["sequence"],
        "status": alert.get("status", "Actual"),
        "instruction": "",
        "jma": None,
        "alert": alert,
    }
    if relayed:
        official = alert["official"]
        out["jma"] = {
            "office": official["publishing_office"],
            "title": official["head_title"],
            "info_kind": official["info_kind"],
            "info_type": official["info_type"],
            "headline": official.get("headline") or "",
            "text": official.get("text") or "",
            "event_id": official["event_id"],
            "serial": official["serial"],
            "credit": official.get("credit") or JMA_CREDIT,
            "report_time": jst_text(official["report_datetime"]),
        }
        lines += [
            ("発表", f"気象庁 {official['publishing_office']}"),
            ("情報", official["head_title"]),
            ("種別", f"{official['info_type']}（{out['transition']}）"),
            ("対象地域", alert["area"]["description"]),
            ("発表時刻", out["jma"]["report_time"]),
        ]
        if out["level"]:
            lines.append(("警戒レベル", out["level"]))
    else:
        unit = alert.get("unit") or ""
        value, threshold = _number(alert.get("value")), _number(alert.get("threshold"))
        lines += [
            ("観測", alert["event"]),
            ("状況", out["transition"]),
            ("観測値", f"{value} {unit}".strip() if value else "—"),
            ("基準値", f"{threshold} {unit}".strip() if threshold else "—"),
            ("観測地点", alert["station_id"]),
            ("対象地域", alert["area"]["description"]),
            ("観測時刻", out["time"]),
        ]
        if out["level"]:
            lines.append(("警戒レベル", out["level"]))
        if not cleared and alert.get("warning_level") in INSTRUCTION_HUB:
            out["instruction"] = INSTRUCTION_HUB[alert["warning_level"]]
    out["lines"] = lines
    out["text"] = plain_summary(out)
    return out


def plain_summary(ctx: dict[str, Any]) -> str:
    """A few lines for chat messages: the headline, the facts, JMA's words or the instruction, the credit."""
    parts = [ctx["headline"], *(f"{label}: {value}" for label, value in ctx["lines"])]
    jma = ctx["jma"]
    if jma is not None:
        parts += [w for w in (jma["headline"], jma["text"]) if w]
        parts.append(f"（{jma['credit']}）")
    elif ctx["instruction"]:
        parts.append(ctx["instruction"])
    parts.append(ctx["nature"])
    return "\n".join(parts)
