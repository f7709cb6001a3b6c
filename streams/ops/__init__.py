"""Operators' tools: the Grafana dashboards as code (``grafana``), the Kubernetes manifests generated from the
catalog, the access file and the packs (``k8s``, ``k8s_workloads``), following a topic decoded (``tail``) and
backup and restore (``backup_manifest``: the manifest, the records as lines, verify's findings; ``backup``)."""

__requires__ = ("platform", "packs", "security", "hub")

__layers__ = {
    "files": ["asyncapi_file"],
    "pure": ["asyncapi", "backup_manifest"],
    "io": ["grafana", "k8s_workloads", "k8s", "backup"],
    "process": ["tail"],
}
