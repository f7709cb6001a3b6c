"""Regenerate the vendored JSON schemas kubeconform validates deploy/k8s against (only the kinds the hub uses).

Standalone and strict, as kubeconform's own schemas (yannh/kubernetes-json-schema ``*-standalone-strict``):
every ``$ref`` inlined, ``additionalProperties: false`` on every object that lists its properties (a misspelt
field fails), ``kind``/``apiVersion`` fixed. Inputs (see PROVENANCE.md beside this file):

  python deploy/k8s/schemas/convert.py KUBERNETES_DEFINITIONS_JSON STRIMZI_INSTALL_DIR

KUBERNETES_DEFINITIONS_JSON: the ``_definitions.json`` of the Kubernetes OpenAPI (yannh/kubernetes-json-schema);
STRIMZI_INSTALL_DIR: strimzi-kafka-operator's ``packaging/install/cluster-operator`` (its ``04*-Crd-*.yaml``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
KUBERNETES = {  # file name (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}) -> definition
    "deployment-apps-v1": "io.k8s.api.apps.v1.Deployment",
    "statefulset-apps-v1": "io.k8s.api.apps.v1.StatefulSet",
    "service-v1": "io.k8s.api.core.v1.Service",
    "configmap-v1": "io.k8s.api.core.v1.ConfigMap",
    "serviceaccount-v1": "io.k8s.api.core.v1.ServiceAccount",
    "poddisruptionbudget-policy-v1": "io.k8s.api.policy.v1.PodDisruptionBudget",
    "networkpolicy-networking-v1": "io.k8s.api.networking.v1.NetworkPolicy",
}
STRIMZI = {  # file name -> the CRD file of packaging/install/cluster-operator
    "kafka-kafka-v1": "040-Crd-kafka.yaml",
    "kafkatopic-kafka-v1": "043-Crd-kafkatopic.yaml",
    "kafkauser-kafka-v1": "044-Crd-kafkauser.yaml",
    "kafkanodepool-kafka-v1": "045-Crd-kafkanodepool.yaml",
}


def strict(schema: Any) -> Any:
    """additionalProperties: false wherever an object lists its properties and does not allow more (descriptions
    dropped: validation does not read them, and they are most of the size)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items() if not (k == "description" and isinstance(v, str))}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        if out.get("x-kubernetes-int-or-string"):
            out = {k: v for k, v in out.items() if k != "type"} | {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def inline(schema: Any, definitions: dict, seen: tuple[str, ...] = ()) -> Any:
    """Every "#/definitions/…" $ref replaced by the definition (standalone)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/definitions/"):
            name = ref.rsplit("/", 1)[1]
            if name in seen:
                return {}  # recursive types (none in the kinds used) stay open
            return inline(definitions[name], definitions, (*seen, name))
        return {k: inline(v, definitions, seen) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline(v, definitions, seen) for v in schema]
    return schema


def kubernetes(definitions_file: Path) -> dict[str, dict]:
    definitions = json.loads(definitions_file.read_text())["definitions"]
    out = {}
    for name, definition in KUBERNETES.items():
        schema = strict(inline(definitions[definition], definitions))
        [gvk] = definitions[definition]["x-kubernetes-group-version-kind"]
        api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        schema["properties"]["kind"]["enum"] = [gvk["kind"]]
        schema["properties"]["apiVersion"]["enum"] = [api]
        out[name] = {"$schema": "http://json-schema.org/schema#", **schema}
    return out


def strimzi(install_dir: Path) -> dict[str, dict]:
    out = {}
    for name, crd_file in STRIMZI.items():
        crd = yaml.safe_load((install_dir / crd_file).read_text())
        [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["properties"] |= {
            "apiVersion": {"type": "string", "enum": [f"{crd['spec']['group']}/{version['name']}"]},
            "kind": {"type": "string", "enum": [crd["spec"]["names"]["kind"]]},
            "metadata": {"type": "object"},
        }
        out[name] = {"$schema": "http://json-schema.org/schema#", **schema}
    return out


def main(argv: list[str]) -> None:
    schemas = kubernetes(Path(argv[0])) | strimzi(Path(argv[1]))
    for name, schema in schemas.items():
        (HERE / f"{name}.json").write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {len(schemas)} schemas to {HERE}")


if __name__ == "__main__":
    main(sys.argv[1:])
