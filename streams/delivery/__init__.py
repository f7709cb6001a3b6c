"""Delivery of alerts to people and systems: CAP 1.2 (``cap``, validated against the OASIS schema by
``cap_schema``), Atom feeds (``atom``), signed webhooks (``webhooks``, subscriptions in ``subscriptions``), the
webhook sink (``sink``) and the Atom/CAP feed server (``feed_server``). The sink delivers e-mail and chat channels
too: their Japanese text (``channel_text``), e-mails (``email_message``, sent by ``email_delivery``), chat payloads
(``chat_payloads``, posted by ``chat_delivery``), their part of the subscriptions file and the suppression list
(``channels``).
"""

__requires__ = ("platform", "packs", "security")

__layers__ = {
    "pure": ["cap", "atom", "webhooks", "cap_english", "channel_text", "email_message", "chat_payloads"],
    "files": ["subscriptions", "cap_identity", "channels"],
    "io": ["cap_schema"],
    "service": ["connector", "email_delivery", "chat_delivery"],
    "process": ["sink", "feed_server"],
}
