"""Observed readings and the hub's own alerts: a reading validated (``readings``), its station's rules and the alert
lifecycle (``lifecycle``), one batch through it all (``pipeline``), and AMeDAS as input — JMA's 10-minute maps
(``amedas_map``, polled by ``amedas_watch``) and history CSVs (``amedas_csv``).
"""

__requires__ = ("platform", "packs")

__layers__ = {
    "pure": ["readings", "lifecycle", "amedas_map"],
    "io": ["open_alerts", "amedas_csv"],
    "service": ["pipeline"],
    "process": ["amedas_watch"],
}
