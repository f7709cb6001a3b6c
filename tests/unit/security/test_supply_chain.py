"""Supply chain: the hashed deployment lock matches pyproject.toml and is what the image installs; the audit's
allowlist is dated and judged; the broker's jars are pinned and a tampered one is refused; the vendored web
assets are listed in docs/operations/supply-chain.md with the sha256 they have."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tomllib
from datetime import date
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from streams.kernel.errors import ConfigError
from streams.platform import kafka_dist
from streams.platform.kafka_dist import BrokerError, read_jar_pins, verify_jars
from streams.security.audit import AllowEntry, Finding, judge
from streams.security.audit_allowlist import load_allowlist
from streams.security.pip_audit import audit_report

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements" / "deploy.lock"


# -- the deployment lock -------------------------------------------------------------------------------------------
def _lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every requirement in the lock (continuation lines joined)."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-") or line.startswith("--hash"), f"an option in the lock: {line!r}"
        requirement, *hashes = line.split(" --hash=")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)(\s*;.*)?", requirement.strip())
        assert match, f"not pinned with ==: {requirement!r}"
        entries[canonicalize_name(match.group(1))] = (match.group(2), [h.strip() for h in hashes])
    return entries


def test_every_dependency_of_pyproject_is_pinned_in_the_lock_within_its_range_and_every_pin_is_hashed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    direct = [Requirement(r) for r in project["project"]["dependencies"] + project["build-system"]["requires"]]
    lock = _lock_entries()

    for requirement in direct:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in {LOCK.name}: run `make lock`"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {requirement}"
    for name, (version, hashes) in lock.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{name}=={version}"


def test_the_image_installs_the_lock_with_hashes_required_and_resolves_nothing_else():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    installs = [line.strip() for line in dockerfile.splitlines() if "pip install" in line and "#" not in line]

    assert installs[0].endswith("/opt/bosai/bin/pip install --require-hashes -r requirements/deploy.lock")
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs
    assert "COPY requirements/deploy.lock" in dockerfile


# -- the audit's allowlist -----------------------------------------------------------------------------------------
def test_the_committed_allowlist_loads():
    entries = load_allowlist(ROOT / "requirements" / "audit-allowlist.yaml")

    assert all(e.expires > e.reviewed for e in entries)


def _allowlist(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "allow.yaml"
    path.write_text(body, encoding="utf-8")
    return path


ENTRY = """version: 1
allow:
  - id: GHSA-aaaa-bbbb-cccc
    package: aiohttp
    reason: the hub never serves static files with aiohttp
    reviewed: 2026-11-01
    expires: 2027-02-01
