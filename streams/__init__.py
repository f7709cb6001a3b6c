"""bosai hub: the real-time core of a prefecture's shared disaster-data platform (防災データ連携基盤).

The package is cut by feature; each feature package's ``__init__`` says what it holds, which features it
may import (``__requires__``) and the inner layer of each module (``__layers__``: pure < files < io <
service < process). Features in their dependency order (``tests/support/architecture.py`` checks all of it):
"""

__version__ = "0.1.0"

__features__ = (
    "kernel",  # shared pure values: the domain, event time, geofencing, rules, the alert model, topic names
    "platform",  # Kafka clients and the embedded broker, Avro, metrics, settings and files
    "packs",  # region packs: files, validation, `region init`
    "registry",  # the read-only schema registry API clients decode the alert topics with
    "security",  # access files and credentials, tokens, login limits, the supply-chain audit
    "observed",  # readings: validation, rules, the alert lifecycle, AMeDAS input, the pipeline
    "official",  # JMA's reports: values, areas, the relayed lifecycle, safe XML, the poller, the pipeline
    "hub",  # the worker runtime (both pipelines, exactly-once) and replays
    "delivery",  # CAP, Atom, webhooks: the sink and the feed
    "fiware",  # FIWARE Orion: the bridge out, notifications in
    "gateway",  # municipal sensors over HTTP
    "history",  # the platform's memory: the archive (GeoParquet, exactly once), its queries, OGC API - Features
    "publicmap",  # the residents' map
    "ops",  # operators' tools: dashboards, tail
    "cli",  # `bosai`: assembly only
)
