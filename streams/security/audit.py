"""The dependency audit's verdict: known vulnerabilities of the pinned packages against a dated allowlist. Pure.

A finding (a package at its pinned version, a vulnerability id and its aliases) is *allowed* when an allowlist
entry names the same package and the id or one of its aliases, and the entry has not expired on ``today``.
The audit fails when a finding is not allowed, or when any entry has expired (a reviewed exception is only
good for a time: review it again, or fix the dependency). Entries that match nothing are reported, so the
list does not rot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date


def normalise(package: str) -> str:
    """PEP 503 name: case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", package).lower()


@dataclass(frozen=True)
class Finding:
    """A known vulnerability of a pinned package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()

    @property
    def ids(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass(frozen=True)
class AllowEntry:
    """A reviewed, accepted vulnerability: which, of which package, why, when reviewed, until when."""

    id: str
    package: str
    reason: str
    reviewed: date
    expires: date


@dataclass
class Verdict:
    blocking: list[Finding] = field(default_factory=list)
    allowed: list[tuple[Finding, AllowEntry]] = field(default_factory=list)
    expired: list[AllowEntry] = field(default_factory=list)
    unused: list[AllowEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocking and not self.expired


def judge(findings: list[Finding], allowlist: list[AllowEntry], today: date) -> Verdict:
    """Which findings block, which are allowed, which entries expired or match nothing."""
    verdict = Verdict(expired=[e for e in allowlist if e.expires < today])
    used: set[int] = set()
    for finding in findings:
        entry = next(
            (
                (i, e)
                for i, e in enumerate(allowlist)
                if normalise(e.package) == normalise(finding.package) and e.id in finding.ids and e.expires >= today
            ),
            None,
        )
        if entry is None:
            verdict.blocking.append(finding)
        else:
            used.add(entry[0])
            verdict.allowed.append((finding, entry[1]))
    verdict.unused = [e for i, e in enumerate(allowlist) if i not in used and e.expires >= today]
    return verdict
