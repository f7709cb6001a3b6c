"""`bosai audit` for real: pip-audit against PyPI's advisories on the deployment lock, judged with the allowlist
(needs PyPI, not the broker; in the integration tier because it needs the network)."""

from __future__ import annotations

import subprocess
import sys


def _audit(project_root, *args):
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "audit", *args],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_deployment_lock_has_no_known_vulnerability_outside_the_allowlist(project_root):
    done = _audit(project_root)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit of deploy.lock:" in done.stdout and done.stdout.rstrip().endswith("audit: ok")


def test_an_expired_allowlist_entry_fails_the_audit(project_root, tmp_path):
    allowlist = tmp_path / "allow.yaml"
    allowlist.write_text(
        "version: 1\nallow:\n  - {id: GHSA-aaaa-bbbb-cccc, package: aiohttp, reason: reviewed once,"
        " reviewed: 2025-01-01, expires: 2025-12-31}\n",
        encoding="utf-8",
    )

    done = _audit(project_root, "--allowlist", str(allowlist))

    assert done.returncode == 1  # ExitCode.CHECK_FAILED, as every failed check
    assert "EXPIRED allowlist entry (2025-12-31): aiohttp GHSA-aaaa-bbbb-cccc" in done.stdout
    assert "1 expired allowlist entry(ies)" in done.stderr
