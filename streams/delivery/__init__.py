"""Delivery of alerts to people and systems: CAP 1.2 (``cap``, validated against the OASIS schema by
``cap_schema``), Atom feeds (``atom``), signed webhooks (``webhooks``, subscriptions in ``subscriptions``), the
webhook sink (``sink``) and the Atom/CAP feed server (``feed_server``).
"""

__requires__ = ("platform", "packs", "security")

__layers__ = {
    "pure": ["cap", "atom", "webhooks", "cap_english"],
    "files": ["subscriptions", "cap_identity"],
    "io": ["cap_schema"],
    "service": ["connector"],
    "process": ["sink", "feed_server"],
}
