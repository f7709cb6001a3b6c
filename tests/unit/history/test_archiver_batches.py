"""The archiver's batches without a broker: records of every archived topic decoded into their datasets (an
undecodable one kept as a dead letter of stage archive), a flush committing files with the offsets, and what a
restarted archiver continues from."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from streams.history.archiver import Archiver, ArchiveSettings
from streams.history.query import Filter
from streams.history.reader import ArchiveReader
from streams.kernel.errors import SettingsError
from streams.platform import kafka
from streams.platform.avro import ALERT, ENRICHED, AvroCodec, default_store
from streams.platform.topic_catalog import load_default_catalog
from streams.platform.wire import TopicFraming
from tests.support.history_archive import T0, alert, enriched


def _message(offset: int, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, key=b"k", value=value)


def test_a_batch_of_every_kind_is_archived_and_a_restart_continues_from_the_manifest(tmp_path, tochigi, tochigi_topics):
    store = default_store()
    settings = ArchiveSettings(tmp_path, [tochigi], load_default_catalog(), "127.0.0.1:9", flush_rows=1000)
    archiver = Archiver(settings, store, lambda _m: None)
    readings = AvroCodec(store, ENRICHED).encode_many([enriched("41277", T0, None), enriched("41011", T0, 2.0)])
    alerts = AvroCodec(store, ALERT)
    framed = TopicFraming(store, tochigi_topics.confluent).frame(
        alerts.encode(alert(0)), tochigi_topics.alerts, alerts.schema
    )  # the alert topics carry the Confluent wire format

    archiver._buffer(
        kafka.TopicPartition(tochigi_topics.enriched, 2), [_message(10, readings[0]), _message(11, readings[1])]
    )
    archiver._buffer(kafka.TopicPartition(tochigi_topics.alerts, 0), [_message(5, framed), _message(6, b"garbage")])
    assert archiver.buffer.count == 4 and archiver._flush_due(0.0, idle=True)
    manifest = archiver._commit(archiver.buffer, {tochigi_topics.enriched: {2: 12}, tochigi_topics.alerts: {0: 7}})

    reader = ArchiveReader(tmp_path)
    rows = reader.rows(Filter("readings"))
    assert [(r["station_id"], r["kafka_offset"]) for r in rows] == [("41011", 11), ("41277", 10)]
    assert reader.rows(Filter("alerts"))[0]["alert_id"] == alert(0)["alert_id"]
    [dead] = reader.rows(Filter("deadletters"))
    assert (dead["stage"], dead["reason"], dead["source_offset"]) == ("archive", "undecodable", 6)
    again = Archiver(settings, store, lambda _m: None)
    assert again.manifest == manifest
    assert again.manifest.next_offset(tochigi_topics.enriched, 2) == 12
    assert again.manifest.next_offset(tochigi_topics.alerts, 0) == 7


def test_settings_are_checked_when_made(tmp_path, tochigi):
    with pytest.raises(SettingsError, match="flush_rows"):
        ArchiveSettings(tmp_path, [tochigi], load_default_catalog(), "b", flush_rows=0)
    with pytest.raises(SettingsError, match="packs"):
        ArchiveSettings(tmp_path, [], load_default_catalog(), "b")
