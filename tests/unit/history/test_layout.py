"""The archive's layout: partition folders by dataset, region and JST date; the manifest that commits files with
their offsets; what is removed on start; what compaction merges."""

from __future__ import annotations

import pytest

from streams.history.layout import (
    ArchivedFile,
    Manifest,
    PartitionKey,
    dates_between,
    jst_date,
    merged_offsets,
    strays,
    to_compact,
)
from streams.kernel.errors import ConfigError
from streams.kernel.times import parse_jst


def test_the_date_partition_is_the_jst_date_of_the_event():
    # 23:30 UTC on the 3rd is 08:30 JST on the 4th
    assert jst_date(parse_jst("2023-09-03T23:30+00:00", option="t")) == "2023-09-04"
    assert jst_date(parse_jst("2023-09-04T23:59", option="t")) == "2023-09-04"
    key = PartitionKey("readings", "tochigi", "2023-09-04")
    assert key.file(17, 2) == "readings/region=tochigi/date=2023-09-04/part-00000017-002.parquet"


def test_a_range_with_an_exclusive_end_touches_the_dates_before_it():
    since, until = parse_jst("2023-09-04", option="f"), parse_jst("2023-09-06", option="t")

    assert dates_between(since, until) == ("2023-09-04", "2023-09-05")
    assert dates_between(None, until) == ("0000-01-01", "2023-09-05")
    assert dates_between(since, None) == ("2023-09-04", "9999-12-31")
    assert dates_between(None, None) is None


def _file(path: str, rows: int, sequence: int, offsets=None, date="2023-09-04") -> ArchivedFile:
    return ArchivedFile(path, PartitionKey("readings", "tochigi", date), rows, sequence, offsets or {})


def test_a_commit_moves_offsets_on_and_adds_files_and_survives_a_round_trip():
    manifest = Manifest().committed([_file("a", 3, 1, {"t": {0: (0, 2)}})], {"t": {0: 3, 1: 5}}, 42)
    again = manifest.committed([_file("b", 1, 2, {"t": {0: (3, 3)}})], {"t": {0: 4}}, 43)

    assert again.sequence == 2 and again.next_offset("t", 0) == 4 and again.next_offset("t", 1) == 5
    assert again.next_offset("other", 0) is None
    assert [f.path for f in again.files] == ["a", "b"]
    assert Manifest.from_text(again.to_text(), "m") == again


def test_offsets_never_move_back():
    manifest = Manifest().committed([], {"t": {0: 10}}, 0)

    with pytest.raises(ValueError, match="before the archived 10"):
        manifest.committed([], {"t": {0: 9}}, 0)


def test_a_broken_manifest_names_the_file_and_what_was_expected():
    with pytest.raises(ConfigError, match="m.json.*version"):
        Manifest.from_text('{"version": 7}', "m.json")
    with pytest.raises(ConfigError, match="not JSON"):
        Manifest.from_text("{", "m.json")


def test_files_no_manifest_names_and_temporary_files_are_strays():
    manifest = Manifest().committed([_file("readings/region=t/date=d/part-00000001-000.parquet", 1, 1)], {}, 0)
    found = [
        "readings/region=t/date=d/part-00000001-000.parquet",
        "readings/region=t/date=d/part-00000002-000.parquet",  # a flush whose manifest never came
        "readings/region=t/date=d/part-00000002-001.parquet.tmp",  # a file cut short
        "readings/region=t/date=d/notes.txt",  # not ours: left alone
    ]

    assert strays(manifest, found) == found[1:3]


def test_compaction_merges_only_finished_days_with_many_files_and_keeps_rows_and_offsets():
    files = [_file(f"p{i}", 2, i, {"t": {0: (2 * i, 2 * i + 1)}}) for i in range(4)]
    files.append(_file("today", 2, 9, date="2023-09-05"))
    manifest = Manifest(sequence=9, files=tuple(files))

    groups = to_compact(manifest, min_files=3, before_date="2023-09-05")

    assert [[f.path for f in g] for g in groups] == [["p0", "p1", "p2", "p3"]]
    assert merged_offsets(groups[0]) == {"t": {0: (0, 7)}}
    merged = _file("merged", 8, 10)
    after = manifest.replaced(groups[0], merged, 1)
    assert [f.path for f in after.files] == ["today", "merged"] and after.sequence == 10
    with pytest.raises(ValueError, match="change 8 rows to 7"):
        manifest.replaced(groups[0], _file("merged", 7, 10), 1)