"""


@pytest.mark.parametrize(
    "edit, says",
    [
        (("expires: 2027-02-01", "expires: 2028-02-01"), "at most a year"),
        (("expires: 2027-02-01", "expires: 2026-10-01"), "expires 2026-10-01"),
        (("reviewed: 2026-11-01", "reviewed: soon"), "YYYY-MM-DD"),
        (("    reason: the hub never serves static files with aiohttp\n", ""), "missing key 'reason'"),
        (("id: GHSA-aaaa-bbbb-cccc", "id: whatever"), "vulnerability id"),
        (("version: 1", "version: 2"), "version: 1"),
    ],
)
def test_an_allowlist_entry_without_its_reason_dates_or_a_valid_id_is_refused_naming_the_entry(tmp_path, edit, says):
    path = _allowlist(tmp_path, ENTRY.replace(*edit))

    with pytest.raises(ConfigError) as refused:
        load_allowlist(path)

    assert str(path) in str(refused.value) and says in str(refused.value)


def test_a_finding_is_allowed_by_its_entry_or_an_alias_until_the_entry_expires_then_the_audit_fails(tmp_path):
    entries = load_allowlist(_allowlist(tmp_path, ENTRY))
    finding = Finding("AIOHTTP", "3.14.5", "PYSEC-2026-1", aliases=("GHSA-aaaa-bbbb-cccc",))
    other = Finding("lxml", "6.1.3", "GHSA-zzzz-zzzz-zzzz")

    before = judge([finding], entries, date(2027, 2, 1))
    after = judge([finding], entries, date(2027, 2, 2))
    unrelated = judge([other], entries, date(2026, 12, 1))

    assert before.ok and [f.id for f, _ in before.allowed] == ["PYSEC-2026-1"]
    assert not after.ok and after.expired == entries and after.blocking == [finding]
    assert not unrelated.ok and unrelated.blocking == [other] and unrelated.unused == entries


def test_an_entry_for_another_package_does_not_allow_the_same_id():
    entry = AllowEntry("GHSA-aaaa-bbbb-cccc", "requests", "why", date(2026, 1, 1), date(2026, 12, 31))

    verdict = judge([Finding("aiohttp", "1", "GHSA-aaaa-bbbb-cccc")], [entry], date(2026, 6, 1))

    assert not verdict.ok and verdict.unused == [entry]


def test_pip_audits_report_gives_findings_and_a_skipped_pin_is_audited_only_when_it_is_the_latest_release():
    """pip-audit's JSON (its documented format); skipped pins go to PyPI's project document (here, a stand-in)."""
    report = {
        "dependencies": [
            {"name": "aiohttp", "version": "3.14.5", "vulns": [
                {"id": "PYSEC-1", "aliases": ["CVE-2026-1"], "fix_versions": ["3.14.6"], "description": "x"}]},
            {"name": "lxml", "version": "6.1.3", "vulns": []},
            {"name": "click", "skip_reason": "Dependency not found on PyPI and could not be audited: click (8.3.3)"},
            {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited: numpy (2.4.6)"},
        ],
        "fixes": [],
    }  # fmt: skip
    documents = {
        "click": {"info": {"version": "8.3.3"}, "vulnerabilities": [{"id": "GHSA-c", "aliases": [], "fixed_in": []}]},
        "numpy": {"info": {"version": "2.5.5"}, "vulnerabilities": []},
    }

    audited = audit_report(report, fetch=documents.__getitem__)

    assert [(f.package, f.id, f.aliases, f.fix_versions) for f in audited.findings] == [
        ("aiohttp", "PYSEC-1", ("CVE-2026-1",), ("3.14.6",)),
        ("click", "GHSA-c", (), ()),
    ]
    assert audited.audited == ["aiohttp==3.14.5", "lxml==6.1.3"] and audited.by_project_document == ["click==8.3.3"]
    assert [pin for pin, _ in audited.not_audited] == ["numpy==2.4.6"]


# -- the broker's jars ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resolved_jars() -> Path:
    """The real jars (resolved by Maven into the cache, once; checked against the pins on the way)."""
    if shutil.which("mvn") is None and not (kafka_dist.cache_dir() / "kafka-4.4.0" / "libs" / ".resolved").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("mvn is needed to resolve the broker's jars")
        pytest.skip("no mvn and no resolved jars here")
    return kafka_dist.resolve_jars()


def test_every_resolved_jar_is_pinned_and_matches(resolved_jars):
    pins = read_jar_pins()

    assert verify_jars(resolved_jars) == len(pins) == len(list(resolved_jars.glob("*.jar")))


def test_a_tampered_jar_is_refused_naming_it_and_both_hashes(resolved_jars, tmp_path, monkeypatch):
    libs = tmp_path / "kafka-4.4.0" / "libs"
    shutil.copytree(resolved_jars, libs)
    jar = libs / "kafka-clients-4.4.0.jar"
    data = bytearray(jar.read_bytes())
    data[len(data) // 2] ^= 0x01
    jar.write_bytes(bytes(data))
    expected = read_jar_pins()["kafka-clients-4.4.0.jar"]
    actual = hashlib.sha256(bytes(data)).hexdigest()

    with pytest.raises(BrokerError) as refused:
        verify_jars(libs)
    monkeypatch.setenv("BOSAI_CACHE_DIR", str(tmp_path))  # the broker's own path: stamp says resolved
    with pytest.raises(BrokerError) as at_start:
        kafka_dist.resolve_jars()

    for error in (refused.value, at_start.value):
        assert f"kafka-clients-4.4.0.jar: sha256 {actual}, expected {expected}" in str(error)


def test_a_jar_that_is_not_pinned_or_a_pinned_jar_that_is_missing_is_refused(resolved_jars, tmp_path):
    libs = tmp_path / "libs"
    shutil.copytree(resolved_jars, libs)
    (libs / "evil-1.0.jar").write_bytes(b"PK\x03\x04 not a real jar")
    (libs / "snakeyaml-2.5.jar").unlink()

    with pytest.raises(BrokerError) as refused:
        verify_jars(libs)

    assert "evil-1.0.jar: not pinned" in str(refused.value)
    assert "snakeyaml-2.5.jar: pinned but missing" in str(refused.value)


# -- vendored web assets -------------------------------------------------------------------------------------------
def test_every_vendored_web_asset_is_listed_in_the_docs_with_its_version_licence_and_sha256():
    section = (ROOT / "docs" / "operations" / "supply-chain.md").read_text(encoding="utf-8")
    listed = {
        path: (package, version, licence, sha256)
        for path, package, version, licence, sha256 in re.findall(
            r"^\| `([^`]+)` \| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \| `([0-9a-f]{64})` \|$", section, re.M
        )
    }
    vendored = {
        p.relative_to(ROOT).as_posix()
        for folder in (ROOT / "web" / "vendor", ROOT / "tests" / "browser" / "vendor")
        for p in folder.rglob("*")
        if p.is_file() and p.name != "PROVENANCE.md"
    }

    assert set(listed) == vendored
    for path, (package, version, licence, sha256) in listed.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == sha256, path
        assert f"{package.lower().replace(' ', '-')}-{version}" in path.lower() and licence
