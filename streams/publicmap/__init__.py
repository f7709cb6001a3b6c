"""The residents' map (住民向け地図): what the public page shows (``view``, ``labels``, ``geojson``), the server
(``server``, ``http``), its live stream (``live_stream``) and the process the demo starts (``process``).
"""

__requires__ = ("platform", "packs", "security", "observed", "delivery")

__layers__ = {"pure": ["labels", "view", "geojson"], "process": ["http", "live_stream", "server", "process"]}
