"""The Kubernetes manifests (deploy/k8s): generated from the catalog, the access file and the packs without drift,
valid against the vendored Kubernetes and Strimzi schemas (kubeconform, strict), and complete: every topic, every
principal's ACLs, every long-running process with its probes, workers with static membership from the ordinal."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from streams.kernel.topics import expand
from streams.ops.k8s import base_dir, render
from streams.packs.region_pack import default_pack_dirs, load_pack
from streams.platform.access_file import default_access_path, load_access
from streams.platform.settings import cache_dir
from streams.platform.topic_catalog import load_default_catalog

KUBECONFORM = "github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
SCHEMAS = "deploy/k8s/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"


@pytest.fixture(scope="module")
def packs():
    return [load_pack(d) for d in default_pack_dirs()]


@pytest.fixture(scope="module")
def rendered(packs):
    return render(packs, load_default_catalog(), load_access(default_access_path()))


def _documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def kubeconform() -> str:
    """kubeconform from PATH or the cache; installed there from the Go module proxy when missing."""
    found = shutil.which("kubeconform") or (cache_dir() / "bin" / "kubeconform")
    if os.path.exists(found):
        return str(found)
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("go is missing: kubeconform is installed with `go install` (.ci/run)")
        pytest.skip("neither kubeconform nor go installed")
    env = dict(os.environ, GOBIN=str(cache_dir() / "bin"), GOPATH=str(cache_dir() / "go"), GOFLAGS="-modcacherw")
    subprocess.run([go, "install", KUBECONFORM], env=env, check=True, capture_output=True, timeout=900)
    return str(cache_dir() / "bin" / "kubeconform")


def kustomize(project_root, folder: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (kustomize) not installed")
    result = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", folder],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(project_root, manifests: str, tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "all.yaml").write_text(manifests)
    return subprocess.run(
        [kubeconform(), "-strict", "-summary", "-schema-location", SCHEMAS, str(tmp_path / "all.yaml")],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_committed_base_is_what_the_catalog_the_access_file_and_the_packs_generate(rendered):
    for name, text in rendered.items():
        assert (base_dir() / name).read_text(encoding="utf-8") == text, f"run `bosai k8s generate` ({name})"
    assert sorted(p.name for p in base_dir().iterdir()) == sorted(rendered)


def test_the_overlay_is_valid_against_the_kubernetes_and_strimzi_schemas(project_root, tmp_path):
    manifests = kustomize(project_root, "deploy/k8s/overlays/example")
    result = validate(project_root, manifests, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(_documents(manifests))
    assert f"{count} resources found in 1 file - Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("StatefulSet", ("spec", "replica"), 2),  # a misspelt field
        ("KafkaTopic", ("spec", "partitions"), "six"),  # a wrong type, in a Strimzi CRD
        ("KafkaUser", ("spec", "authentication", "type"), "plain"),  # not in the CRD's enum
    ],
)
def test_kubeconform_refuses_a_broken_manifest(project_root, rendered, tmp_path, kind, path, value):
    docs = [d for text in rendered.values() for d in _documents(text) if d.get("kind") == kind][:1]
    target = docs[0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    result = validate(project_root, yaml.safe_dump_all(docs), tmp_path)
    assert result.returncode == 1 and "Invalid: 1" in result.stdout, result.stdout


def test_every_topic_and_every_principals_acls_come_from_the_one_source_of_truth(packs, rendered):
    topics = {d["spec"]["topicName"]: d for d in _documents(rendered["topics.yaml"])}
    specs = expand(load_default_catalog(), [p.topics_input() for p in packs])
    assert set(topics) == {s.name for s in specs}
    for spec in specs:
        assert topics[spec.name]["spec"]["partitions"] == spec.partitions
        assert topics[spec.name]["spec"]["config"] == dict(spec.configs)
    users = {d["metadata"]["name"]: d for d in _documents(rendered["users.yaml"])}
    policy = load_access(default_access_path())
    assert set(users) == {p.name for p in policy.principals}
    for principal in policy.principals:
        acls = users[principal.name]["spec"]["authorization"]["acls"]
        granted = {(a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]}
        expected = {
            (g.resource.replace("transactional_id", "transactionalId"), g.name, op)
            for g in principal.grants
            for op in g.operations
        }
        assert {(t, n, o.lower()) for t, n, o in granted} == {(t, n, o.replace("_", "")) for t, n, o in expected}


def test_workers_have_static_membership_from_the_ordinal_and_doors_have_probes_and_budgets(packs, rendered):
    docs = _documents(rendered["hub.yaml"])
    by_kind: dict[str, dict] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    for pack in packs:
        worker = by_kind["StatefulSet"][f"hub-{pack.name}"]
        container = worker["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][:3] == ["worker", "--region", f"regions/{pack.name}"]
        [instance] = [e for e in container["env"] if e["name"] == "BOSAI_WORKER_INSTANCE"]
        assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
        assert worker["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 1
        assert by_kind["PodDisruptionBudget"][f"hub-{pack.name}"]["spec"]["maxUnavailable"] == 1
    for name in ("feed", "web", "gateway", "history", "registry"):
        door = by_kind["Deployment"][name]
        container = door["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert name in by_kind["Service"] and by_kind["PodDisruptionBudget"][name]["spec"]["minAvailable"] == 1
    commands = {
        tuple(d["spec"]["template"]["spec"]["containers"][0]["args"][:2])
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    for words in (
        ("jma", "watch"),
        ("amedas", "watch"),
        ("sink", "run"),
        ("bridge", "orion"),
        ("archive", "--regions"),
    ):
        assert words in commands
