"""Operators' tools: the Grafana dashboards as code (``grafana``), the Kubernetes manifests generated from the
catalog, the access file and the packs (``k8s``, ``k8s_workloads``) and following a topic decoded (``tail``)."""

__requires__ = ("platform", "packs", "hub")

__layers__ = {
    "files": ["asyncapi_file"],
    "pure": ["asyncapi"],
    "io": ["grafana", "k8s_workloads", "k8s"],
    "process": ["tail"],
}
