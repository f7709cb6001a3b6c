"""Official information: JMA's reports (気象庁防災情報XML) relayed as JMA's. Reports as values (``report``), JMA's area
codes as a pack's municipalities (``areas``), the relayed-alert lifecycle (``lifecycle``; ``relay`` for
warnings, earthquakes, tsunami and 竜巻注意情報), XML from the internet
parsed safely (``jma_xml``), one batch (``pipeline``), where a report goes (``routing``) and the feed poller
(``jma_watch``).
"""

__requires__ = ("platform", "packs", "observed")

__layers__ = {
    "pure": ["report", "lifecycle", "head", "warnings", "quake", "tsunami", "tornado", "kinds", "relay"],
    "io": ["jma_xml"],
    "service": ["pipeline"],
    "process": ["routing", "jma_watch"],
}
