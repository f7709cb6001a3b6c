"""The dependency audit's allowlist (``requirements/audit-allowlist.yaml``): reviewed vulnerabilities, each for a time.

::

    version: 1
    allow:
      - id: GHSA-xxxx-xxxx-xxxx          # or PYSEC-…, CVE-… (matched against the finding's id and aliases)
        package: aiohttp
        reason: the hub never uses aiohttp's static file handler (the vulnerable code path)
        reviewed: 2026-11-24
        expires: 2027-02-24              # at most a year after reviewed; past it, the audit fails

Every entry needs all five keys; errors name the file, the entry and what was expected.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from streams.kernel.errors import ConfigError
from streams.platform.checks import Entry
from streams.platform.settings import project_root
from streams.platform.yamlfile import read_yaml
from streams.security.audit import AllowEntry

MAX_VALIDITY = timedelta(days=366)
VULN_ID = re.compile(r"[A-Z][A-Z0-9]*-[A-Za-z0-9-]+")
PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def default_allowlist_path() -> Path:
    return project_root() / "requirements" / "audit-allowlist.yaml"


def _date(entry: Entry, key: str) -> date:
    value = entry.get(key)
    if isinstance(value, date):  # YAML reads 2026-11-24 as a date
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise entry.error(f"{key} is {value!r}", "a date, YYYY-MM-DD") from None


def _entry(raw: Any, file: Path, index: int) -> AllowEntry:
    entry = Entry(raw, file, f"allow[{index}]", expected="id, package, reason, reviewed, expires")
    found = AllowEntry(
        id=entry.text("id", expected="a vulnerability id (GHSA-…, PYSEC-…, CVE-…)", pattern=VULN_ID),
        package=entry.text("package", expected="the package's name on PyPI", pattern=PACKAGE),
        reason=entry.text("reason", expected="why it does not apply, or why it is accepted"),
        reviewed=_date(entry, "reviewed"),
        expires=_date(entry, "expires"),
    )
    if not found.reviewed < found.expires <= found.reviewed + MAX_VALIDITY:
        raise entry.error(
            f"expires {found.expires} for reviewed {found.reviewed}", "a date after reviewed, at most a year after"
        )
    unknown = set(raw) - {"id", "package", "reason", "reviewed", "expires"}
    if unknown:
        raise entry.error(f"unknown keys {sorted(unknown)}", "id, package, reason, reviewed, expires")
    return found


def load_allowlist(path: Path | None = None) -> list[AllowEntry]:
    """The entries, validated; ConfigError (file, entry, key, expectation) otherwise."""
    path = path or default_allowlist_path()
    document = Entry(read_yaml(path, "audit allowlist"), path, expected="version: 1 and allow: [entries]")
    if document.get("version") != 1:
        raise document.error(f"version is {document.get('version')!r}", "version: 1")
    entries = [_entry(raw, path, i) for i, raw in document.entries("allow", expected="a list", allow_empty=True)]
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(entries):
        if (e.id, e.package.lower()) in seen:
            raise ConfigError(path, f"{e.id} of {e.package} listed twice", where=f"allow[{i}]", expected="one entry")
        seen.add((e.id, e.package.lower()))
    return entries
