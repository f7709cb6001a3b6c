"""The page's vendored libraries are the npm packages' files, unmodified, with their licences."""

from __future__ import annotations

import hashlib
import re

import pytest

ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", re.MULTILINE)


@pytest.mark.parametrize("folder", ["web/vendor", "tests/browser/vendor"])
def test_every_vendored_file_matches_the_sha256_its_provenance_records(project_root, folder):
    base = project_root / folder
    rows = ROW.findall((base / "PROVENANCE.md").read_text(encoding="utf-8"))

    assert rows, f"{folder}/PROVENANCE.md lists no files"
    for name, digest in rows:
        assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest, name
    listed = {name for name, _ in rows}
    present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"}
    assert present == listed  # nothing vendored without a record


def test_the_page_loads_the_pinned_leaflet_and_links_its_licence(project_root):
    page = (project_root / "web/index.html").read_text(encoding="utf-8")
    provenance = (project_root / "web/vendor/PROVENANCE.md").read_text(encoding="utf-8")

    assert "/static/vendor/leaflet-1.9.4/leaflet.js" in page and "/static/vendor/leaflet-1.9.4/LICENSE" in page
    assert "`leaflet@1.9.4`" in provenance and "sha512-" in provenance
    assert 't.version="1.9.4"' in (project_root / "web/vendor/leaflet-1.9.4/leaflet.js").read_text(encoding="utf-8")
