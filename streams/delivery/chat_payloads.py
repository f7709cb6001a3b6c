"""Chat messages of alert events: incoming-webhook payloads from Jinja2 JSON templates (pure).

Four kinds of chat channel, all the same way: a template over
:func:`streams.delivery.channel_text.context` renders the JSON body of one POST, which is parsed (so only
valid JSON is ever sent) and re-serialised.

* ``teams`` — Microsoft Teams (a Workflows "when a webhook request is received" flow): an Adaptive Card;
* ``slack`` — a Slack incoming webhook: ``text`` and Block Kit blocks;
* ``lineworks`` — a LINE WORKS incoming webhook: ``title`` and ``body.text``;
* ``template`` — an operator's own Jinja2 template (a file named in the subscriptions file), rendered in
  Jinja2's sandbox and checked on load against a relayed JMA report and one of the hub's own alerts.

Templates get the context's keys (``subject``, ``text``, ``lines``, ``jma``, ``credit`` …, and ``alert``, the
whole record) and the filters ``tojson`` (use it for every value: it quotes and escapes) and ``slack`` (Slack's
``&``, ``<``, ``>``). What a webhook's answer means for the connector is :func:`classify_status` (429 honours
``Retry-After``: :func:`retry_after_s`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from streams.delivery.channel_text import context
from streams.kernel.messages import AvroRecord

KINDS = ("teams", "slack", "lineworks", "template")

TEAMS = """\
{
  "type": "message",
  "attachments": [{
    "contentType": "application/vnd.microsoft.card.adaptive",
    "contentUrl": null,
    "content": {
      "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
      "type": "AdaptiveCard",
      "version": "1.4",
      "body": [
        {"type": "TextBlock", "text": {{ subject | tojson }}, "weight": "Bolder", "size": "Medium", "wrap": true},
        {"type": "TextBlock", "text": {{ headline | tojson }}, "wrap": true},
        {"type": "FactSet", "facts": [
          {%- for label, value in lines %}
          {"title": {{ label | tojson }}, "value": {{ value | tojson }}}{{ "," if not loop.last }}
          {%- endfor %}
        ]},
        {%- if jma %}
        {"type": "TextBlock", "text": {{ ((jma.headline ~ "\\n" ~ jma.text) | trim) | tojson }}, "wrap": true},
        {%- elif instruction %}
        {"type": "TextBlock", "text": {{ instruction | tojson }}, "wrap": true, "weight": "Bolder"},
        {%- endif %}
        {"type": "TextBlock", "text": {{ nature | tojson }}, "wrap": true, "isSubtle": true, "size": "Small"}
      ]
    }
  }]
}
"""

SLACK = """\
{
  "text": {{ (subject ~ "\\n" ~ headline) | slack | tojson }},
  "blocks": [
    {"type": "header", "text": {"type": "plain_text", "text": {{ subject[:150] | tojson }}}},
    {"type": "section", "text": {"type": "plain_text", "text": {{ text[:3000] | tojson }}}}
  ]
}
"""

LINEWORKS = """\
{
  "title": {{ subject | tojson }},
  "body": {"text": {{ text | tojson }}}
}
"""

BUILT_IN = {"teams": TEAMS, "slack": SLACK, "lineworks": LINEWORKS}


class PayloadError(ValueError):
    """A template that does not render, or renders something that is not JSON."""


def _slack_escape(value: object) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tojson(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters["tojson"] = _tojson  # plain JSON (Jinja2's own escapes for HTML, which a JSON body does not need)
_ENV.filters["slack"] = _slack_escape


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled payload template (built-in or the operator's)."""

    kind: str
    source: str

    def render(self, alert: AvroRecord, *, municipality: str, channel: str) -> bytes:
        """The JSON body of one POST; PayloadError when the template fails or its output is not JSON."""
        try:
            text = _ENV.from_string(self.source).render(context(alert, municipality=municipality, channel=channel))
        except TemplateError as exc:
            raise PayloadError(f"template does not render: {type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(
                f"template output is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(document, dict | list):
            raise PayloadError(f"template output is JSON {type(document).__name__}, not an object or array")
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def template_for(kind: str, source: str | None = None) -> ChatTemplate:
    """The built-in template of a kind, or the operator's (kind ``template``); syntax errors are PayloadErrors."""
    text = source if kind == "template" else BUILT_IN[kind]
    if text is None:
        raise PayloadError("kind template needs the template's text")
    try:
        _ENV.parse(text)
    except TemplateError as exc:
        raise PayloadError(f"not a Jinja2 template: {exc}") from None
    return ChatTemplate(kind, text)


def check_template(template: ChatTemplate, samples: list[AvroRecord]) -> None:
    """Render every sample (PayloadError naming the first that fails): a template is checked before use."""
    for alert in samples:
        try:
            template.render(alert, municipality="サンプル市", channel="check")
        except PayloadError as exc:
            raise PayloadError(f"{exc} (for a {alert.get('source', 'hub')} alert)") from None


# -- what a webhook's answer means ---------------------------------------------------------------------------
def classify_status(status: int) -> str:
    """ok (2xx); rate_limited (429: wait as Retry-After says); retry (5xx, 408); permanent (any other answer)."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 408:
        return "retry"
    return "permanent"


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


def sample_alerts() -> list[AvroRecord]:
    """A relayed JMA report and one of the hub's own alerts (with a level): what operators' templates are
    checked against on load."""
    hub: dict[str, Any] = {
        "alert_id": "sample-river_stage-R-1-20230904T1200JST",
        "sequence": 1,
        "msg_type": "UPDATE",
        "transition": "ESCALATED",
        "references": "sample-river_stage-R-1-20230904T1200JST/0",
        "references_observed_at": 1693796400000,
        "region": "sample",
        "prefecture_code": "09",
        "rule": "river_stage",
        "level": "level_4",
        "level_rank": 3,
        "warning_level": 4,
        "event": "氾濫危険水位超過",
        "headline": "サンプル橋（サンプル市）氾濫危険水位超過: 4.0 m",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Observed",
        "sharing_level": "PUBLIC",
        "station_id": "R-1",
        "observed_at": 1693800000000,
        "value": 4.0,
        "unit": "m",
        "threshold": 3.5,
        "area": {"description": "サンプル市", "point": None, "hazard_zone_ids": []},
        "municipality_codes": ["09999"],
        "source": "hub",
        "status": "Actual",
        "expires": None,
        "official": None,
        "source_readings": [],
    }
    jma = {
        **hub,
        "alert_id": "sample-jma_landslide-0999900-20241102T1850JST",
        "sequence": 0,
        "msg_type": "ALERT",
        "transition": "RAISED",
        "references": None,
        "references_observed_at": None,
        "rule": "jma_landslide",
        "level": "警戒レベル4相当",
        "level_rank": 1,
        "event": "土砂災害警戒情報",
        "headline": "サンプル県土砂災害警戒情報: サンプル市 発表（出典：気象庁）",
        "station_id": "0999900",
        "value": None,
        "unit": "",
        "threshold": None,
        "source": "jma",
        "official": {
            "info_kind": "土砂災害警戒情報",
            "control_title": "土砂災害警戒情報",
            "head_title": "サンプル県土砂災害警戒情報",
            "publishing_office": "サンプル地方気象台",
            "report_datetime": 1730541000000,
            "event_id": "サンプル県土砂災害警戒情報",
            "serial": "1",
            "info_type": "発表",
            "headline": "＜概況＞\n　降り続く大雨のため、土砂災害の危険度が高まっています。",
            "area_codes": ["0999900"],
            "credit": "出典：気象庁",
            "kind_name": "警戒",
            "kind_code": "3",
            "condition": "発表",
            "area_name": "サンプル市",
            "text": "",
        },
    }
    return [jma, hub]
