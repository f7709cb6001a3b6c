"""`bosai audit`: known vulnerabilities of the deployment lock, against the dated allowlist (CI runs it)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from streams.kernel.errors import CheckFailed


@click.command()
@click.option("--lock", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Hashed requirements to audit [default: requirements/deploy.lock].")  # fmt: skip
@click.option("--allowlist", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Reviewed vulnerabilities [default: requirements/audit-allowlist.yaml].")  # fmt: skip
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Judge as of this date.")
@click.option("--strict", is_flag=True, help="Also fail when a pin could not be audited.")
def audit(lock: Path | None, allowlist: Path | None, today: datetime | None, strict: bool) -> None:
    """pip-audit (PyPI's advisories) on the lock; exit 1 on a vulnerability not allowed, or an expired entry."""
    from streams.platform.settings import project_root
    from streams.security.audit import judge
    from streams.security.audit_allowlist import load_allowlist
    from streams.security.pip_audit import audit_report, run_pip_audit

    lock = lock or project_root() / "requirements" / "deploy.lock"
    entries = load_allowlist(allowlist)
    report = audit_report(run_pip_audit(lock))
    verdict = judge(report.findings, entries, today.date() if today else date.today())
    total = len(report.audited) + len(report.by_project_document) + len(report.not_audited)
    click.echo(
        f"audit of {lock.name}: {total} pins; {len(report.audited)} audited by pip-audit, "
        f"{len(report.by_project_document)} through PyPI's project document (pin = latest release), "
        f"{len(report.not_audited)} not audited; {len(report.findings)} known vulnerabilities"
    )
    for pin, why in report.not_audited:
        click.echo(f"  not audited: {pin}: {why}")
    for finding, entry in verdict.allowed:
        click.echo(f"  allowed until {entry.expires}: {finding.package} {finding.version} {finding.id}: {entry.reason}")
    for entry in verdict.unused:
        click.echo(f"  allowlist entry matches nothing now (remove it?): {entry.package} {entry.id}")
    for entry in verdict.expired:
        click.echo(f"  EXPIRED allowlist entry ({entry.expires}): {entry.package} {entry.id} — review it again")
    for finding in verdict.blocking:
        fixes = ", ".join(finding.fix_versions) or "no fixed version yet"
        aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        click.echo(f"  VULNERABLE: {finding.package} {finding.version} {finding.id}{aliases}; fixed in {fixes}")
    if not verdict.ok:
        raise CheckFailed(
            f"{len(verdict.blocking)} vulnerability(ies) not in the allowlist, "
            f"{len(verdict.expired)} expired allowlist entry(ies)"
        )
    if strict and report.not_audited:
        raise CheckFailed(f"{len(report.not_audited)} pin(s) could not be audited (--strict)")
    click.echo("audit: ok")
