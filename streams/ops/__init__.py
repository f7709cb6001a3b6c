"""Operators' tools: the Grafana dashboards as code (``grafana``) and following a topic decoded (``tail``)."""

__requires__ = ("platform", "packs", "hub")

__layers__ = {"io": ["grafana"], "process": ["tail"]}
