"""Known vulnerabilities of the deployment lock's pins: ``pip-audit --vulnerability-service pypi`` on the lock.

pip-audit asks PyPI's JSON API for each pinned version (``/pypi/<name>/<version>/json``) and reads its
``vulnerabilities`` (PyPI's advisory data, from the OSV database). Where that answer is missing (pip-audit
reports the package as skipped — some PyPI mirrors and proxies serve only the project document), the project
document (``/pypi/<name>/json``) is asked instead: its ``vulnerabilities`` are those of the latest release, so
they stand for the pin only when the pin is the latest release. A pin audited neither way is reported as
*not audited*, by name — never silently passed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.kernel.errors import BosaiError
from streams.security.audit import Finding

PYPI = "https://pypi.org/pypi"


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)  # name==version
    by_project_document: list[str] = field(default_factory=list)  # audited through the fallback
    not_audited: list[tuple[str, str]] = field(default_factory=list)  # (name==version, why)


def _findings(name: str, version: str, vulns: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding(
            package=name,
            version=version,
            id=str(v.get("id")),
            aliases=tuple(str(a) for a in v.get("aliases") or ()),
            fix_versions=tuple(str(f) for f in v.get("fix_versions") or v.get("fixed_in") or ()),
        )
        for v in vulns
        if not v.get("withdrawn")
    ]


def run_pip_audit(lock: Path, *, timeout_s: float = 600.0) -> dict[str, Any]:
    """pip-audit's JSON report of the lock (hashed pins: no resolution, nothing installed)."""
    if shutil.which("pip-audit") is None and not _importable("pip_audit"):
        raise BosaiError("pip-audit is not installed: pip install -e '.[test]' (it is in the test extra)")
    command = [sys.executable, "-m", "pip_audit", "--vulnerability-service", "pypi", "--disable-pip"]
    command += ["--require-hashes", "-r", str(lock), "--format", "json", "--progress-spinner", "off"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode not in (0, 1):  # 1: vulnerabilities found
        raise BosaiError(f"pip-audit failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise BosaiError(f"pip-audit printed no JSON report: {done.stdout[:300]!r} {done.stderr[-300:]!r}") from None
    return report


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def project_document(name: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=timeout_s) as answer:
            document: dict[str, Any] = json.loads(answer.read())
            return document
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BosaiError(f"PyPI's JSON API for {name}: {exc}") from exc


def audit_report(report: dict[str, Any], fetch: Callable[[str], dict[str, Any]] = project_document) -> AuditReport:
    """Findings of pip-audit's report, with the skipped pins audited through the project document when possible."""
    out = AuditReport()
    for dependency in report.get("dependencies", []):
        name, version = dependency.get("name", "?"), dependency.get("version")
        if "skip_reason" not in dependency:
            out.audited.append(f"{name}=={version}")
            out.findings += _findings(name, version, dependency.get("vulns") or [])
            continue
        version = version or _version_of_skip(dependency["skip_reason"])
        document = fetch(name)
        latest = (document.get("info") or {}).get("version")
        if version is not None and latest == version:
            out.by_project_document.append(f"{name}=={version}")
            out.findings += _findings(name, version, document.get("vulnerabilities") or [])
        else:
            why = f"{dependency['skip_reason']}; the latest release is {latest}, its advisories do not stand for it"
            out.not_audited.append((f"{name}=={version}", why))
    return out


def _version_of_skip(reason: str) -> str | None:
    """pip-audit's skip reason ends with '<name> (<version>)'."""
    head, _, tail = reason.rpartition("(")
    return tail.rstrip(")").strip() or None if head else None
