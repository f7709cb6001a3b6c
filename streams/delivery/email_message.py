"""E-mail of one alert event for one e-mail channel: plain text and HTML in Japanese, threaded (pure).

One message per alert transition. Both bodies come from Jinja2 templates (the HTML one autoescaped) over
:func:`streams.delivery.channel_text.context`. Threading follows RFC 5322: every message of an episode has a
``Message-ID`` derived only from the alert id, the sequence, the channel and the sender's domain, so a
retry or a redrive sends the same id again (mail clients show it once), and a later message names the
episode's first (sequence 0) in ``In-Reply-To`` and the first and the previous in ``References``: the whole
episode reads as one thread. Every message carries ``List-Unsubscribe`` (mailto) and ``List-Id``.

Recipients are never written in the headers (``To: undisclosed-recipients:;``): they travel in the SMTP
envelope only, so no address leaks from one municipal mailbox to another or into a forwarded message.
Nothing here reads the clock: the ``Date`` is passed in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import DictLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from streams.delivery.channel_text import context
from streams.kernel.messages import AvroRecord

TEXT_TEMPLATE = """\
{{ nature }}

{{ headline }}

{% for label, value in lines %}{{ label }}: {{ value }}
{% endfor %}
{%- if jma %}
---- 気象庁の発表文（原文のまま） ----
{% if jma.headline %}{{ jma.headline }}
{% endif %}{% if jma.text %}{{ jma.text }}
{% endif %}
（{{ jma.credit }}　{{ jma.title }}　EventID {{ jma.event_id }}　Serial {{ jma.serial }}）
{%- elif instruction %}
{{ instruction }}
{%- endif %}

--
このメールは防災データ連携基盤（bosai hub）が {{ municipality }} の防災担当者向けに
送信しています（配信: {{ channel }}）。
アラートID: {{ alert_id }} / 通番: {{ sequence }}
配信停止の依頼: List-Unsubscribe ヘッダーの宛先へ
"""

HTML_TEMPLATE = """\
<!DOCTYPE html>
<html lang="ja">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif">
<p style="color:#555">{{ nature }}</p>
<h1 style="font-size:1.2em">{{ headline }}</h1>
<table style="border-collapse:collapse">
{%- for label, value in lines %}
<tr><th style="text-align:left;padding:2px 8px">{{ label }}</th><td style="padding:2px 8px">{{ value }}</td></tr>
{%- endfor %}
</table>
{%- if jma %}
<h2 style="font-size:1em">気象庁の発表文（原文のまま）</h2>
{%- if jma.headline %}
<p style="white-space:pre-wrap">{{ jma.headline }}</p>
{%- endif %}
{%- if jma.text %}
<p style="white-space:pre-wrap">{{ jma.text }}</p>
{%- endif %}
<p>{{ jma.credit }}（{{ jma.title }}、EventID {{ jma.event_id }}、Serial {{ jma.serial }}）</p>
{%- elif instruction %}
<p><strong>{{ instruction }}</strong></p>
{%- endif %}
<hr>
<p style="color:#555;font-size:0.9em">このメールは防災データ連携基盤（bosai hub）が {{ municipality }}
の防災担当者向けに送信しています（配信: {{ channel }}）。<br>
アラートID: {{ alert_id }} / 通番: {{ sequence }}</p>
</body>
</html>
"""

_TEMPLATES = SandboxedEnvironment(
    loader=DictLoader({"alert.txt": TEXT_TEMPLATE, "alert.html": HTML_TEMPLATE}),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


@dataclass(frozen=True)
class MailIdentity:
    """Who sends (the ``From``), the domain of the Message-IDs, and where people ask to be taken off."""

    sender: str  # an address the operator owns, e.g. bosai-tochigi@pref.example.lg.jp
    unsubscribe: str  # a mailto: address, e.g. bosai-unsubscribe@pref.example.lg.jp
    display_name: str = "防災データ連携基盤"

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2].lower()


def message_id(alert_id: str, sequence: int, channel: str, domain: str) -> str:
    """The stable Message-ID of one alert event on one channel (a retry or redrive sends the same)."""
    left = f"{alert_id}.{sequence}.{channel}"
    if not _ATEXT.fullmatch(left) or ".." in left or left.startswith(".") or left.endswith("."):
        left = hashlib.sha256(left.encode("utf-8")).hexdigest()[:40]
    return f"<{left}@{domain}>"


def thread_headers(alert: AvroRecord, channel: str, domain: str) -> dict[str, str]:
    """Message-ID, and for a later message of the episode In-Reply-To (the first) and References."""
    alert_id, sequence = alert["alert_id"], int(alert["sequence"])
    headers = {"Message-ID": message_id(alert_id, sequence, channel, domain)}
    if sequence > 0:
        first = message_id(alert_id, 0, channel, domain)
        previous = message_id(alert_id, sequence - 1, channel, domain)
        headers["In-Reply-To"] = first
        headers["References"] = first if previous == first else f"{first} {previous}"
    return headers


def bodies(ctx: dict[str, Any]) -> tuple[str, str]:
    """(plain text, HTML) of one alert event."""
    return _TEMPLATES.get_template("alert.txt").render(ctx), _TEMPLATES.get_template("alert.html").render(ctx)


def render_email(
    alert: AvroRecord, *, channel: str, municipality: str, identity: MailIdentity, date: datetime
) -> EmailMessage:
    """The message of one alert event for one channel (recipients go in the SMTP envelope, not here)."""
    ctx = context(alert, municipality=municipality, channel=channel)
    text, html = bodies(ctx)
    message = EmailMessage()
    local, _, domain = identity.sender.partition("@")
    message["From"] = Address(identity.display_name, local, domain)
    message["To"] = "undisclosed-recipients:;"
    message["Subject"] = ctx["subject"]
    message["Date"] = format_datetime(date)
    for name, value in thread_headers(alert, channel, identity.domain).items():
        message[name] = value
    list_subject = f"unsubscribe%20{channel}"  # a channel id is [a-z0-9_-]: nothing else to escape
    message["List-Id"] = f"bosai {channel} <{channel}.{identity.domain}>"
    message["List-Unsubscribe"] = f"<mailto:{identity.unsubscribe}?subject={list_subject}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Bosai-Alert-Id"] = alert["alert_id"]
    message["X-Bosai-Sequence"] = str(alert["sequence"])
    message["X-Bosai-Source"] = ctx["source"]
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def smtp_code_result(code: int) -> tuple[str, bool]:
    """What an SMTP reply code means for a delivery: (the attempt's result, permanent?). 5xx is permanent (dead-
    lettered without retry: a refused recipient, a refused message, a failed AUTH); 4xx is temporary (retried)."""
    if 500 <= code < 600:
        return "smtp_5xx", True
    if 400 <= code < 500:
        return "smtp_4xx", False
    return "connection", False  # no reply code (-1: a broken session …): retried
