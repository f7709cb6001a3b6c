"""Backups without a broker: the manifest, records as lines, restored offsets, and verify's findings on a real
folder (a tampered file, a missing file, a record count that does not match, a file the manifest does not list)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from streams.kernel.errors import BosaiError, CheckFailed, ConfigError
from streams.ops.backup import (
    FileSource,
    _gzip_writer,
    _prepare_out,
    _sha256,
    copy_files,
    load_manifest,
    read_records,
    restore_files,
    verify_backup,
)
from streams.ops.backup_manifest import (
    MANIFEST,
    BackedUpRecord,
    BadLine,
    FileEntry,
    Manifest,
    PartitionBackup,
    TopicBackup,
    check_offsets,
    parse_line,
    parse_manifest,
    record_line,
    translate_offset,
)

RECORDS = [
    BackedUpRecord(0, 1_693_785_600_000, b"41277", b"\xc3\x01state-0"),
    BackedUpRecord(2, 1_693_785_660_000, b"41331", b"\x00\x00\x00\x00\x01avro", (("trace", b"\x01\x02"),)),
    BackedUpRecord(5, 1_693_785_720_000, b"41277", None),  # a tombstone on a compacted topic
]


def _write_partition(path: Path, records: list[BackedUpRecord]) -> None:
    handle, writer = _gzip_writer(path)
    with handle, writer:
        for record in records:
            writer.write(record_line(record).encode())


def _backup(folder: Path, tmp: Path) -> Manifest:
    """A small backup made by hand: one topic of two partitions, a pack file and a secret."""
    _prepare_out(folder)
    _write_partition(folder / "topics/t.state/0.jsonl.gz", RECORDS)
    _write_partition(folder / "topics/t.state/1.jsonl.gz", [])
    (tmp / "pack").mkdir()
    (tmp / "pack" / "region.yaml").write_text("name: tochigi\n")
    (tmp / "hub.json").write_text('{"password": "s3cret"}')
    files = copy_files(
        folder,
        [
            FileSource(tmp / "pack", "files/regions/tochigi", "pack"),
            FileSource(tmp / "hub.json", "secrets/hub/hub.json", "credential", secret=True),
        ],
        lambda _m: None,
    )
    topic_files = [
        FileEntry(f"topics/t.state/{p}.jsonl.gz", _sha256(folder / f"topics/t.state/{p}.jsonl.gz"), 0, "topic")
        for p in (0, 1)
    ]
    topic_files = [replace(f, size=(folder / f.path).stat().st_size) for f in topic_files]
    manifest = Manifest(
        created_at="2026-12-06T09:00:00+00:00",
        bosai_version="0.1.0",
        prefix="bosai",
        regions=("tochigi",),
        consistent=True,
        topics=(
            TopicBackup(
                name="t.state",
                catalog_id="state.readings",
                region="tochigi",
                partitions=2,
                replication_factor=1,
                configs={"cleanup.policy": "compact"},
                key_schema="string",
                value_schema="json",
                framing="single-object",
                municipality_code=None,
                backed_up=(
                    PartitionBackup(0, 0, 6, 3, "topics/t.state/0.jsonl.gz"),
                    PartitionBackup(1, 0, 0, 0, "topics/t.state/1.jsonl.gz"),
                ),
            ),
        ),
        groups={"bosai-tochigi-hub": {"t.state": {0: 6}}},
        files=tuple(topic_files + files),
    )
    (folder / MANIFEST).write_text(manifest.to_json())
    return manifest


def test_the_manifest_reads_back_as_written(tmp_path):
    manifest = _backup(tmp_path / "b", tmp_path)

    again = parse_manifest((tmp_path / "b" / MANIFEST).read_text(), "manifest.json")

    assert again == manifest
    document = json.loads(manifest.to_json())
    assert document["records"] == 3 and document["topics"][0]["backed_up"][0]["end_offset"] == 6
    assert [f["secret"] for f in document["files"]] == [False, False, False, True]
    assert "s3cret" not in manifest.to_json()  # a secret's content is never in the manifest


def test_records_keep_keys_values_tombstones_headers_and_timestamps():
    for record in RECORDS:
        assert parse_line(record_line(record)) == record
    with pytest.raises(BadLine, match="value is not base64"):
        parse_line('{"offset": 1, "timestamp": 0, "key": null, "value": "***"}')
    with pytest.raises(BadLine, match="offset"):
        parse_line('{"offset": -1, "timestamp": 0}')


def test_offsets_resume_where_the_group_was_though_markers_took_offsets():
    old = [0, 2, 5, 6, 9]  # 1, 3, 4, 7, 8: transaction markers and aborted records, not backed up

    assert translate_offset(old, 0, 0) == 0
    assert translate_offset(old, 3, 0) == 2  # the next record is old offset 5, restored at 2
    assert translate_offset(old, 10, 0) == 5  # committed the end: the restored end
    assert translate_offset(old, 6, 100) == 103  # --force: after the records the target already had
    assert translate_offset([], 42, 0) == 0


def test_a_backup_as_made_verifies(tmp_path):
    _backup(tmp_path / "b", tmp_path)

    manifest, findings = verify_backup(tmp_path / "b")

    assert findings.ok, findings.problems
    assert findings.checked == 4 and findings.records == 3
    secret = tmp_path / "b" / "secrets/hub/hub.json"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o700
    assert [r.offset for r in read_records(tmp_path / "b" / manifest.topics[0].backed_up[0].file)] == [0, 2, 5]


def test_verify_names_a_tampered_file_with_expected_and_found(tmp_path):
    _backup(tmp_path / "b", tmp_path)
    pack = tmp_path / "b" / "files/regions/tochigi/region.yaml"
    pack.write_text("name: tochigj\n")  # same size, other bytes

    _, findings = verify_backup(tmp_path / "b")

    assert len(findings.problems) == 1
    assert findings.problems[0].startswith("files/regions/tochigi/region.yaml: sha256 ")
    assert "expected" in findings.problems[0]


def test_verify_names_a_missing_file_and_one_the_manifest_does_not_list(tmp_path):
    _backup(tmp_path / "b", tmp_path)
    (tmp_path / "b" / "topics/t.state/1.jsonl.gz").unlink()
    (tmp_path / "b" / "files/regions/tochigi/extra.csv").write_text("x\n")

    _, findings = verify_backup(tmp_path / "b")

    assert findings.problems == [
        "topics/t.state/1.jsonl.gz: missing (expected 20 bytes, sha256 "
        + load_manifest(tmp_path / "b").file("topics/t.state/1.jsonl.gz").sha256[:12]  # type: ignore[union-attr]
        + "…)",
        "files/regions/tochigi/extra.csv: not in the manifest",
    ]


def test_verify_counts_the_records_of_each_partition(tmp_path):
    manifest = _backup(tmp_path / "b", tmp_path)
    topic = manifest.topics[0]
    fewer = replace(topic, backed_up=(replace(topic.backed_up[0], records=4), topic.backed_up[1]))
    (tmp_path / "b" / MANIFEST).write_text(replace(manifest, topics=(fewer,)).to_json())

    _, findings = verify_backup(tmp_path / "b")

    assert findings.problems == ["topics/t.state/0.jsonl.gz: 3 records, expected 4 (t.state[0])"]


def test_verify_reads_a_records_file_to_its_end(tmp_path):
    manifest = _backup(tmp_path / "b", tmp_path)
    path = tmp_path / "b" / "topics/t.state/0.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-12])  # cut short: a truncated copy
    entry = manifest.file("topics/t.state/0.jsonl.gz")
    assert entry is not None
    files = tuple(
        replace(f, sha256=_sha256(path), size=path.stat().st_size) if f.path == entry.path else f
        for f in manifest.files
    )
    (tmp_path / "b" / MANIFEST).write_text(replace(manifest, files=files).to_json())

    _, findings = verify_backup(tmp_path / "b")

    assert len(findings.problems) == 1 and "unreadable" in findings.problems[0]


def test_offsets_out_of_order_or_range_are_found():
    part = PartitionBackup(0, 10, 20, 3, "x")
    assert check_offsets([10, 12, 19], part) == ""
    assert "not in offset order" in check_offsets([10, 12, 12], part)
    assert "outside 10..20" in check_offsets([9], part)


def test_a_folder_without_its_manifest_is_not_a_backup(tmp_path):
    (tmp_path / "b").mkdir()
    with pytest.raises(CheckFailed, match="not a finished backup"):
        verify_backup(tmp_path / "b")


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda d: d.update(format=2), "format"),
        (lambda d: d["topics"][0].pop("partitions"), "partitions"),
        (lambda d: d["files"][0].update(path="../etc/passwd"), "files[0].path"),
        (lambda d: d["topics"][0]["backed_up"].pop(), "backed_up"),
        (lambda d: d["files"][0].update(sha256="xyz"), "sha256"),
        (lambda d: d["topics"][0]["backed_up"][0].update(records=99), "backed_up[0]"),
    ],
)
def test_a_wrong_manifest_names_the_key(tmp_path, change, where):
    manifest = _backup(tmp_path / "b", tmp_path)
    document = json.loads(manifest.to_json())
    change(document)

    with pytest.raises(ConfigError) as caught:
        parse_manifest(json.dumps(document), "manifest.json")

    assert where in (caught.value.where or "")


def test_a_backup_is_never_written_over_another(tmp_path):
    _backup(tmp_path / "b", tmp_path)
    with pytest.raises(BosaiError, match="not an empty folder"):
        _prepare_out(tmp_path / "b")


def test_restored_files_go_under_the_target_secrets_0600_and_nothing_is_overwritten_unasked(tmp_path):
    manifest = _backup(tmp_path / "b", tmp_path)
    target = tmp_path / "restored"

    assert restore_files(tmp_path / "b", manifest, target, force=False, progress=lambda _m: None) == 2

    assert (target / "regions/tochigi/region.yaml").read_text() == "name: tochigi\n"
    assert stat.S_IMODE((target / "secrets/hub/hub.json").stat().st_mode) == 0o600
    with pytest.raises(BosaiError, match="already exist"):
        restore_files(tmp_path / "b", manifest, target, force=False, progress=lambda _m: None)
    assert restore_files(tmp_path / "b", manifest, target, force=True, progress=lambda _m: None) == 2


def test_bosai_backup_verify_exits_0_or_1_naming_each_file(tmp_path):
    _backup(tmp_path / "b", tmp_path)

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "streams.cli", "backup", "verify", str(tmp_path / "b"), *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    good = verify()
    assert good.returncode == 0 and "4 files and 3 records match the manifest" in good.stdout
    (tmp_path / "b" / "files/regions/tochigi/region.yaml").write_text("tampered\n")
    bad = verify("--json")
    assert bad.returncode == 1
    findings = json.loads(bad.stdout)
    assert findings["ok"] is False and findings["problems"][0].startswith("files/regions/tochigi/region.yaml: size")
    assert "2 problem(s) against its manifest" in bad.stderr  # its size and its sha256
    assert "s3cret" not in bad.stdout + bad.stderr


def test_a_backup_takes_the_packs_access_catalog_and_every_credential_there_is(tmp_path, monkeypatch):
    from streams.ops.backup import default_sources

    (tmp_path / "tls").mkdir()
    for name in ("ca.pem", "ca.key"):
        (tmp_path / "tls" / name).write_text(name)
    (tmp_path / "hub.json").write_text("{}")
    (tmp_path / "tokens.json").write_text("{}")
    (tmp_path / "issued").mkdir()
    monkeypatch.setenv("BOSAI_TLS_DIR", str(tmp_path / "tls"))
    monkeypatch.setenv("BOSAI_KAFKA_CONFIG", str(tmp_path / "hub.json"))
    monkeypatch.setenv("BOSAI_GATEWAY_TOKENS", str(tmp_path / "tokens.json"))

    sources = default_sources([], secrets=[tmp_path / "issued"])

    assert [(s.target, s.kind, s.secret) for s in sources] == [
        ("files/regions", "pack", False),
        ("files/topics/access.yaml", "access", False),
        ("files/topics/catalog.yaml", "catalog", False),
        ("secrets/hub/hub.json", "credential", True),
        ("secrets/gateway/tokens.json", "credential", True),
        ("secrets/tls/ca.pem", "credential", True),
        ("secrets/tls/ca.key", "credential", True),
        ("secrets/issued", "credential", True),
    ]
    assert not any(s.secret for s in default_sources([], with_secrets=False))
    with pytest.raises(BosaiError, match="--no-secrets"):
        default_sources([], secrets=[tmp_path / "issued"], with_secrets=False)


def test_a_failed_backup_leaves_nothing_behind_but_the_empty_folder_it_was_given(tmp_path):
    from streams.ops.backup import create_backup

    given = tmp_path / "mounted"
    given.mkdir()
    for out in (given, tmp_path / "new"):
        with pytest.raises(BosaiError, match="could not be reached"):
            create_backup("127.0.0.1:1", [], out, [], prefix="bosai", regions=[], progress=lambda _m: None)
    assert given.is_dir() and not any(given.iterdir())
    assert not (tmp_path / "new").exists()


def test_restore_writes_once_every_created_partition_has_a_leader():
    import asyncio

    from streams.ops.backup import _wait_leaders

    class Admin:
        def __init__(self) -> None:
            self.asked = 0

        async def describe_topics(self, names: list[str]) -> list[dict]:
            self.asked += 1
            leader = -1 if self.asked < 3 else 1
            return [{"topic": n, "partitions": [{"partition": 0, "leader": leader}]} for n in names]

    admin = Admin()
    asyncio.run(_wait_leaders(admin, ["a", "b"]))
    assert admin.asked == 3
    asyncio.run(_wait_leaders(admin, []))  # nothing created: nothing asked
    assert admin.asked == 3
