"""The hub's workloads on Kubernetes: every long-running `bosai` process, with the same conventions as compose.

* **workers**: a StatefulSet per region pack; the pod's ordinal (label ``apps.kubernetes.io/pod-index``) is the
  worker's ``--instance`` (``BOSAI_WORKER_INSTANCE``), so its static group membership and transactional ids
  survive restarts; updates roll one pod at a time, each waiting for the previous one's readiness (its
  partitions assigned and states restored); a PodDisruptionBudget lets one go at a time;
* **HTTP doors** (feed, map, gateway, history, registry): Deployments of two with a Service and a PDB;
* **pollers, deliveries**: Deployments of one (a poller at a time: ``Recreate``); the **archiver**: a
  StatefulSet of one with its volume;
* every pod: uid 1000, read-only root filesystem (an emptyDir /tmp), no capabilities, resource limits, the
  liveness probe on ``/healthz`` and the readiness probe on ``/readyz`` of the metrics port 9464, which
  Prometheus scrapes (pod annotations; the ConfigMap ``bosai-prometheus`` holds a scrape config and the rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from streams.kernel.region import RegionPack

Manifest = dict[str, Any]  # one Kubernetes object, as YAML reads it

CLUSTER = "bosai"  # the Strimzi Kafka's name: its bootstrap Service is bosai-kafka-bootstrap
LABELS = {"app.kubernetes.io/part-of": "bosai-hub"}
IMAGE = "bosai-hub:0.1.0"  # the overlay sets the registry and the digest (kustomize `images`)
METRICS_PORT = 9464
HUB_ENV = [
    {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": f"{CLUSTER}-kafka-bootstrap:9093"},
    {"name": "BOSAI_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
    {"name": "BOSAI_KAFKA_SASL_USERNAME", "value": "hub"},
    {"name": "BOSAI_KAFKA_SASL_PASSWORD_FILE", "value": "/var/run/bosai/hub/password"},  # KafkaUser hub's Secret
    {"name": "BOSAI_KAFKA_CA_FILE", "value": "/var/run/bosai/ca/ca.crt"},  # the cluster CA (Strimzi's Secret)
]


@dataclass(frozen=True)
class Process:
    """One long-running bosai process as a workload."""

    name: str
    job: str  # the Prometheus job (as in deploy/prometheus/prometheus.yml)
    args: list[str]
    kind: str = "Deployment"  # or StatefulSet
    replicas: int = 1
    port: int | None = None  # an HTTP door's own port (a Service and a PDB)
    config: bool = False  # mounts the ConfigMap bosai-config at /etc/bosai
    volume: str | None = None  # a StatefulSet's own volume (mounted at /var/lib/bosai/<volume>)
    env: list[Manifest] = field(default_factory=list)
    memory: str = "1Gi"


def processes(packs: list[RegionPack]) -> list[Process]:
    instance = {
        "name": "BOSAI_WORKER_INSTANCE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
    }
    regions = [arg for p in packs for arg in ("--region", f"regions/{p.name}")]
    workers = [
        Process(
            f"hub-{p.name}", "bosai-hub", ["worker", "--region", f"regions/{p.name}"], "StatefulSet", 2, env=[instance]
        )
        for p in packs
    ]
    return [
        *workers,
        Process("jma-watch", "bosai-pollers", ["jma", "watch", *regions], memory="512Mi"),
        Process("amedas-watch", "bosai-pollers", ["amedas", "watch", *regions], memory="512Mi"),
        Process("sink", "bosai-deliveries", ["sink", "run", "--config", "/etc/bosai/subscriptions.yaml"], config=True),
        Process(
            "orion-bridge",
            "bosai-deliveries",
            ["bridge", "orion", "--config", "/etc/bosai/orion-bridge.yaml"],
            config=True,
        ),
        Process("feed", "bosai-doors", ["feed", "--host", "0.0.0.0", "--port", "8088"], replicas=2, port=8088),
        Process("web", "bosai-doors", ["web", "--host", "0.0.0.0", "--port", "8080"], replicas=2, port=8080),
        Process(
            "gateway",
            "bosai-doors",
            ["gateway", "--owners", "/etc/bosai/gateway-owners.yaml", "--host", "0.0.0.0", "--port", "8089"],
            replicas=2,
            port=8089,
            config=True,
        ),
        Process(
            "history",
            "bosai-doors",
            [
                "history",
                "serve",
                "--history",
                "/var/lib/bosai/archive",
                *regions,
                "--host",
                "0.0.0.0",
                "--port",
                "8090",
            ],
            replicas=1,
            port=8090,
        ),
        Process(
            "registry",
            "bosai-doors",
            ["registry", "serve", "--host", "0.0.0.0", "--port", "8081"],
            replicas=2,
            port=8081,
        ),
        Process(
            "archive",
            "bosai-archive",
            ["archive", "--regions", "regions", "--history", "/var/lib/bosai/archive"],
            "StatefulSet",
            volume="archive",
            memory="2Gi",
        ),
    ]


def _labels(process: Process) -> Manifest:
    return {**LABELS, "app.kubernetes.io/name": process.name, "bosai.jp/job": process.job}


def _container(process: Process) -> Manifest:
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 15, "timeoutSeconds": 5}
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}]
    ports += [{"name": "http", "containerPort": process.port}] if process.port else []
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "hub-credential", "mountPath": "/var/run/bosai/hub", "readOnly": True},
        {"name": "cluster-ca", "mountPath": "/var/run/bosai/ca", "readOnly": True},
    ]
    mounts += [{"name": "config", "mountPath": "/etc/bosai", "readOnly": True}] if process.config else []
    mounts += [{"name": process.volume, "mountPath": f"/var/lib/bosai/{process.volume}"}] if process.volume else []
    return {
        "name": process.name,
        "image": IMAGE,
        "args": process.args,
        "env": HUB_ENV + process.env,
        "ports": ports,
        "livenessProbe": {**probe, "failureThreshold": 4},
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "metrics"}, "failureThreshold": 2},
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},  # up to 5 min to restore states
        "resources": {"requests": {"cpu": "250m", "memory": process.memory}, "limits": {"memory": process.memory}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _pod(process: Process) -> Manifest:
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "hub-credential", "secret": {"secretName": "hub"}},
        {"name": "cluster-ca", "secret": {"secretName": f"{CLUSTER}-cluster-ca-cert"}},
    ]
    volumes += [{"name": "config", "configMap": {"name": "bosai-config"}}] if process.config else []
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    return {
        "metadata": {"labels": _labels(process), "annotations": annotations},
        "spec": {
            "serviceAccountName": "bosai-hub",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 60,  # a worker commits or aborts its open transactions
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_container(process)],
            "volumes": volumes,
        },
    }


def _workload(process: Process) -> Manifest:
    selector = {"matchLabels": {"app.kubernetes.io/name": process.name}}
    spec: Manifest = {"replicas": process.replicas, "selector": selector, "template": _pod(process)}
    if process.kind == "StatefulSet":
        spec |= {
            "serviceName": process.name,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        }
        if process.volume:
            spec["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": process.volume},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}}},
                }
            ]
    elif process.port is None:  # pollers and deliveries: never two at once during an update
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": process.kind,
        "metadata": {"name": process.name, "labels": _labels(process)},
        "spec": spec,
    }


def _service(process: Process) -> Manifest:
    ports = [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]
    ports += [{"name": "http", "port": process.port, "targetPort": "http"}] if process.port else []
    spec: Manifest = {"selector": {"app.kubernetes.io/name": process.name}, "ports": ports}
    if process.kind == "StatefulSet":
        spec["clusterIP"] = "None"  # headless: the pods' stable names
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": process.name, "labels": _labels(process)},
        "spec": spec,
    }


def _budget(process: Process) -> Manifest:
    budget = {"maxUnavailable": 1} if process.kind == "StatefulSet" else {"minAvailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": process.name, "labels": _labels(process)},
        "spec": {**budget, "selector": {"matchLabels": {"app.kubernetes.io/name": process.name}}},
    }


def prometheus_config(rules: Manifest) -> Manifest:
    """Scrape config (pods annotated prometheus.io/scrape; job from the label bosai.jp/job; the Kafka pods'
    exporter on 9404) and the alert rules of deploy/prometheus/rules.yml, for an in-cluster Prometheus."""
    pods = {
        "job_name": "bosai",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                "action": "keep",
                "regex": "true",
            },
            {
                "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {"source_labels": ["__meta_kubernetes_pod_label_bosai_jp_job"], "target_label": "job"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "instance"},
        ],
    }
    kafka = {
        "job_name": "bosai-kafka",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_label_strimzi_io_kind"], "action": "keep", "regex": "Kafka"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "action": "keep",
                "regex": "tcp-prometheus",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "instance"},
        ],
    }
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [pods, kafka],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bosai-prometheus", "labels": LABELS},
        "data": {
            "prometheus.yml": yaml.safe_dump(config, sort_keys=False),
            "rules.yml": yaml.safe_dump(rules, sort_keys=False, allow_unicode=True, width=200),
        },
    }


def workloads(packs: list[RegionPack], rules: Manifest) -> list[Manifest]:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "bosai-hub", "labels": LABELS},
        "automountServiceAccountToken": False,
    }
    docs: list[Manifest] = [account]
    for process in processes(packs):
        docs.append(_workload(process))
        if process.port or process.kind == "StatefulSet":
            docs.append(_service(process))
        if process.port or process.kind == "StatefulSet" and process.replicas > 1:
            docs.append(_budget(process))
    return [*docs, prometheus_config(rules)]
